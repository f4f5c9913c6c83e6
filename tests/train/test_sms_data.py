"""A published config (`sms_lora`) trains on the data package's `SegmentedMusicSolos` (made from the data
tests' fake raw world: ingest -> masks -> verify -> focal -> extract with the tiny model) under torchrun,
2 ranks, DataLoader workers and a DistributedSampler."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from saganet.train.state import load_state

pytestmark = pytest.mark.slow
DATA_TESTS = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def sms(tmp_path_factory):
    sys.path.insert(0, str(DATA_TESTS))
    from fakeworld import build_fake_world

    from saganet.data.detail import FocalOptions, make_focal
    from saganet.data.extract import extract
    from saganet.data.ingest import ingest
    from saganet.data.masks import make_masks
    from saganet.data.verify import verify
    from saganet.toyworld.world import CLASSES

    base = tmp_path_factory.mktemp("sms_train")
    world = build_fake_world(base / "raw")
    root = base / "sms"
    ingest("sms", world.sms_metadata, root, world.sources, workers=1, quiet=True)
    make_masks(root, "color", palette={c.name: c.colour for c in CLASSES}, quiet=True)
    verify(root, quiet=True)
    make_focal(root, FocalOptions(mode="reference", size=64, min_size=16), quiet=True)
    extract(root, base / "feats", variant="tiny", quiet=True)
    return root, base / "feats"


def test_sms_lora_config_trains_on_segmented_music_solos_under_torchrun(sms, tmp_path):
    root, feats = sms
    out = tmp_path / "run"
    args = ["sms_lora", f"out_dir={out}", "model=tiny", "init=random", f"data_root={root}", f"features={feats}",
            "duration=2.0", "toy_duration=2.0", "steps=2", "batch_size=2", "num_workers=1", "device=cpu",
            "precision=fp32", "val_every=2", "ckpt_every=2", "warmup_steps=1", "ema_update_after_step=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                        "-m", "saganet.train", *args, "-q"], capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    state = load_state(out / "ckpt_last.pt")
    assert state["step"] == 2 and state["world_size"] == 2
    assert any("lora_B" in k for k in state["trainables"]) and any("cross_attn" in k for k in state["trainables"])
    import json

    hist = json.loads(state["history"])
    assert "val_loss" in hist[-1] and hist[-1]["val_loss"] == hist[-1]["val_loss"]  # finite, not NaN
    assert (out / "weights_final.pth").is_file()
