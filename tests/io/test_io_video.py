"""Video decoding: URMP / VGGSound media, timestamp resampling at any fps (incl. VFR), rotation, errors."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch

from saganet.errors import InputError
from saganet.io.video import FRAME_RULES, decode_video, pick_frames, probe_video

URMP = "urmp_09_jesus_tpt_vn/Vid_09_Jesus_tpt_vn_159092_164092.mp4"


def index_frame(i: int, h: int = 48, w: int = 64) -> np.ndarray:
    """A frame that encodes its index in two halves (robust to lossy coding and resizing)."""
    f = np.zeros((h, w, 3), np.uint8)
    f[:, : w // 2] = (i // 8) * 32 + 16
    f[:, w // 2:] = (i % 8) * 32 + 16
    return f


def read_index(rgb01: torch.Tensor) -> int:
    """(3, S, S) in [0, 1] -> the frame index drawn by `index_frame`."""
    s = rgb01.shape[-1]
    hi = rgb01[:, s // 2, s // 8].mean().item() * 255
    lo = rgb01[:, s // 2, s - s // 8].mean().item() * 255
    return int(round((hi - 16) / 32)) * 8 + int(round((lo - 16) / 32))


def make_video(path: Path, frames: list[np.ndarray], fps: Fraction | int = 25, pts_ms: list[int] | None = None,
               rotation: int | None = None, audio: bool = False) -> Path:
    """Encode RGB frames with PyAV; `pts_ms` sets irregular timestamps by hand (variable frame rate)."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": "10"}
        if pts_ms is not None:
            s.codec_context.time_base = Fraction(1, 1000)
            s.time_base = Fraction(1, 1000)
        if rotation is not None:
            s.set_display_rotation(rotation)
        a = c.add_stream("aac", rate=16000, layout="mono") if audio else None
        for i, fr in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(fr, format="rgb24")
            if pts_ms is not None:
                vf.pts, vf.time_base = pts_ms[i], Fraction(1, 1000)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
        if a is not None:
            n = int(16000 * len(frames) / float(fps))
            for k in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(np.zeros((1, min(1024, n - k)), np.float32), format="fltp",
                                                layout="mono")
                af.sample_rate, af.pts = 16000, k
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode(None):
                c.mux(p)
    return path


@pytest.fixture(scope="module")
def urmp(media_dir):
    return decode_video(media_dir / URMP, quiet=True)


def test_urmp_probe(media_dir):
    info = probe_video(media_dir / URMP)
    assert (info.width, info.height, info.fps, info.n_frames) == (1920, 1080, 25.0, 125)
    assert info.has_audio and info.rotation == 0 and math.isclose(info.duration, 5.0)


def test_urmp_decode(urmp):
    assert urmp.clip_frames.shape == (40, 3, 384, 384)
    assert urmp.sync_frames.shape == (125, 3, 224, 224)
    assert urmp.clip_frames.dtype == torch.float32 and urmp.sync_frames.dtype == torch.float32
    assert 0.0 <= urmp.clip_frames.min() and urmp.clip_frames.max() <= 1.0
    assert -1.0 <= urmp.sync_frames.min() and urmp.sync_frames.max() <= 1.0
    assert urmp.sync_frames.min() < -0.9 and urmp.sync_frames.max() > 0.5  # black borders and bright parts
    torch.testing.assert_close(urmp.clip_times, torch.arange(40, dtype=torch.float64) / 8)
    torch.testing.assert_close(urmp.sync_times, torch.arange(125, dtype=torch.float64) / 25)
    assert urmp.duration == pytest.approx(5.0) and urmp.size == (1080, 1920) and urmp.fps == 25.0
    # consecutive sync frames come from different source frames (no duplication at 25 -> 25 fps)
    assert (urmp.sync_frames[1:] - urmp.sync_frames[:-1]).abs().flatten(1).amax(1).min() > 0


