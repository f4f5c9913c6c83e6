"""State-dict layouts of the evaluation models at their real sizes (built on the meta device) against
manifests of the official checkpoints' keys. The eval manifests (tests/eval/data) were written from the
model definitions (av-benchmark's Cnn14, torchvggish's VGGish, Synchformer's AST / GlobalTransformer);
the Synchformer visual branch is checked against the reference manifest of MMAudio's Synchformer."""

import json
from pathlib import Path

import pytest
import torch

from saganet.eval.embedders.imagebind import ImageBindAV
from saganet.eval.embedders.panns import Cnn14
from saganet.eval.embedders.passt import PaSST
from saganet.eval.embedders.synchformer_av import SyncAVConfig, SynchformerAV
from saganet.eval.embedders.vggish import VGGish
from saganet.models.motionformer import MotionFormer, MotionFormerConfig

DATA = Path(__file__).parent / "data"


def _layout(m: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in m.state_dict().items()}


@pytest.mark.parametrize("name,factory", [("panns_cnn14_16k", Cnn14), ("vggish", VGGish),
                                          ("synchformer_av", SynchformerAV), ("passt_s", PaSST),
                                          ("imagebind_huge_av", ImageBindAV)])
def test_layout_matches_manifest(name, factory):
    man = json.loads((DATA / f"{name}.json").read_text())
    with torch.device("meta"):
        m = factory()
    got = _layout(m)
    assert got == man["params"]
    assert sum(p.numel() for p in m.parameters()) == man["num_params"]


def test_published_parameter_counts():
    with torch.device("meta"):
        panns, vgg = Cnn14(), VGGish()
    front = sum(p.numel() for n, p in panns.named_parameters() if n.startswith(("spectrogram", "logmel")))
    assert sum(p.numel() for p in panns.parameters()) - front == 80_753_615  # PANNs paper: Cnn14 80.8 M
    assert sum(p.numel() for p in vgg.parameters()) == 72_141_184  # VGGish


def test_synchformer_head_sequence_is_198_tokens():
    cfg = SyncAVConfig()
    assert cfg.grid == (12, 6) and cfg.seq_len == 198


@pytest.mark.requires_reference_data("reference/manifests/synchformer_mmaudio.json")
def test_synchformer_visual_branch_matches_reference_manifest(shared_dir):
    man = json.loads((shared_dir / "reference/manifests/synchformer_mmaudio.json").read_text())["params"]
    with torch.device("meta"):
        v = MotionFormer(MotionFormerConfig.full())
    got = {f"vfeat_extractor.{k}": s for k, s in _layout(v).items()}
    assert got == {k: s[:-1] for k, s in man.items()}


def test_clap_layout_matches_manifest():
    from transformers import ClapModel

    from saganet.eval.embedders.clap import clap_config

    man = json.loads((DATA / "clap_htsat_base.json").read_text())
    with torch.device("meta"):
        m = ClapModel(clap_config("full"))
    assert _layout(m) == man["params"]
