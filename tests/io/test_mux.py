"""Muxing: original frames + new audio, one video and exactly one audio stream, outlines, atomic writes."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from saganet.errors import InputError
from saganet.io.masks import MaskSpec, read_mask
from saganet.io.mux import MaskOverlay, mux_video_with_audio
from saganet.io.writers import write_video


def streams(path):
    with av.open(str(path)) as c:
        v = [(s.codec_context.name, s.frames, float(s.duration * s.time_base), s.codec_context.width,
              s.codec_context.height, Fraction(s.average_rate)) for s in c.streams.video]
        a = [(s.codec_context.name, float(s.duration * s.time_base), s.codec_context.sample_rate,
              s.codec_context.channels) for s in c.streams.audio]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return v, a, frames


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """2 s, 25 fps, 66x50, with its own (to be replaced) stereo audio track."""
    p = tmp_path_factory.mktemp("src") / "src.mp4"
    frames = np.repeat(np.arange(50, dtype=np.uint8)[:, None, None, None] * 4 + 20, 50, 1).repeat(66, 2).repeat(3, 3)
    write_video(p, frames, 25, audio=np.zeros((2, 32000), np.float32), sample_rate=16000)
    return p


def test_mux_one_video_one_audio(src, tmp_path):
    audio = 0.3 * torch.sin(torch.arange(int(1.5 * 44100)) / 44100 * 2 * torch.pi * 440)
    out = mux_video_with_audio(src, audio, 44100, tmp_path / "out.mp4")
    v, a, frames = streams(out)
    assert len(v) == 1 and len(a) == 1  # the source's own audio track is dropped
    assert v[0][0] == "h264" and v[0][3:5] == (66, 50) and v[0][5] == 25
    assert v[0][1] == 37 and len(frames) == 37  # floor(1.5 s * 25): stops with the (shorter) audio
    assert a[0][0] == "aac" and a[0][2] == 44100 and a[0][3] == 1
    assert a[0][1] == pytest.approx(1.48, abs=0.05)
    # original frames, in order (the brightness encodes the index)
    # (neighbours differ by 4 levels; two lossy encodes move a level by at most ~2)
    got = np.array([f[25, 33].mean() for f in frames])
    assert np.abs(got - (20 + 4 * np.arange(37))).max() <= 2.6
    assert not list(tmp_path.glob(".out*"))  # no temp file left


def test_mux_audio_longer_than_video_stereo(src, tmp_path):
    audio = np.zeros((2, 16000 * 3), np.float32)
    out = mux_video_with_audio(src, audio, 16000, tmp_path / "out.mp4")
    v, a, _ = streams(out)
    assert v[0][1] == 50 and a[0][2] == 16000 and a[0][3] == 2
    assert a[0][1] == pytest.approx(2.0, abs=0.08)


def test_mux_odd_size_rotated(tmp_path):
    p = tmp_path / "rot.mp4"
    with av.open(str(p), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.set_display_rotation(90)
        for i in range(25):
            for pk in s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 8, np.uint8), format="rgb24")):
                c.mux(pk)
        for pk in s.encode(None):
            c.mux(pk)
    out = mux_video_with_audio(p, np.zeros(16000), 16000, tmp_path / "o.mp4")
    v, a, frames = streams(out)
    assert v[0][3:5] == (48, 64) and frames[0].shape == (64, 48, 3)  # frames written upright


def test_mux_overlay_outline(src, tmp_path):
    m = np.zeros((2, 25, 33), bool)  # masks at their own (half) resolution, 2 frames at 0 s and 1 s
    m[0, 5:15, 5:15] = True
    m[1, 10:20, 15:30] = True
    out = mux_video_with_audio(src, np.zeros(32000), 16000, tmp_path / "ov.mp4",
                               overlays=[MaskOverlay(m, np.array([0.0, 1.0]), color=(0, 255, 0))])
    _, _, frames = streams(out)
    f0, f1 = frames[0].astype(int), frames[30].astype(int)
    green0 = (f0[..., 1] > 180) & (f0[..., 0] < 120)
    assert green0[10:30, 9:11].mean() > 0.8  # the box edge at x = 10 (mask col 5 * 2) is outlined
    assert not green0[14:26, 14:26].any()  # the inside is untouched
    assert not green0[40:, :].any()
    green1 = (f1[..., 1] > 180) & (f1[..., 0] < 120)
    assert green1[20:40, 29:31].mean() > 0.8 and not green1[10:30, 9:11].any()  # second mask at t >= 1 s


def test_mux_overlay_from_mask_reader(src, tmp_path):
    from saganet.io.writers import write_mask_video

    m = np.zeros((50, 50, 66), bool)
    m[:, 10:30, 10:40] = True
    write_mask_video(tmp_path / "m.mp4", m, 25)
    raw = read_mask(MaskSpec(tmp_path / "m.mp4"))
    out = mux_video_with_audio(src, np.zeros(32000), 16000, tmp_path / "ov.mp4",
                               overlays=[MaskOverlay(raw.frames, raw.times, name="box")])
    _, _, frames = streams(out)
    px = frames[10][20, 8:12].astype(int)  # the left edge of the box: default palette colour (red)
    assert (px[:, 0] - px[:, 1]).max() > 60
    assert abs(int(frames[10][20, 25, 0]) - int(frames[10][20, 25, 1])) < 10  # inside: untouched gray


def test_mux_errors(src, tmp_path):
    with pytest.raises(InputError, match="overwrite"):
        mux_video_with_audio(src, np.zeros(16000), 16000, src)
    with pytest.raises(InputError, match="audio must be"):
        mux_video_with_audio(src, np.zeros((3, 100)), 16000, tmp_path / "x.mp4")
    with pytest.raises(InputError, match="not found"):
        mux_video_with_audio(tmp_path / "missing.mp4", np.zeros(100), 16000, tmp_path / "x.mp4")
    dest = tmp_path / "keep.mp4"
    dest.write_bytes(b"old")
    with pytest.raises(InputError):
        mux_video_with_audio(src, np.zeros(16000), 16000, dest,
                             overlays=[MaskOverlay(np.zeros((2, 4, 4), bool), np.zeros(3))])
    assert dest.read_bytes() == b"old"  # a failed write leaves the destination alone


def test_mux_from_start_offset(tmp_path):
    """With `start`, the output begins at the source frame shown at `start` (audio generated from there)."""
    import numpy as np

    from saganet.io.mux import mux_video_with_audio
    from saganet.io.video import decode_video
    from saganet.io.writers import write_video

    frames = np.zeros((50, 32, 32, 3), np.uint8)
    frames[:, :, :, 0] = (np.arange(50) * 5).astype(np.uint8)[:, None, None]  # red encodes the frame index
    src = tmp_path / "src.mp4"
    write_video(src, frames, 25)
    dest = mux_video_with_audio(src, np.zeros(16000, np.float32), 16000, tmp_path / "out.mp4", start=1.0)
    out = decode_video(dest, sync_size=32, clip_size=32)
    first_red = float(out.sync_frames[0, 0].mean() + 1) * 127.5
    assert abs(first_red - 25 * 5) < 8, first_red
    assert abs(out.duration - 1.0) < 0.05