def test_urmp_clip_and_sync_agree(urmp):
    """Clip frame k (t = k/8) is sync frame ceil(25 k / 8) (first frame at or after k/8) at another size."""
    for k in (0, 7, 39):
        j = math.ceil(Fraction(25 * k, 8))
        small = torch.nn.functional.interpolate(urmp.clip_frames[k][None], (224, 224), mode="area")[0]
        diff = (small - (urmp.sync_frames[j] + 1) / 2).abs().mean()
        assert diff < 0.02, (k, j, diff)


@pytest.mark.parametrize("name", ["0B4dYTMsgHA_000130.mp4", "F8Zt3mYlOqU_000094.mp4"])
def test_vggsound_decode(media_dir, name):
    info = probe_video(media_dir / "vggsound" / name)
    assert info.has_audio and (info.width, info.height) == (1280, 720)
    v = decode_video(media_dir / "vggsound" / name, start=1.0, duration=1.5, quiet=True)
    assert v.clip_frames.shape == (12, 3, 384, 384) and v.sync_frames.shape == (37, 3, 224, 224)
    assert v.sync_times[0].item() == pytest.approx(1.0) and v.duration == pytest.approx(1.5)


# The first source frames the reference rule (first frame at or after k / rate) picks, worked out by hand:
# 25 fps: 3.125 k at 8 fps; 29.97 fps: 3.746 k at 8 fps, 1.199 k at 25 fps; 30 fps: 3.75 k, 1.2 k.
FIRST_AT_OR_AFTER = {
    (Fraction(25), 8): [0, 4, 7, 10, 13, 16, 19, 22, 25, 29],
    (Fraction(25), 25): [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    (Fraction(30000, 1001), 8): [0, 4, 8, 12, 15, 19, 23, 27, 30, 34],
    (Fraction(30000, 1001), 25): [0, 2, 3, 4, 5, 6, 8, 9, 10, 11],
    (Fraction(30), 8): [0, 4, 8, 12, 15, 19, 23, 27, 30, 34],
    (Fraction(30), 25): [0, 2, 3, 4, 5, 6, 8, 9, 10, 11],
}


@pytest.mark.parametrize("rule", FRAME_RULES)
@pytest.mark.parametrize("fps", [Fraction(25), Fraction(30000, 1001), Fraction(30)])
def test_frame_rates_resample_by_timestamp(tmp_path, fps, rule):
    """Each 8 fps (CLIP) and 25 fps (sync) target shows exactly the source frame the rule names."""
    n = 60
    path = make_video(tmp_path / "v.mp4", [index_frame(i) for i in range(n)], fps=fps)
    info = probe_video(path)
    assert info.fps == pytest.approx(float(fps)) and info.n_frames == n
    v = decode_video(path, quiet=True, frame_rule=rule)
    assert v.frame_rule == rule
    dur = n / float(fps)
    assert v.duration == pytest.approx(dur, abs=1e-6)
    assert v.sync_frames.shape[0] == int(math.floor(25 * dur + 1e-6))
    assert v.clip_frames.shape[0] == int(math.floor(8 * dur + 1e-6))
    for frames, times, rate in ((v.sync_frames, v.sync_times, 25), (v.clip_frames, v.clip_times, 8)):
        torch.testing.assert_close(times, torch.arange(len(times), dtype=torch.float64) / rate)
        got = [read_index((fr + 1) / 2 if rate == 25 else fr) for fr in frames]
        # source frame j is at j / fps; target k at k / rate: exact rational arithmetic, no tolerance needed
        exact = [Fraction(k, rate) * fps for k in range(len(frames))]
        want = [math.ceil(x) if rule == "at_or_after" else math.floor(x) for x in exact]
        assert got == want, (rate, rule)
        if rule == "at_or_after":
            assert got[:10] == FIRST_AT_OR_AFTER[(fps, rate)]


def test_default_rule_is_the_references():
    """Default: first frame at or after each target (the reference reader); the other rule on request."""
    frame_times = np.arange(60) / 25
    targets = np.arange(16) / 8
    assert pick_frames(frame_times, targets).tolist() == [math.ceil(Fraction(25 * k, 8)) for k in range(16)]
    assert pick_frames(frame_times, targets, "at_or_before").tolist() == [25 * k // 8 for k in range(16)]
    # timestamps a hair off the exact time (time-base rounding) still count as on the target
    assert pick_frames(frame_times + 3e-5, [1.0]).tolist() == [25]
    assert pick_frames(frame_times - 3e-5, [1.0], "at_or_before").tolist() == [25]
    # before the first frame -> the first; after the last -> the last
    assert pick_frames(frame_times + 0.5, [0.0, 10.0]).tolist() == [0, 59]
    assert pick_frames(frame_times + 0.5, [0.0, 10.0], "at_or_before").tolist() == [0, 59]


@pytest.mark.parametrize("rule", FRAME_RULES)
def test_low_fps_duplicates_frames(tmp_path, rule):
    path = make_video(tmp_path / "v.mp4", [index_frame(i) for i in range(10)], fps=5)  # 2 s
    v = decode_video(path, quiet=True, frame_rule=rule)
    assert v.sync_frames.shape[0] == 50 and v.clip_frames.shape[0] == 16
    got = [read_index((f + 1) / 2) for f in v.sync_frames]
    # at or after: ceil(k / 5), the last 4 targets (after the last frame at 1.8 s) repeat frame 9
    want = [min(-(-k // 5), 9) for k in range(50)] if rule == "at_or_after" else [k // 5 for k in range(50)]
    assert got == want


@pytest.mark.parametrize("rule", FRAME_RULES)
def test_variable_frame_rate(tmp_path, rule):
    pts = [0, 100, 130, 500, 520, 900, 1000, 1400, 1420, 1900]
    path = make_video(tmp_path / "vfr.mp4", [index_frame(i) for i in range(len(pts))], pts_ms=pts)
    v = decode_video(path, quiet=True, frame_rule=rule)
    assert v.sync_frames.shape[0] >= 47  # up to 1.9 s + the last frame's duration
    for k, fr in enumerate(v.sync_frames):
        t_ms = 40 * k  # target k / 25 s in integer milliseconds
        if rule == "at_or_after":
            expected = next((i for i, p in enumerate(pts) if p >= t_ms), len(pts) - 1)
        else:
            expected = max(i for i, p in enumerate(pts) if p <= t_ms)
        assert read_index((fr + 1) / 2) == expected, k


def test_start_and_duration(tmp_path):
    path = make_video(tmp_path / "v.mp4", [index_frame(i) for i in range(60)], fps=25)
    v = decode_video(path, start=0.5, duration=1.0, quiet=True, keep_original=True)
    assert v.sync_frames.shape[0] == 25 and v.clip_frames.shape[0] == 8
    # targets 0.50, 0.54, ...: frames are at 0.48, 0.52, ...: the first at or after 0.5 s is frame 13
    assert [read_index((f + 1) / 2) for f in v.sync_frames] == list(range(13, 38))
    before = decode_video(path, start=0.5, duration=1.0, quiet=True, frame_rule="at_or_before")
    assert [read_index((f + 1) / 2) for f in before.sync_frames] == list(range(12, 37))
    assert v.original_frames.shape == (26, 48, 64, 3)  # 0.48 .. 1.48 s
    assert v.original_frames.dtype == torch.uint8
    assert v.original_times[0].item() == pytest.approx(0.48)  # frame 12 is on screen at 0.5 s
    # asking for more than the file holds gives what it holds
    v2 = decode_video(path, start=1.0, duration=10.0, quiet=True)
    assert v2.duration == pytest.approx(1.4) and v2.sync_frames.shape[0] == 35


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata(tmp_path, rotation):
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:16, :16] = 255  # a marker in the top-left corner of the stored frame
    path = make_video(tmp_path / "r.mp4", [frame] * 20, rotation=rotation)
    info = probe_video(path)
    assert info.rotation == rotation % 360
    assert (info.height, info.width) == ((64, 48) if rotation % 180 else (48, 64))
    v = decode_video(path, quiet=True, keep_original=True)
    img = v.original_frames[0].float().mean(-1)
    h, w = img.shape
    assert (h, w) == (info.height, info.width)
    # counter-clockwise display rotation moves the top-left corner to bottom-left (90), top-right (-90)
    # or bottom-right (180)
    corner = {90: img[-8:, :8], 270: img[:8, -8:], 180: img[-8:, -8:]}[rotation % 360]
    assert corner.mean() > 200 and img.mean() < 100


def test_sync_geometry_center_crop(tmp_path):
    frame = np.full((48, 96, 3), 128, np.uint8)
    frame[:, :8] = 255  # a white stripe at the left edge: squashed it stays, centre-cropped it goes
    path = make_video(tmp_path / "wide.mp4", [frame] * 20)
    sq = decode_video(path, quiet=True)
    cc = decode_video(path, quiet=True, sync_geometry="center_crop")
    assert sq.sync_frames.shape == cc.sync_frames.shape == (20, 3, 224, 224)
    assert sq.sync_frames[0, :, :, :10].mean() > 0.9
    assert cc.sync_frames[0, :, :, :10].mean() == pytest.approx(128 / 127.5 - 1, abs=0.05)
    assert sq.clip_frames[0, :, :, :20].mean() > 0.95  # CLIP frames are always squashed


def test_video_without_audio_and_with_audio(tmp_path):
    a = make_video(tmp_path / "a.mp4", [index_frame(i) for i in range(20)], audio=True)
    b = make_video(tmp_path / "b.mp4", [index_frame(i) for i in range(20)])
    assert probe_video(a).has_audio and not probe_video(b).has_audio
    assert decode_video(a, quiet=True).sync_frames.shape[0] == 20


# ------------------------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        decode_video(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="not found"):
        probe_video(tmp_path / "nope.mp4")


def test_corrupt_bytes(tmp_path):
    p = tmp_path / "bad.mp4"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="bad.mp4"):
        decode_video(p)


def test_truncated_file(tmp_path):
    good = make_video(tmp_path / "g.mp4", [index_frame(i) for i in range(50)])
    data = good.read_bytes()
    p = tmp_path / "trunc.mp4"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError) as e:
        decode_video(p, quiet=True)
    assert "\n" not in str(e.value) and "trunc.mp4" in str(e.value)


def test_not_a_video(tmp_path):
    wav = tmp_path / "sound.wav"
    sf.write(str(wav), np.zeros(16000, np.float32), 16000)
    with pytest.raises(InputError, match="no video stream"):
        decode_video(wav)
    txt = tmp_path / "notes.mp4"
    txt.write_text("this is not a video\n" * 20)
    with pytest.raises(InputError):
        decode_video(txt)
    with pytest.raises(InputError, match="not a file"):
        decode_video(tmp_path)


def test_too_short(tmp_path):
    p = make_video(tmp_path / "short.mp4", [index_frame(i) for i in range(15)])  # 0.6 s < 0.64 s
    with pytest.raises(InputError, match="too short"):
        decode_video(p, quiet=True)
    ok = make_video(tmp_path / "ok.mp4", [index_frame(i) for i in range(16)])
    assert decode_video(ok, quiet=True).sync_frames.shape[0] == 16


def test_bad_arguments(tmp_path):
    p = make_video(tmp_path / "v.mp4", [index_frame(i) for i in range(20)])
    with pytest.raises(InputError, match="geometry"):
        decode_video(p, sync_geometry="stretch")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="start"):
        decode_video(p, start=-1.0)
    with pytest.raises(InputError, match="frame rule"):
        decode_video(p, frame_rule="nearest")  # type: ignore[arg-type]
