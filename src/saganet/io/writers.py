"""Writing mp4 files with PyAV: RGB video (optionally with an AAC audio track) and binary mask videos.

Both writers are atomic (temp file + rename) and produce h264 yuv420p, which needs even frame
sizes: odd sizes are padded by one edge-replicated row/column at the bottom/right.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction

import av
import numpy as np
import torch

from saganet.errors import InputError
from saganet.io.atomic import atomic_path

log = logging.getLogger(__name__)

__all__ = ["write_video", "write_mask_video"]


def _as_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _as_fraction(fps: float | int | Fraction) -> Fraction:
    f = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
    if f <= 0:
        raise InputError(f"fps must be positive, got {fps}")
    return f


def _pad_even(frames: np.ndarray) -> np.ndarray:
    """Pad `(T, H, W, C)` to even H and W by replicating the last row/column (yuv420p needs it)."""
    _, h, w, _ = frames.shape
    ph, pw = h % 2, w % 2
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    return frames


def _encode(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: Fraction,
    crf: int,
    audio: np.ndarray | None,
    sample_rate: int | None,
) -> None:
    """Encode uint8 `(T, H, W, 3)` frames (+ optional float `(C, L)` audio) into an mp4 at `path`."""
    t, h, w, _ = frames.shape
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        vs = container.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.time_base = Fraction(1, 1) / fps
        vs.options = {"crf": str(int(crf)), "preset": "medium"}
        as_ = None
        if audio is not None:
            layout = "mono" if audio.shape[0] == 1 else "stereo"
            as_ = container.add_stream("aac", rate=int(sample_rate))
            as_.layout = layout
            as_.bit_rate = 128_000
        for i in range(t):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="rgb24")
            vf.pts = i
            container.mux(vs.encode(vf))
        container.mux(vs.encode(None))
        if as_ is not None:
            # AAC wants planar float frames; 1024 samples per frame is its native size.
            n = audio.shape[1]
            for start in range(0, n, 1024):
                chunk = np.ascontiguousarray(audio[:, start : start + 1024], dtype=np.float32)
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=as_.layout.name)
                af.sample_rate = int(sample_rate)
                af.pts = start
                container.mux(as_.encode(af))
            container.mux(as_.encode(None))


def write_video(
    path: str | os.PathLike,
    frames: torch.Tensor | np.ndarray,
    fps: float | Fraction,
    audio: torch.Tensor | np.ndarray | None = None,
    sample_rate: int | None = None,
    crf: int = 18,
) -> None:
    """Write RGB frames `(T, H, W, 3)` uint8 to an h264 yuv420p mp4, atomically.

    `audio` `(L,)` or `(C, L)` float in [-1, 1] (clipped; C <= 2) adds an AAC track at `sample_rate`.
    Odd frame sizes are padded to even by edge replication.
    """
    f = _as_numpy(frames)
    if f.ndim != 4 or f.shape[-1] != 3:
        raise InputError(f"frames must be (T, H, W, 3), got shape {tuple(f.shape)}")
    if f.shape[0] == 0:
        raise InputError("cannot write a video with zero frames")
    if f.dtype != np.uint8:
        raise InputError(f"frames must be uint8, got {f.dtype}")
    a = None
    if audio is not None:
        if sample_rate is None:
            raise InputError("sample_rate is required when audio is given")
        a = _as_numpy(audio).astype(np.float32)
        if a.ndim == 1:
            a = a[None]
        if a.ndim != 2 or a.shape[0] not in (1, 2):
            raise InputError(f"audio must be (L,) or (C, L) with C in (1, 2), got {tuple(a.shape)}")
        a = np.clip(a, -1.0, 1.0)
    _encode(path, _pad_even(f), _as_fraction(fps), crf, a, sample_rate)
    log.debug("wrote video %s (%d frames)", path, f.shape[0])


def write_mask_video(
    path: str | os.PathLike, masks: torch.Tensor | np.ndarray, fps: float | Fraction, crf: int = 0
) -> None:
    """Write binary masks `(T, H, W)` (bool, or uint8/float where > 0.5 / nonzero is object) to mp4.

    Object pixels are white (255) and background black (0), h264 yuv420p at near-lossless `crf`
    so that decoding the luma plane and thresholding at 0.5 recovers the mask.
    """
    m = _as_numpy(masks)
    if m.ndim != 3:
        raise InputError(f"masks must be (T, H, W), got shape {tuple(m.shape)}")
    binary = (m > 0.5) if np.issubdtype(m.dtype, np.floating) else (m != 0)
    rgb = np.repeat((binary.astype(np.uint8) * 255)[..., None], 3, axis=-1)
    write_video(path, rgb, fps, crf=crf)
