"""End to end through `saganet generate` on the real clips, with the tiny random model of all real classes."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from saganet.cli import main
from saganet.io.audio import read_audio
from saganet.io.writers import write_mask_video
from saganet.outputs import mix_stems
from saganet.pipeline import GenerationOptions, SAGANetPipeline
from saganet.variants import build_tiny

URMP = "urmp_09_jesus_tpt_vn"
VIDEO = "Vid_09_Jesus_tpt_vn_159092_164092.mp4"
MASKS = ("Masks_01_tpt_09_Jesus_159092_164092.mp4", "Masks_02_vn_09_Jesus_159092_164092.mp4")


def _streams(path: Path) -> tuple[int, int, float]:
    with av.open(str(path)) as c:
        a = c.streams.audio
        dur = float(a[0].duration * a[0].time_base) if a and a[0].duration else float(c.duration or 0) / 1e6
        return len(c.streams.video), len(a), dur


@pytest.fixture(scope="module")
def urmp_run(media_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("urmp")
    d = media_dir / URMP
    argv = ["generate", str(d / VIDEO), "--mask", str(d / MASKS[0]), "--mask", str(d / MASKS[1]),
            "--name", "trumpet", "--name", "violin", "--variant", "tiny", "--steps", "2", "--prompt", "music",
            "--object-prompt", "violin=violin", "--negative-prompt", "noise", "--gain", "trumpet=-6",
            "--overlay-masks", "-q", "-o", str(out)]
    assert main(argv) == 0
    return out


def test_urmp_two_stems_mix_and_video(urmp_run):
    run = json.loads((urmp_run / "run.json").read_text())
    assert run["objects"] == ["trumpet", "violin"] and run["prompts"] == ["music", "violin"]
    assert run["options"]["negative_prompt"] == "noise" and run["variant"] == "tiny"
    duration = run["duration"]
    assert duration == pytest.approx(2.0, abs=0.05)  # capped at the tiny model's trained length
    for name in ("stem_trumpet.flac", "stem_violin.flac", "mix.flac"):
        wav, sr = read_audio(urmp_run / name)
        assert sr == 16000 and wav.shape[0] == pytest.approx(duration * sr, abs=2)
        assert torch.isfinite(wav).all()
    n_video, n_audio, audio_dur = _streams(urmp_run / f"{Path(VIDEO).stem}_saganet.mp4")
    assert n_video == 1 and n_audio == 1
    assert audio_dur == pytest.approx(duration, abs=0.1)


def test_vggsound_full_frame_mask(media_dir, tmp_path):
    for video in sorted((media_dir / "vggsound").glob("*.mp4")):
        with av.open(str(video)) as c:
            s = c.streams.video[0]
            h, w = s.height, s.width
        mask = tmp_path / f"{video.stem}_full.mp4"
        write_mask_video(mask, np.ones((60, h // 8 * 2, w // 8 * 2), bool), 25)
        out = tmp_path / video.stem
        assert main(["generate", str(video), "--mask", str(mask), "--variant", "tiny", "--steps", "2",
                     "--format", "wav", "--sampler", "heun", "--no-video", "-q", "-o", str(out)]) == 0
        assert (out / f"stem_{mask.stem}.wav").is_file() and (out / "mix.wav").is_file()
        assert not list(out.glob("*.mp4"))


@pytest.fixture(scope="module")
def tiny_pipe():
    return SAGANetPipeline(build_tiny(), "tiny")


@pytest.fixture(scope="module")
def urmp_inputs(media_dir, tiny_pipe):
    from saganet.io.masks import MaskSpec

    d = media_dir / URMP
    video = tiny_pipe.load_video(d / VIDEO, duration=1.2, quiet=True)
    masks = tiny_pipe.load_masks([MaskSpec(d / m) for m in MASKS], video)
    return video, masks


def test_objects_batched_equal_single_runs(tiny_pipe, urmp_inputs):
    video, masks = urmp_inputs
    opt = GenerationOptions(steps=2, seed=3, progress=False)
    both = tiny_pipe.generate(video, masks, opt)
    assert both.stems.shape == (2, int(round(1.2 * 16000)))
    # the same seed draws the batch noise at once; a single run gets the first row of it
    first = tiny_pipe.generate(video, masks[:1], opt)
    torch.testing.assert_close(first.stems[0], both.stems[0], atol=2e-4, rtol=1e-3)
    again = tiny_pipe.generate(video, masks, opt)
    torch.testing.assert_close(again.stems, both.stems)
    assert not torch.allclose(both.stems[0], both.stems[1])


def test_plain_model_ignores_masks(urmp_inputs):
    video, masks = urmp_inputs
    pipe = SAGANetPipeline(build_tiny(segaware=False), "tiny-plain")
    res = pipe.generate(video, masks, GenerationOptions(steps=2, progress=False))
    assert res.names == ["audio"] and res.stems.shape[0] == 1


def test_start_and_duration(media_dir, tiny_pipe):
    video = tiny_pipe.load_video(media_dir / URMP / VIDEO, start=1.0, duration=0.8, quiet=True)
    assert video.duration == pytest.approx(0.8) and video.sync_frames.shape[0] == 20
    assert video.start == pytest.approx(1.0)


def test_mix_gains_and_peak_safety():
    stems = torch.stack([torch.full((100,), 0.2), torch.full((100,), 0.4)])
    torch.testing.assert_close(mix_stems(stems), torch.full((100,), 0.6))
    torch.testing.assert_close(mix_stems(stems, [-6.0206, 0.0]), torch.full((100,), 0.5), atol=1e-4, rtol=0)
    loud = mix_stems(stems * 3)
    assert float(loud.abs().max()) == pytest.approx(0.99)
    assert float(stems.max()) == pytest.approx(0.4)  # stems keep their own levels


def test_bfloat16_networks(urmp_inputs):
    video, masks = urmp_inputs
    pipe = SAGANetPipeline(build_tiny(), "tiny", dtype=torch.bfloat16)
    res = pipe.generate(video, masks[:1], GenerationOptions(steps=2, progress=False))
    assert res.stems.dtype == torch.float32 and torch.isfinite(res.stems).all()
