"""`saganet generate` end to end on the real clips of ../shared/media with the tiny random model.

The tiny variant has every real class (open_clip CLIP, segmentation-aware MotionFormer, MM-DiT, VAE +
BigVGAN at 16 kHz) and was "trained" for 2.0 s, so a run without --duration makes 2.0 s of audio. Each
URMP run decodes 1080p frames (a few seconds): the runs are module-scoped and shared by the tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from saganet.app.cli import main
from saganet.app.outputs import mix_stems
from saganet.io.audio import read_audio
from saganet.io.mux import PALETTE
from saganet.io.writers import write_mask_video

URMP = "urmp_09_jesus_tpt_vn"
VIDEO = "Vid_09_Jesus_tpt_vn_159092_164092.mp4"
TPT_MASK = "Masks_01_tpt_09_Jesus_159092_164092.mp4"
VN_MASK = "Masks_02_vn_09_Jesus_159092_164092.mp4"
SR = 16000
TRAINED = 2.0  # seconds: the tiny variant's trained length caps the default duration


def _cli(capsys, argv: list) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _first_frame(path: Path, fmt: str = "rgb24") -> np.ndarray:
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            return f.to_ndarray(format=fmt)
    raise AssertionError(f"{path} has no frame")


def _streams(path: Path) -> tuple[int, int, int, float]:
    """(video streams, audio streams, audio sample rate, decoded audio seconds)."""
    with av.open(str(path)) as c:
        n_v, n_a = len(c.streams.video), len(c.streams.audio)
        rate = c.streams.audio[0].rate
        samples = sum(f.samples for f in c.decode(audio=0))
    return n_v, n_a, rate, samples / rate


def _visible_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ------------------------------------------------------------------------------------------ URMP, all options
@pytest.fixture(scope="module")
def urmp(media_dir: Path, tmp_path_factory) -> dict:
    d = media_dir / URMP
    out = tmp_path_factory.mktemp("urmp_full") / "out"  # the folder is created by the run
    argv = ["generate", d / VIDEO, "--mask", d / TPT_MASK, "--mask", d / VN_MASK, "--name", "trumpet",
            "--name", "violin", "--variant", "tiny", "--steps", "2", "--seed", "7", "--sampler", "heun",
            "--cfg", "3.0", "--prompt", "orchestra", "--object-prompt", "violin=a violin solo",
            "--negative-prompt", "noise", "--gain", "trumpet=-6", "--overlay-masks", "-q", "-o", out]
    code = main([str(a) for a in argv])
    return {"code": code, "out": out, "dir": d}


@pytest.fixture()
def urmp_ok(urmp: dict) -> dict:
    assert urmp["code"] == 0
    return urmp


def test_urmp_writes_two_stems_mix_mp4_and_run_json(urmp_ok):
    out = urmp_ok["out"]
    assert _visible_files(out) == {"stem_trumpet.flac", "stem_violin.flac", "mix.flac",
                                   f"{Path(VIDEO).stem}_saganet.mp4", "run.json"}  # no temp leftovers
    stems = []
    for name in ("stem_trumpet.flac", "stem_violin.flac", "mix.flac"):
        wav, sr = read_audio(out / name)
        assert sr == SR
        assert wav.shape == (int(TRAINED * SR),)
        assert torch.isfinite(wav).all() and wav.abs().max() > 0
        stems.append(wav)
    assert not torch.allclose(stems[0], stems[1])  # each object has its own sound


def test_urmp_mix_is_the_gain_weighted_sum_of_the_stems(urmp_ok):
    out = urmp_ok["out"]
    tpt, _ = read_audio(out / "stem_trumpet.flac")
    vn, _ = read_audio(out / "stem_violin.flac")
    mix, _ = read_audio(out / "mix.flac")
    expected = mix_stems(torch.stack([tpt, vn]), [-6.0, 0.0])
    torch.testing.assert_close(mix, expected, atol=1e-4, rtol=0)  # 24-bit flac quantisation


def test_urmp_mp4_has_one_audio_stream_of_the_generated_length(urmp_ok):
    n_video, n_audio, rate, seconds = _streams(urmp_ok["out"] / f"{Path(VIDEO).stem}_saganet.mp4")
    assert (n_video, n_audio) == (1, 1)  # the source's own audio track is dropped
    assert rate == SR
    assert seconds == pytest.approx(TRAINED, abs=0.1)
    with av.open(str(urmp_ok["out"] / f"{Path(VIDEO).stem}_saganet.mp4")) as c:
        v = c.streams.video[0]
        assert (v.width, v.height) == (1920, 1080)
        assert sum(1 for _ in c.decode(video=0)) == pytest.approx(TRAINED * 25, abs=1)


def test_urmp_run_json_records_inputs_and_options(urmp_ok):
    run = json.loads((urmp_ok["out"] / "run.json").read_text())
    d = urmp_ok["dir"]
    assert run["video"] == str(d / VIDEO)
    assert run["masks"] == [str(d / TPT_MASK), str(d / VN_MASK)]
    assert run["variant"] == "tiny" and run["device"] == "cpu" and run["dtype"] == "fp32"
    assert run["objects"] == ["trumpet", "violin"]
    assert run["prompts"] == ["orchestra", "a violin solo"]
    opt = run["options"]
    assert (opt["steps"], opt["seed"], opt["sampler"], opt["cfg_strength"]) == (2, 7, "heun", 3.0)
    assert opt["prompt"] == "orchestra" and opt["negative_prompt"] == "noise"
    assert opt["prompts"] == {"violin": "a violin solo"}
    assert run["duration"] == pytest.approx(TRAINED) and run["sample_rate"] == SR and run["start"] == 0.0
    assert set(run["timings"]) >= {"clip", "text", "sync", "dit", "vae", "vocoder"}
    assert run["outputs"]["mix"] == "mix.flac" and run["outputs"]["stem:violin"] == "stem_violin.flac"


def test_overlay_masks_outline_each_object_in_its_colour(urmp_ok):
    """At the mask boundary the output frame shows the object's palette colour, elsewhere the source."""
    d = urmp_ok["dir"]
    src = _first_frame(d / VIDEO).astype(np.int32)
    out = _first_frame(urmp_ok["out"] / f"{Path(VIDEO).stem}_saganet.mp4").astype(np.int32)
    assert np.abs(out - src).mean() < 3  # re-encoded, otherwise the same picture
    for mask_file, colour in ((TPT_MASK, PALETTE[0]), (VN_MASK, PALETTE[1])):
        m = torch.from_numpy(_first_frame(d / mask_file, "gray") > 128).float()[None, None]
        band = ((F.max_pool2d(m, 3, 1, 1) + F.max_pool2d(-m, 3, 1, 1))[0, 0] > 0).numpy()
        assert band.sum() > 500
        assert np.abs(out[band] - np.array(colour)).mean() < 50  # chroma subsampling blurs a 3 px line
        assert np.abs(out[band] - src[band]).mean() > 35


