"""Mux generated audio with the original video: re-encode the original frames (h264, yuv420p) + AAC audio.

Frames are streamed (never all in memory), at full resolution and the original frame rate (variable-rate
sources are resampled by timestamp to their average rate), rotated to display orientation, cropped to even
sizes (yuv420p needs them), up to the shorter of the audio and the video. Optionally each object's mask is
outlined in its own colour. The output is written atomically and holds exactly one video and one audio
stream (the source's own audio is dropped).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from saganet.errors import InputError
from saganet.io.atomic import atomic_path
from saganet.io.video import (
    DECODE_ERRORS,
    TIME_EPS,
    DisplayFrame,
    VideoReader,
    check_video_file,
    probe_video,
    short_error,
)

log = logging.getLogger(__name__)

# Distinct, saturated outline colours (RGB), one per object in order.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 64, 64), (64, 160, 255), (64, 220, 64), (255, 200, 0), (220, 64, 255), (0, 230, 230),
    (255, 128, 0), (255, 255, 255),
)


@dataclass
class MaskOverlay:
    """One object's mask to outline: frames at their own resolution and timestamps (seconds)."""

    masks: torch.Tensor | np.ndarray  # (N, h, w) or (N, 1, h, w) bool / {0,1}, display orientation
    times: torch.Tensor | np.ndarray  # (N,) seconds from the start of the video
    color: tuple[int, int, int] | None = None  # None: PALETTE[i]
    name: str = ""


def _outline(m: torch.Tensor, radius: int) -> torch.Tensor:
    """(H, W) bool -> (H, W) bool band of width ~2*radius around the mask boundary (dilate xor erode)."""
    x = m.float()[None, None]
    k = 2 * radius + 1
    dil = F.max_pool2d(x, k, stride=1, padding=radius)
    ero = -F.max_pool2d(-x, k, stride=1, padding=radius)
    return (dil - ero)[0, 0] > 0


