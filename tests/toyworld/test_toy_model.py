"""Toy model parts, the shipped tiny checkpoints, `saganet demo` and `saganet toyworld evaluate`."""

from __future__ import annotations

import json
import math

import av
import pytest
import torch

from saganet.app.cli import main
from saganet.builders import build_toy, toy_checkpoint_path
from saganet.models.toy import ToyFrameFeatures, ToyTextEncoder
from saganet.models.toy_codec import ToyMelCodec
from saganet.toyworld.training import RECIPE_MINUTES, RECIPE_N_TRAIN, RECIPE_STEPS


def test_frame_and_text_features():
    f = ToyFrameFeatures().encode_frames(torch.rand(2, 5, 3, 32, 32))
    assert f.shape == (2, 5, 48)
    torch.testing.assert_close(f.norm(dim=-1), torch.ones(2, 5))
    enc = ToyTextEncoder(dim=32, seq_len=4)
    t = enc.encode_text(["bell", "pluck", "", "bell"])
    assert t.shape == (4, 4, 32)
    assert torch.equal(t[0], t[3]) and not torch.equal(t[0], t[1])
    assert not t[2].any()


def test_codec_round_trip_keeps_pitch():
    codec = ToyMelCodec()
    sr, n = 16000, 40960
    wave = 0.4 * torch.sin(2 * math.pi * 660 * torch.arange(n) / sr)[None]
    z = codec.encode(wave).mean
    assert z.shape == (1, n // codec.hop_length, codec.latent_dim)
    out = codec.latents_to_wav(z)
    assert out.shape == (1, n)
    spec = torch.fft.rfft(out[0]).abs()
    peak_hz = float(spec.argmax()) * sr / n
    assert abs(peak_hz - 660) < 30


@pytest.mark.parametrize("variant", ["toy", "toy_baseline"])
def test_shipped_checkpoints_load_strictly(variant):
    name = "saganet_tiny" if variant == "toy" else "baseline_tiny"
    meta = json.loads(toy_checkpoint_path(name).with_suffix(".json").read_text())
    assert meta["command"].startswith("saganet toyworld train") and "seed" in meta
    # the shipped models were made by the recipe that `saganet toyworld train` runs by default
    assert f"--minutes {RECIPE_MINUTES:g} --steps {RECIPE_STEPS} --n-train {RECIPE_N_TRAIN} " in meta["command"]
    assert meta["steps_done"] == RECIPE_STEPS
    model = build_toy(variant)
    assert model.segaware == (variant == "toy")
    assert torch.all(model.dit.latent_std > 0)


def test_demo_writes_outputs_and_metrics(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "-q"]) == 0
    report = capsys.readouterr().out
    assert "| object |" in report and "onset F1" in report
    run = json.loads((out / "run.json").read_text())
    stems = sorted(out.glob("stem_*.flac"))
    assert len(stems) == len(run["objects"]) >= 2
    mp4 = out / "scene_saganet.mp4"
    with av.open(str(mp4)) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
    # a second run refuses to overwrite, --overwrite replaces
    assert main(["demo", "-o", str(out), "-q"]) == 2
    assert main(["demo", "-o", str(out), "-q", "--overwrite"]) == 0


def test_evaluate_small(tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["toyworld", "evaluate", "-n", "2", "--steps", "2", "--workers", "1", "-o", str(out), "-q"]) == 0
    table = (out / "table.md").read_text()
    for row in ("multi_diff | SAGANet-tiny", "multi_diff | baseline", "multi_same | SAGANet-tiny", "mixture"):
        assert row in table
    res = json.loads((out / "results.json").read_text())
    up = res["kinds"]["multi_diff"]["target stem (upper bound)"]["summary"]
    assert up["class_correct"][0] == 1.0
