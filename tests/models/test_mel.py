"""Mel converter: hand-written Slaney filterbank vs the reference buffers, and the front end (RN-19)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from saganet.models.mel import MEL_PRESETS, MelConverter, slaney_mel_filterbank


@pytest.mark.parametrize("case", ["mel_16k", "mel_44k"])
def test_computed_buffers_match_reference(golden_dir, case):
    d = golden_dir / case
    cfg = json.loads((d / "case.json").read_text())["config"]
    ref = load_file(str(d / "weights.safetensors"))
    mc = MelConverter(**cfg)
    diff = (mc.mel_basis - ref["mel_basis"]).abs().max().item()
    print(f"{case}: max |mel_basis - librosa| = {diff:.3g}")
    assert diff <= 1e-8  # measured: 0 (bit-exact)
    assert torch.equal(mc.hann_window, ref["hann_window"])


@pytest.mark.parametrize("case", ["mel_16k", "mel_44k"])
def test_golden_mel_with_computed_basis(golden_dir, case):
    d = golden_dir / case
    cfg = json.loads((d / "case.json").read_text())["config"]
    wav = load_file(str(d / "inputs.safetensors"))["waveform"].float()
    expected = load_file(str(d / "outputs.safetensors"))["mel"]
    mel = MelConverter(**cfg)(wav)
    assert mel.shape == expected.shape
    assert torch.allclose(mel, expected, rtol=1e-4, atol=5e-3)


def test_filterbank_properties():
    fb = slaney_mel_filterbank(16000, 1024, 80, 0, 8000)
    assert fb.shape == (80, 513) and fb.dtype == torch.float32
    assert (fb >= 0).all() and (fb.sum(1) > 0).all()  # every band has some support
    peaks = fb.argmax(1)
    assert (peaks[1:] >= peaks[:-1]).all()  # bands ordered by frequency


@pytest.mark.parametrize("preset", ["16k", "44k"])
def test_frames_clamp_and_floor(preset):
    mc = MelConverter.from_preset(preset)
    hop = MEL_PRESETS[preset].hop_size
    wav = torch.randn(2, hop * 20) * 3  # exceeds [-1, 1]
    mel = mc(wav)
    assert mel.shape == (2, MEL_PRESETS[preset].num_mels, 20)
    assert torch.equal(mel, mc(wav.clamp(-1, 1)))  # input is clamped first
    silent = mc(torch.zeros(1, hop * 4))
    floor = torch.log10(torch.tensor(1e-5)) if preset == "16k" else torch.log(torch.tensor(1e-5))
    assert torch.allclose(silent, floor.expand_as(silent), atol=1e-3)


def test_bad_norm_fn():
    with pytest.raises(ValueError):
        MelConverter(16000, 1024, 80, 256, 1024, 0, 8000, "ln")
