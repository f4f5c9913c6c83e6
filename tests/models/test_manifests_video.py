"""The full-size video encoders have exactly the released state-dict layout (built on the meta device)."""

from __future__ import annotations

import json

import pytest
import torch

from saganet.models.motionformer import MotionFormerConfig, Synchformer
from saganet.models.segaware import SynchformerWithContext
from saganet.models.sync_encoder import set_trainable


def _layout(model: torch.nn.Module) -> dict[str, list]:
    return {k: [*v.shape, str(v.dtype).removeprefix("torch.")] for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    "manifest, cls",
    [("synchformer_mmaudio.json", Synchformer), ("synchformer_with_context.json", SynchformerWithContext)],
)
@pytest.mark.parametrize("mode", ["reference", "cross"])
def test_full_model_matches_manifest(manifests_dir, manifest, cls, mode):
    m = json.loads((manifests_dir / manifest).read_text())
    with torch.device("meta"):
        model = cls(MotionFormerConfig.full(gated_attention=mode))
    layout = _layout(model)
    assert list(layout) == list(m["params"])  # same keys, same order
    assert layout == m["params"]
    assert sum(p.numel() for p in model.parameters()) == m["num_params"]
    assert len(layout) == m["num_state_dict_tensors"]
    assert not list(model.buffers())  # no persistent or computed buffers


def test_reference_frozen_sets(manifests_dir):
    """Plain model: only the unused 2-D patch embedding is frozen; context model with the reference
    trainability ("additions") freezes exactly the manifest's `requires_grad_false` list."""
    with torch.device("meta"):
        plain = Synchformer(MotionFormerConfig.full())
        ctx = SynchformerWithContext(MotionFormerConfig.full())
    m = json.loads((manifests_dir / "synchformer_mmaudio.json").read_text())
    assert sorted(n for n, p in plain.named_parameters() if not p.requires_grad) == sorted(m["requires_grad_false"])
    n_train = set_trainable(ctx, "additions")
    assert n_train == 85_450_008  # RN-35: mask embed 393 984 + 12 x 7 088 002
    frozen = {n for n, p in ctx.named_parameters() if not p.requires_grad}
    m = json.loads((manifests_dir / "synchformer_with_context.json").read_text())
    assert frozen == set(m["requires_grad_false"])  # the whole backbone, nothing else
