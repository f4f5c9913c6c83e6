"""The frames a segmenter works on: every decoded frame at the video's own rate and display size.

Segmentation runs on the source frames (not the 8 / 25 fps model frames): masks come out at the video's
resolution and frame times, and the pipeline resamples them like mask files. Rotation metadata is applied
(display orientation), so prompt coordinates are the pixels a player shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from saganet.errors import InputError
from saganet.io.video import (
    DECODE_ERRORS,
    DecodedVideo,
    VideoReader,
    probe_video,
    short_error,
)

__all__ = ["VideoFrames", "load_frames"]


@dataclass
class VideoFrames:
    """Decoded frames in display orientation.

    frames  uint8 (T, H, W, 3)
    times   float64 (T,) seconds from the start of the video stream
    """

    frames: np.ndarray
    times: np.ndarray
    fps: float
    frame_duration: float  # how long the last frame stays on screen
    source: str = "<array>"

    @property
    def size(self) -> tuple[int, int]:
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    @property
    def end(self) -> float:
        """End time of the clip: the last frame's time plus its duration."""
        return float(self.times[-1]) + self.frame_duration

    def __len__(self) -> int:
        return int(self.frames.shape[0])


def _from_array(frames: np.ndarray | torch.Tensor, fps: float | None, source: str) -> VideoFrames:
    a = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if a.ndim != 4 or a.shape[-1] != 3 or a.shape[0] == 0:
        raise InputError(f"frames must be a non-empty (T, H, W, 3) array, got shape {tuple(a.shape)}")
    if a.dtype != np.uint8:
        raise InputError(f"frames must be uint8 RGB, got {a.dtype}")
    if fps is None or not np.isfinite(fps) or fps <= 0:
        raise InputError(f"frames given as an array need a frame rate > 0 (fps=...), got {fps}")
    t = np.arange(a.shape[0], dtype=np.float64) / float(fps)
    return VideoFrames(np.ascontiguousarray(a), t, float(fps), 1.0 / float(fps), source)


def _read_file(path: Path) -> VideoFrames:
    info = probe_video(path)
    video = VideoReader(path, threads=True)
    try:
        dur = 1.0 / float(video.rate) if video.rate else 0.04
        frames, times = [], []
        for f in video.frames():
            frames.append(f.to_array())
            times.append(f.time)
            dur = f.duration or dur
    except DECODE_ERRORS as e:
        raise InputError(f"cannot decode {path} ({short_error(e)}): the file is corrupt; "
                         "re-encode it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`") from e
    finally:
        video.close()
    if not frames:
        raise InputError(f"{path} contains no decodable video frame: the file is empty, corrupt or truncated")
    fps = info.fps if info.fps > 0 else 1.0 / dur
    return VideoFrames(np.stack(frames), np.asarray(times, np.float64), float(fps), float(dur), str(path))


def load_frames(video: str | os.PathLike | VideoFrames | DecodedVideo | np.ndarray | torch.Tensor,
                fps: float | None = None) -> VideoFrames:
    """Frames of a video file, of a `DecodedVideo` decoded with `keep_original=True`, or of a
    `(T, H, W, 3)` uint8 array at `fps`."""
    if isinstance(video, VideoFrames):
        return video
    if isinstance(video, DecodedVideo):
        if video.original_frames is None or video.original_times is None:
            raise InputError("the decoded video has no original frames: decode it with keep_original=True")
        a = video.original_frames.numpy()
        t = video.original_times.numpy().astype(np.float64)
        dur = 1.0 / video.fps if video.fps > 0 else 0.04
        return VideoFrames(np.ascontiguousarray(a), t, float(video.fps or 1.0 / dur), dur, str(video.info.path))
    if isinstance(video, (np.ndarray, torch.Tensor)):
        return _from_array(video, fps, "<array>")
    p = Path(video)
    if not p.exists():
        raise InputError(f"video file not found: {p}: check the path")
    if not p.is_file():
        raise InputError(f"{p} is not a file: pass a video file (mp4, mkv, mov, ...)")
    return _read_file(p)
