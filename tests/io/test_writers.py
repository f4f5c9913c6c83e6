"""io.writers: mp4 video (+AAC audio) and binary mask videos, round-tripped through PyAV."""

from fractions import Fraction

import av
import numpy as np
import pytest

from saganet.errors import InputError
from saganet.io.writers import write_mask_video, write_video


def _decode_rgb(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(s)])
        return frames, s.average_rate, s.codec_context.name, s.codec_context.pix_fmt


def _decode_luma(path):
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="gray") for f in c.decode(video=0)])


def _smooth_frames(t, h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    k = np.arange(t)[:, None, None]
    r = 128 + 100 * np.sin(xx / 7.0 + k / 5.0)
    g = 128 + 100 * np.cos(yy / 9.0 - k / 7.0)
    b = np.broadcast_to(128 + 60 * np.sin((xx + yy) / 11.0), r.shape)
    return np.stack([r, g, b], -1).astype(np.uint8)


def test_write_video_roundtrip_with_audio(tmp_path):
    frames = _smooth_frames(20, 48, 64)
    sr, L = 16000, 16000 * 20 // 25
    t = np.arange(L) / sr
    audio = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    p = tmp_path / "a.mp4"
    write_video(p, frames, 25, audio=audio, sample_rate=sr)
    dec, rate, codec, pix = _decode_rgb(p)
    assert codec == "h264" and pix == "yuv420p" and rate == 25
    assert dec.shape == frames.shape
    mse = np.mean((dec.astype(float) - frames) ** 2)
    assert 10 * np.log10(255**2 / mse) > 30  # crf 18 on smooth content
    with av.open(str(p)) as c:
        a = c.streams.audio[0]
        assert a.codec_context.name == "aac" and a.rate == sr
        got = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(a)])
    assert len(got) >= L  # AAC pads (priming + last frame)
    # same tone: RMS close, and dominant frequency 440 Hz
    assert abs(np.sqrt(np.mean(got[2048 : L - 1024] ** 2)) - 0.3 / np.sqrt(2)) < 0.03
    spec = np.abs(np.fft.rfft(got[:L]))
    assert abs(np.fft.rfftfreq(L, 1 / sr)[spec.argmax()] - 440) < 5


def test_write_video_odd_size_is_padded_and_no_temp_left(tmp_path):
    frames = _smooth_frames(5, 31, 45)
    p = tmp_path / "sub" / "odd.mp4"
    write_video(p, frames, Fraction(30000, 1001))
    dec, rate, _, _ = _decode_rgb(p)
    assert dec.shape == (5, 32, 46, 3)
    assert rate == Fraction(30000, 1001)
    assert sorted(x.name for x in p.parent.iterdir()) == ["odd.mp4"]


def test_write_video_rejects_bad_input_and_leaves_nothing(tmp_path):
    p = tmp_path / "bad.mp4"
    with pytest.raises(InputError):
        write_video(p, np.zeros((3, 8, 8), np.uint8), 25)
    with pytest.raises(InputError):
        write_video(p, np.zeros((3, 8, 8, 3), np.float32), 25)
    with pytest.raises(InputError):
        write_video(p, np.zeros((3, 8, 8, 3), np.uint8), 25, audio=np.zeros(100))  # no sample rate
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.float32])
def test_mask_video_roundtrips_exactly_through_luma_threshold(tmp_path, dtype):
    rng = np.random.default_rng(0)
    T, H, W = 12, 40, 56
    yy, xx = np.mgrid[0:H, 0:W]
    masks = np.zeros((T, H, W), bool)
    for t in range(T):  # a moving disc + a random rectangle, one empty frame
        cx, cy = 10 + 2 * t, 20
        masks[t] = (xx - cx) ** 2 + (yy - cy) ** 2 <= 49
        y0, x0 = rng.integers(0, H - 8), rng.integers(0, W - 8)
        masks[t, y0 : y0 + 6, x0 : x0 + 7] = True
    masks[5] = False
    p = tmp_path / "m.mp4"
    write_mask_video(p, masks.astype(dtype), 25)
    luma = _decode_luma(p)
    assert luma.shape == masks.shape
    np.testing.assert_array_equal(luma / 255.0 > 0.5, masks)