class _OverlayState:
    """Picks the most recent mask frame for a time and caches its outline at the output resolution."""

    def __init__(self, ov: MaskOverlay, color: tuple[int, int, int], size: tuple[int, int], thickness: int):
        m = torch.as_tensor(np.asarray(ov.masks) if not isinstance(ov.masks, torch.Tensor) else ov.masks)
        if m.ndim == 4:
            m = m[:, 0]
        if m.ndim != 3 or m.shape[0] == 0:
            raise InputError(f"overlay mask {ov.name!r} must be (N, h, w) with N >= 1, got {tuple(m.shape)}")
        self.masks = m > 0.5 if m.is_floating_point() else m.bool()
        self.times = np.asarray(torch.as_tensor(ov.times, dtype=torch.float64))
        if len(self.times) != self.masks.shape[0]:
            raise InputError(f"overlay {ov.name!r}: {self.masks.shape[0]} masks but {len(self.times)} times")
        self.color = torch.tensor(color, dtype=torch.uint8)
        self.size, self.radius = size, max(1, thickness // 2)
        self._cached: tuple[int, torch.Tensor] | None = None

    def band(self, t: float) -> tuple[int, int, torch.Tensor] | None:
        """Outline of the mask shown at time `t`: (top, left, (h, w) bool band) at the output size, or None."""
        i = int(np.clip(np.searchsorted(self.times, t + TIME_EPS, side="right") - 1, 0, len(self.times) - 1))
        if self._cached is None or self._cached[0] != i:
            self._cached = (i, self._band(self.masks[i]))
        return self._cached[1]

    def _band(self, m: torch.Tensor) -> tuple[int, int, torch.Tensor] | None:
        # Work only inside the mask's bounding box (plus a margin): masks are usually a small part of
        # the frame, and upsampling + outlining whole 1080p frames costs tens of ms each.
        ys, xs = torch.nonzero(m, as_tuple=True)
        if ys.numel() == 0:
            return None
        (H, W), (h, w) = self.size, m.shape
        sy, sx = H / h, W / w
        r = self.radius + 1
        top, bottom = max(0, int(ys.min() * sy) - r), min(H, int(math.ceil((ys.max() + 1) * sy)) + r)
        left, right = max(0, int(xs.min() * sx) - r), min(W, int(math.ceil((xs.max() + 1) * sx)) + r)
        # Nearest-neighbour source index of every output pixel in the box.
        iy = torch.clamp(((torch.arange(top, bottom) + 0.5) / sy).long(), 0, h - 1)
        ix = torch.clamp(((torch.arange(left, right) + 0.5) / sx).long(), 0, w - 1)
        up = m[iy][:, ix]
        return top, left, _outline(up, self.radius)


def _audio_array(audio: torch.Tensor | np.ndarray) -> np.ndarray:
    a = audio.detach().float().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio, np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[0] not in (1, 2) or a.shape[1] == 0:
        raise InputError(f"audio must be (L,) or (C, L) with C in (1, 2), got shape {tuple(a.shape)}")
    return np.ascontiguousarray(np.clip(a, -1.0, 1.0), dtype=np.float32)


def mux_video_with_audio(src_video: str | os.PathLike, audio: torch.Tensor | np.ndarray, sample_rate: int,
                         dest: str | os.PathLike, overlays: list[MaskOverlay] | None = None,
                         duration: float | None = None, crf: int = 18, thickness: int = 3,
                         quiet: bool = True, start: float = 0.0) -> Path:
    """Write `dest` (.mp4): the frames of `src_video` with `audio` `(L,)` / `(C, L)` float as AAC.

    The output covers the source from `start` seconds and lasts min(video - start, audio, `duration`) seconds. `overlays`: one `MaskOverlay` per object, drawn
    as a `thickness`-px outline in the object's colour. Returns `dest`. Never overwrites `src_video`.
    """
    src, dest = check_video_file(src_video), Path(dest)
    if dest.resolve() == src.resolve():
        raise InputError(f"refusing to overwrite the input video {src}: choose another output path")
    a = _audio_array(audio)
    info = probe_video(src)
    audio_dur = a.shape[1] / sample_rate
    limit = min(audio_dur, info.duration - start if info.duration > 0 else math.inf, duration or math.inf)
    rate = info.rate if info.rate and info.rate > 0 else Fraction(25)
    rate = rate.limit_denominator(100000)
    H, W = info.height, info.width
    out_h, out_w = H - H % 2, W - W % 2
    colors = [ov.color or PALETTE[i % len(PALETTE)] for i, ov in enumerate(overlays or [])]
    states = [_OverlayState(ov, c, (H, W), thickness) for ov, c in zip(overlays or [], colors)]

    video = VideoReader(src, threads=True)
    try:
        with atomic_path(dest) as tmp:
            with av.open(str(tmp), mode="w", format="mp4") as out:
                vs = out.add_stream("libx264", rate=rate)
                vs.width, vs.height, vs.pix_fmt = out_w, out_h, "yuv420p"
                vs.options = {"crf": str(crf), "preset": "veryfast"}
                layout = "mono" if a.shape[0] == 1 else "stereo"
                aus = out.add_stream("aac", rate=sample_rate, layout=layout)
                n_written = _write_video(video, out, vs, rate, limit, states, (out_h, out_w), quiet, start)
                if n_written == 0:
                    raise InputError(f"{src} has no frames to mux: the file is corrupt or empty")
                n_audio = min(a.shape[1], int(round(n_written / float(rate) * sample_rate)))
                _write_audio(out, aus, a[:, :n_audio], sample_rate, layout)
    except DECODE_ERRORS as e:
        raise InputError(f"cannot mux {src} -> {dest} ({short_error(e)})") from e
    finally:
        video.close()
    log.info("wrote %s (%.2f s)", dest, limit)
    return dest


def _write_video(video: VideoReader, out, vs, rate, limit, states, size, quiet, start=0.0) -> int:
    """Emit the most recent source frame at each output time k / rate (source time start + k / rate)."""
    n_total = int(math.floor(float(rate) * limit + 1e-6))
    out_h, out_w = size
    k, prev = 0, None
    bar = tqdm(total=n_total, desc="mux", unit="frame", disable=quiet, leave=False)

    def emit(frame: DisplayFrame, t: float) -> None:
        rgb = frame.to_array()
        if states:
            img = torch.from_numpy(rgb.copy())
            for st in states:
                b = st.band(t + start)
                if b is not None:
                    top, left, band = b
                    img[top:top + band.shape[0], left:left + band.shape[1]][band] = st.color
            rgb = img.numpy()
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:out_h, :out_w]), format="rgb24")
        vf.pts = k
        vf.time_base = Fraction(1) / rate
        for packet in vs.encode(vf):
            out.mux(packet)
        bar.update(1)

    try:
        for frame in video.frames(start, start + limit):
            rel = frame.time - start
            while k < n_total and k / float(rate) < rel - TIME_EPS:
                emit(prev if prev is not None else frame, k / float(rate))
                k += 1
            prev = frame
        while prev is not None and k < n_total:  # the last frame stays until the end
            emit(prev, k / float(rate))
            k += 1
        for packet in vs.encode(None):
            out.mux(packet)
    finally:
        bar.close()
    return k


def _write_audio(out, aus, a: np.ndarray, sample_rate: int, layout: str, chunk: int = 1024) -> None:
    """Encode (C, L) float32 as planar-float frames of `chunk` samples (AAC's frame size)."""
    pts = 0
    for s in range(0, a.shape[1], chunk):
        block = np.ascontiguousarray(a[:, s:s + chunk])
        af = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
        af.sample_rate, af.pts, af.time_base = sample_rate, pts, Fraction(1, sample_rate)
        pts += block.shape[1]
        for packet in aus.encode(af):
            out.mux(packet)
    for packet in aus.encode(None):
        out.mux(packet)