# ------------------------------------------------------------------------------------------ URMP, defaults + wav
@pytest.fixture(scope="module")
def urmp_wav(media_dir: Path, tmp_path_factory) -> dict:
    d = media_dir / URMP
    out = tmp_path_factory.mktemp("urmp_wav")
    argv = ["generate", d / VIDEO, "--mask", d / TPT_MASK, "--mask", d / VN_MASK, "--variant", "tiny",
            "--steps", "2", "--duration", "1.0", "--start", "0.5", "--format", "wav", "--no-video", "-q",
            "-o", out]
    code = main([str(a) for a in argv])
    return {"code": code, "out": out}


def test_wav_format_default_names_and_time_range(urmp_wav):
    assert urmp_wav["code"] == 0
    out = urmp_wav["out"]
    names = [f"stem_{Path(TPT_MASK).stem}.wav", f"stem_{Path(VN_MASK).stem}.wav", "mix.wav"]
    assert _visible_files(out) == {*names, "run.json"}  # --no-video: no mp4
    for name in names:
        wav, sr = read_audio(out / name)
        assert sr == SR and wav.shape == (SR,)  # --duration 1.0
    run = json.loads((out / "run.json").read_text())
    assert run["duration"] == pytest.approx(1.0) and run["start"] == 0.5
    assert "video" not in run["outputs"]
    assert run["options"]["sampler"] == "euler" and run["options"]["steps"] == 2


def test_stdout_lists_the_written_files(media_dir, tmp_path, capsys):
    """A short run (0.8 s) that also checks what the command prints: one written path per line."""
    d = media_dir / URMP
    out = tmp_path / "o"
    code, stdout, err = _cli(capsys, ["generate", d / VIDEO, "--mask", d / VN_MASK, "--name", "violin",
                                      "--variant", "tiny", "--steps", "1", "--duration", "0.8", "--no-video",
                                      "-q", "-o", out])
    assert code == 0, err
    assert stdout.split() == [str(out / "stem_violin.flac"), str(out / "mix.flac"), str(out / "run.json")]
    assert "Traceback" not in err


# ------------------------------------------------------------------------------------------ VGGSound, full-frame masks
def _frame_size(video: Path) -> tuple[int, int]:
    with av.open(str(video)) as c:
        s = c.streams.video[0]
        return s.height, s.width


def test_vggsound_full_frame_mask_video(media_dir, tmp_path):
    video = media_dir / "vggsound" / "F8Zt3mYlOqU_000094.mp4"
    h, w = _frame_size(video)
    mask = tmp_path / "everything.mp4"
    write_mask_video(mask, np.ones((3 * 25, h // 10, w // 10), bool), 25)  # 3 s, same aspect, smaller
    out = tmp_path / "out"
    assert main(["generate", str(video), "--mask", str(mask), "--variant", "tiny", "--steps", "2", "-q",
                 "-o", str(out)]) == 0
    wav, sr = read_audio(out / "stem_everything.flac")
    assert sr == SR and wav.shape == (int(TRAINED * SR),)
    n_video, n_audio, _, seconds = _streams(out / f"{video.stem}_saganet.mp4")
    assert (n_video, n_audio) == (1, 1) and seconds == pytest.approx(TRAINED, abs=0.1)


def test_vggsound_full_frame_png_folder_with_start(media_dir, tmp_path):
    from PIL import Image

    video = media_dir / "vggsound" / "0B4dYTMsgHA_000130.mp4"  # 30 fps
    h, w = _frame_size(video)
    masks = tmp_path / "whole_scene"
    masks.mkdir()
    white = Image.fromarray(np.full((h // 20, w // 20), 255, np.uint8))
    for i in range(4 * 30):  # PNG frames at the video's rate, covering 0-4 s
        white.save(masks / f"{i:04d}.png")
    out = tmp_path / "out"
    assert main(["generate", str(video), "--mask", str(masks), "--variant", "tiny", "--steps", "2",
                 "--start", "2.5", "--duration", "1.2", "-q", "-o", str(out)]) == 0
    wav, _ = read_audio(out / "stem_whole_scene.flac")
    assert wav.shape == (int(1.2 * SR),)
    _, n_audio, _, seconds = _streams(out / f"{video.stem}_saganet.mp4")
    assert n_audio == 1 and seconds == pytest.approx(1.2, abs=0.1)
    run = json.loads((out / "run.json").read_text())
    assert run["start"] == 2.5 and run["duration"] == pytest.approx(1.2)
