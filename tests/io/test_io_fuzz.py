"""Fuzzing the readers: random bytes, damaged and random tiny videos may only raise `InputError`."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from saganet.errors import InputError
from saganet.io.masks import MaskSpec, RawMask, align_mask, read_mask
from saganet.io.video import decode_video, probe_video
from saganet.io.writers import write_video

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _tiny_video(t: int = 20, h: int = 16, w: int = 16, fps: float = 25, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "v.mp4"
        write_video(p, rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8), fps)
        return p.read_bytes()


VALID = _tiny_video()


def _only_input_errors(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except InputError as e:
        assert str(e) and "\n" not in str(e)
        return None


@FUZZ
@given(data=st.binary(min_size=0, max_size=4000), suffix=st.sampled_from([".mp4", ".mkv", ".avi", ".wav", ""]))
def test_random_bytes_video(tmp_path, data, suffix):
    p = tmp_path / f"x{suffix}"
    p.write_bytes(data)
    _only_input_errors(probe_video, p)
    _only_input_errors(decode_video, p, quiet=True)


@FUZZ
@given(cut=st.integers(0, len(VALID)), flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1),
                                                                 st.integers(0, 255)), max_size=20))
@example(cut=len(VALID), flips=[])
@example(cut=len(VALID), flips=[(len(VALID) // 2 + i, 0) for i in range(20)])
@example(cut=len(VALID) - 200, flips=[])
def test_damaged_video(tmp_path, cut, flips):
    data = bytearray(VALID)
    for pos, val in flips:
        data[pos] = val
    p = tmp_path / "damaged.mp4"
    p.write_bytes(bytes(data[:cut]))
    v = _only_input_errors(decode_video, p, quiet=True)
    if v is not None:
        assert v.sync_frames.shape[1:] == (3, 224, 224) and v.sync_frames.shape[0] >= 16
        assert np.isfinite(v.sync_frames.numpy()).all()
    _only_input_errors(read_mask, MaskSpec(p))


@FUZZ
@given(t=st.integers(1, 30), h=st.integers(2, 40), w=st.integers(2, 40),
       fps=st.sampled_from([5, 12, 24, 25, 29.97, 30, 60]), seed=st.integers(0, 100))
def test_random_tiny_videos(tmp_path, t, h, w, fps, seed):
    p = tmp_path / "tiny.mp4"
    p.write_bytes(_tiny_video(t, h, w, fps, seed))
    v = _only_input_errors(decode_video, p, quiet=True)
    duration = t / fps
    if v is None:  # the only legitimate refusal of a valid video: fewer than 16 sync frames
        assert int(np.floor(25 * duration + 1e-6)) < 16
    else:
        assert v.sync_frames.shape[0] == int(np.floor(25 * duration + 1e-6))
        assert v.clip_frames.shape[0] == int(np.floor(8 * duration + 1e-6))
        assert v.size == (h + h % 2, w + w % 2)  # the writer pads odd sizes
    raw = _only_input_errors(read_mask, MaskSpec(p))
    if raw is not None:
        assert raw.frames.dtype == bool and len(raw.times) == t


@FUZZ
@given(data=st.one_of(
    st.binary(max_size=500).map(lambda b: b.decode("latin-1")),
    st.recursive(st.none() | st.booleans() | st.integers(-5, 50) | st.text(max_size=8),
                 lambda c: st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(
                     ["size", "counts", "frames", "fps"]), c, max_size=3), max_leaves=12).map(json.dumps)))
def test_random_rle_json(tmp_path, data):
    p = tmp_path / "m.json"
    p.write_text(data, encoding="latin-1")
    _only_input_errors(read_mask, MaskSpec(p))


@FUZZ
@given(data=st.binary(max_size=2000), n=st.integers(1, 3))
def test_random_png_folder(tmp_path, data, n):
    d = tmp_path / "pngs"
    d.mkdir(exist_ok=True)
    for f in d.iterdir():
        f.unlink()
    for i in range(n):
        (d / f"{i}.png").write_bytes(data)
    _only_input_errors(read_mask, MaskSpec(d))


@FUZZ
@given(n=st.integers(1, 6), mh=st.integers(1, 30), mw=st.integers(1, 30), vh=st.integers(1, 30),
       vw=st.integers(1, 30), t=st.integers(0, 30), pad=st.booleans(), strict=st.booleans())
def test_random_alignment(n, mh, mw, vh, vw, t, pad, strict):
    rng = np.random.default_rng(n * 1000 + mh)
    raw = RawMask(rng.random((n, mh, mw)) > 0.5, np.arange(n) / 25.0, 0.04, (mh, mw))
    times = np.arange(t) / 25.0
    out = _only_input_errors(align_mask, raw, times, (vh, vw), size=16, need_end=t / 25.0,
                             video_duration=t / 25.0, pad=pad, strict=strict)
    if out is not None:
        assert out.shape == (t, 1, 16, 16)


class _Hang(Exception):
    pass


@FUZZ
@given(start=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70)),
       duration=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70)),
       fps=st.one_of(st.just(25.0), st.floats(allow_nan=True, allow_infinity=True)))
@example(start=float("nan"), duration=None, fps=25.0)  # issue 17: looped for ever, growing to gigabytes
@example(start=0.0, duration=float("nan"), fps=25.0)
@example(start=0.0, duration=None, fps=float("nan"))
@example(start=0.0, duration=None, fps=1e10)
def test_time_range_with_nan_inf_and_huge_numbers(tmp_path, start, duration, fps):
    """Any start / duration / frame rate: a decoded clip within the file, or a one-line InputError; never a hang."""
    import signal

    p = tmp_path / "v.mp4"
    p.write_bytes(VALID)  # 20 frames at 25 fps: 0.8 s

    def alarm(*_):
        raise _Hang(f"decode_video(start={start}, duration={duration}, sync_fps={fps}) did not return in 60 s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(60)
    try:
        v = _only_input_errors(decode_video, p, start=start, duration=duration, sync_fps=fps, quiet=True)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    if v is not None:
        assert 0 <= v.start < 0.8 and 0 < v.duration <= 0.8 + 1e-6 and np.isfinite(v.sync_frames.numpy()).all()
