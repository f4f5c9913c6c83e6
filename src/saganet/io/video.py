"""Video decoding with PyAV: probe, and decode to CLIP frames (8 fps, 384²) and sync frames (25 fps, 224²).

Frames are resampled by TIMESTAMP, not by index: every target time `start + k / rate` (k = 0, 1, ...) gets one
decoded source frame, chosen by `frame_rule` (docs/reference_notes.md, RN-22):

- `"at_or_after"` (default): the first source frame whose time is at or after the target. This is what the
  reference's frame reader does (it emits a frame whenever `frame.time >= next_time`, then advances
  `next_time` by `1 / rate`), so it gives the frames the released weights were run with. From a 25 fps source
  the 8 fps targets k/8 take frames ceil(25 k / 8) = 0, 4, 7, 10, 13, 16, 19, 22, 25, ...
- `"at_or_before"`: the most recent source frame, the one a player shows on screen at the target time
  (0, 3, 6, 9, 12, 15, 18, 21, 25, ... from 25 fps). Earlier versions used this rule.

A frame within `TIME_EPS` of a target counts as being at it (timestamps are rounded to the stream's time base),
so at equal rates (25 fps -> 25 fps) both rules take every frame once. The reference accumulates `next_time`
in floating point, which drifts just above the exact frame times (e.g. after 18 steps of 1/25) and then skips
one frame and shifts the rest by one; we compute each target as `start + k / rate` and do not reproduce that.
Targets before the first frame take the first frame; targets after the last decoded frame repeat it. Masks
are aligned with the same rule (`pick_frames`, used by `saganet.io.masks`). The rule works for any source
rate, including 29.97 fps and variable-frame-rate files; low-rate sources get duplicated frames. Rotation
metadata (display matrix) is applied so frames come out the way a player shows them.

Geometry: CLIP frames are squashed to 384² (reference and training). Sync frames are squashed to 224² by
default, like the training loaders; `sync_geometry="center_crop"` reproduces the demo's resize-short-side +
centre crop (RN-25). Resizing is torch's antialiased bicubic on uint8 (what torchvision's `Resize` does).

Damaged input: a file that is a still image (a PNG renamed `.mp4`) is refused as "not a video". A truncated
file whose decodable frames end before the time range asked for (or, without a duration, before the end the
container declares) is decoded as far as it goes with one warning; `strict=True` (or, for a whole call
tree, `with truncation_policy("error"):`) makes that an `InputError` instead. Times must be finite.

Other readers of video files (masks, segmentation frames, cutting clips, muxing) go through `VideoReader`:
frames in decode order with their display time and rotation, and the same one-line errors.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from saganet.errors import InputError

log = logging.getLogger(__name__)

Geometry = Literal["squash", "center_crop"]
FrameRule = Literal["at_or_after", "at_or_before"]
FRAME_RULES: tuple[FrameRule, ...] = ("at_or_after", "at_or_before")
DEFAULT_FRAME_RULE: FrameRule = "at_or_after"  # the reference's reader

MIN_SYNC_FRAMES = 16  # one Synchformer segment
MAX_OUTPUT_FPS = 1000  # resampling rates above this are a mistake (and would fill memory with copies)
# Tolerance when comparing a frame timestamp with a target time: pts rounding must not shift a frame
# that lands exactly on a target time (e.g. frame 1 at 0.04 s and target 1/25 s) to the next target.
TIME_EPS = 1e-4

# Single-image demuxers: a still picture opens as a one-frame "video" of duration 0.
IMAGE_FORMATS = ("image2", "apng")  # plus every "<codec>_pipe" demuxer except animated GIF's
# A video counts as truncated when its decodable frames end this much before the end it should reach.
TRUNCATION_SLACK_FRAMES = 2.0
TRUNCATION_SLACK_SECONDS = 0.1

TruncationPolicy = Literal["warn", "error"]
_TRUNCATION: contextvars.ContextVar[TruncationPolicy] = contextvars.ContextVar("saganet_truncation",
                                                                                 default="warn")


@contextlib.contextmanager
def truncation_policy(policy: TruncationPolicy) -> Iterator[None]:
    """Within the block, a truncated video warns ("warn", the default) or raises `InputError` ("error")."""
    if policy not in ("warn", "error"):
        raise ValueError(f"truncation policy must be 'warn' or 'error', got {policy!r}")
    token = _TRUNCATION.set(policy)
    try:
        yield
    finally:
        _TRUNCATION.reset(token)


# Errors PyAV / numpy raise on broken input; they are turned into one-line InputErrors.
DECODE_ERRORS = (av.FFmpegError, OSError, ValueError, RuntimeError, EOFError, IndexError,
                  ZeroDivisionError, OverflowError, MemoryError, UnicodeDecodeError)


@dataclass
class VideoInfo:
    """What the container says about a video (cheap: one frame is decoded for the rotation)."""

    path: Path
    duration: float  # seconds, from the stream (or container) header
    fps: float  # guessed/average frame rate (for VFR files: the average)
    width: int  # display size, after rotation
    height: int
    rotation: int  # counter-clockwise degrees applied to get the display orientation (0, 90, 180, 270)
    has_audio: bool
    n_frames: int  # from the header if known, else duration * fps
    codec: str
    rate: Fraction | None = None  # exact frame rate when known (e.g. 30000/1001)
    format: str = ""  # container format name(s) as FFmpeg reports them


@dataclass
class DecodedVideo:
    """Frames resampled by timestamp. Times are seconds from the start of the video stream."""

    clip_frames: torch.Tensor  # (Tc, 3, clip_size, clip_size) float32 in [0, 1]
    sync_frames: torch.Tensor  # (Ts, 3, sync_size, sync_size) float32 in [-1, 1]
    clip_times: torch.Tensor  # (Tc,) float64 target times start + k / clip_fps
    sync_times: torch.Tensor  # (Ts,) float64 target times start + k / sync_fps
    start: float
    duration: float  # effective duration (requested, capped by what the file holds)
    fps: float  # original frame rate
    size: tuple[int, int]  # original (H, W) after rotation
    sync_geometry: Geometry
    info: VideoInfo
    original_frames: torch.Tensor | None = None  # (N, H, W, 3) uint8, every decoded frame in range
    original_times: torch.Tensor | None = None  # (N,) float64
    frame_rule: FrameRule = DEFAULT_FRAME_RULE  # how source frames were picked for the target times
    truncated: bool = False  # the decodable frames end before the range asked for / the declared end


def check_frame_rule(rule: str) -> FrameRule:
    if rule not in FRAME_RULES:
        raise InputError(f"unknown frame rule '{rule}': use one of {', '.join(FRAME_RULES)}")
    return rule  # type: ignore[return-value]


def pick_frames(frame_times: np.ndarray | torch.Tensor, targets: np.ndarray | torch.Tensor,
                rule: FrameRule = DEFAULT_FRAME_RULE) -> np.ndarray:
    """Index of the source frame shown at each target time under `rule` (see the module docstring).

    `frame_times (N,)` ascending seconds, `targets (T,)` seconds -> `(T,)` int64 indices in [0, N).
    """
    ft = np.asarray(frame_times, np.float64)
    t = np.asarray(targets, np.float64)
    if check_frame_rule(rule) == "at_or_after":
        idx = np.searchsorted(ft, t - TIME_EPS, side="left")
    else:
        idx = np.searchsorted(ft, t + TIME_EPS, side="right") - 1
    return np.clip(idx, 0, len(ft) - 1).astype(np.int64)


def check_video_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"video file not found: {p}: check the path")
    if not p.is_file():
        raise InputError(f"{p} is not a file: pass a video file (mp4, mkv, mov, ...)")
    return p


def open_container(p: Path) -> av.container.InputContainer:
    try:
        return av.open(str(p), mode="r")
    except DECODE_ERRORS as e:
        raise InputError(f"cannot read {p} as a video ({short_error(e)}): the file is corrupt, truncated or not a media "
                         "file; re-encode it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`") from e


def short_error(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return (s[0] if s else type(e).__name__)[:200]


def first_video_stream(container, p: Path):
    if not container.streams.video:
        container.close()
        raise InputError(f"{p} has no video stream (not a video): pass a video file (mp4, mkv, mov, ...)")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        container.close()
        raise InputError(f"cannot decode the video stream of {p} (unknown codec or corrupt header): "
                         "re-encode it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`")
    return stream


def display_rotation(frame: av.VideoFrame, stream) -> int:
    """Counter-clockwise display rotation in degrees, a multiple of 90 (display matrix, else 'rotate' tag)."""
    rot = 0.0
    try:
        rot = float(frame.rotation or 0.0)
    except DECODE_ERRORS:
        rot = 0.0
    if rot == 0.0:
        tag = stream.metadata.get("rotate") if stream.metadata else None
        if tag is not None:
            try:
                rot = -float(tag)  # the old 'rotate' tag is clockwise
            except ValueError:
                rot = 0.0
    return int(round(rot / 90.0)) % 4 * 90


def rotate_image(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate an (H, W, C) image counter-clockwise by `rotation` degrees."""
    k = rotation // 90
    return np.ascontiguousarray(np.rot90(rgb, k=k)) if k else rgb


def frame_rate(stream) -> Fraction | None:
    for r in (stream.guessed_rate, stream.average_rate, stream.base_rate):
        if r and r > 0:
            return Fraction(r)
    return None


def stream_start(stream) -> float | None:
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return None


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Header facts of a video: duration, fps, display size (after rotation), audio presence, frame count."""
    p = check_video_file(path)
    container = open_container(p)
    try:
        stream = first_video_stream(container, p)
        rate = frame_rate(stream)
        fps = float(rate) if rate else 0.0
        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1e6
        rotation, width, height = 0, stream.codec_context.width, stream.codec_context.height
        try:
            first = next(container.decode(stream), None)
        except DECODE_ERRORS as e:
            raise InputError(f"cannot decode {p} ({short_error(e)}): the file is corrupt or truncated; "
                             "re-encode it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`") from e
        if first is None:
            raise InputError(f"{p} contains no decodable video frame: the file is empty, corrupt or truncated")
        rotation = display_rotation(first, stream)
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        n_frames = stream.frames or (int(round(duration * fps)) if fps else 0)
        fmt = container.format.name or ""
        if _is_still_image(fmt):
            kind = stream.codec_context.name.upper()
            raise InputError(f"{p} is a still image ({kind}), not a video: pass a video file (mp4, mkv, mov, ...)")
        return VideoInfo(path=p, duration=duration, fps=fps, width=width, height=height, rotation=rotation,
                         has_audio=bool(container.streams.audio), n_frames=int(n_frames),
                         codec=stream.codec_context.name, rate=rate, format=fmt)
    except DECODE_ERRORS as e:
        raise InputError(f"cannot read {p} as a video ({short_error(e)}): the file is corrupt or not a video") from e
    finally:
        container.close()


def _is_still_image(fmt: str) -> bool:
    """A single picture demuxed as video: FFmpeg's image demuxers (`png_pipe`, `jpeg_pipe`, `image2`, ...)."""
    names = set(fmt.split(","))
    return bool(names & set(IMAGE_FORMATS)) or any(n.endswith("_pipe") and n != "gif_pipe" for n in names)


def resize_frames(x: torch.Tensor, size: int, geometry: Geometry) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, C, size, size) uint8; squash, or resize short side + centre crop."""
    if geometry == "squash":
        return F.interpolate(x, (size, size), mode="bicubic", antialias=True)
    if geometry != "center_crop":
        raise InputError(f"unknown geometry '{geometry}': use 'squash' or 'center_crop'")
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, int(round(h * scale))), max(size, int(round(w * scale)))
    y = F.interpolate(x, (nh, nw), mode="bicubic", antialias=True)
    top, left = (nh - size) // 2, (nw - size) // 2
    return y[..., top:top + size, left:left + size]


def iter_frames(container, stream, p: Path, start: float, end: float | None, t0: float | None,
                errors: list[str] | None = None) -> Iterator[tuple[float, av.VideoFrame]]:
    """Yield (time relative to the stream start, frame) for frames up to `end` (relative), in decode order.

    Frames without a timestamp get one from the previous frame + 1/fps. Decoding errors after at least one
    frame end the stream (truncated file: the caller checks the length); before any frame they are fatal.
    Such an error is appended to `errors` when given (the caller reports it), else logged as a warning.
    """
    rate = frame_rate(stream)
    step = 1.0 / float(rate) if rate else 0.04
    last_t = None
    n = 0
    it = container.decode(stream)
    while True:
        try:
            frame = next(it)
        except StopIteration:
            return
        except DECODE_ERRORS as e:
            if n == 0:
                raise InputError(f"cannot decode {p} ({short_error(e)}): the file is corrupt or truncated; "
                                 "re-encode it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`") from e
            if errors is not None:
                errors.append(short_error(e))
            else:
                log.warning("decoding %s stopped after %d frames: %s (file truncated?)", p, n, short_error(e))
            return
        t = frame.time
        if t is None:
            t = (last_t + step) if last_t is not None else (t0 or 0.0)
        if t0 is None:
            t0 = t
        rel = t - t0
        if last_t is not None and t < last_t:
            log.debug("non-monotonic timestamp %.4f after %.4f in %s", t, last_t, p)
        last_t = t
        n += 1
        if end is not None and rel > end + TIME_EPS:
            return
        yield rel, frame


@dataclass(frozen=True)
class DisplayFrame:
    """One decoded frame: its time in seconds from the stream's start and its display rotation."""

    time: float
    frame: av.VideoFrame
    rotation: int

    @property
    def duration(self) -> float | None:
        f = self.frame
        return float(f.duration * f.time_base) if f.duration and f.time_base else None

    @property
    def display_size(self) -> tuple[int, int]:
        """`(height, width)` as displayed (after the rotation)."""
        h, w = self.frame.height, self.frame.width
        return (w, h) if self.rotation in (90, 270) else (h, w)

    def to_array(self, format: str = "rgb24", width: int | None = None, height: int | None = None,
                 interpolation: str | None = None) -> np.ndarray:
        """Pixels as displayed: converted (and resized to `width` x `height`, the stored orientation) by
        swscale, then rotated."""
        kw = {k: v for k, v in (("width", width), ("height", height), ("interpolation", interpolation)) if v}
        return rotate_image(self.frame.to_ndarray(format=format, **kw), self.rotation)


class VideoReader:
    """The first video stream of a file, read frame by frame with display times and rotation.

        with VideoReader(path) as video:
            for f in video.frames():
                rgb = f.to_array()

    A file that cannot be opened, has no (decodable) video stream or fails before its first frame is one
    `InputError` line (`hint` ends the no-video-stream message); errors after the first frame end the
    stream (see `iter_frames`).
    """

    def __init__(self, path: str | os.PathLike, threads: bool = False,
                 hint: str = "pass a video file (mp4, mkv, mov, ...)") -> None:
        self.path = Path(path)
        self.container = open_container(self.path)
        if not self.container.streams.video:
            self.container.close()
            raise InputError(f"{self.path} has no video stream (not a video): {hint}")
        self.stream = first_video_stream(self.container, self.path)
        if threads:
            self.stream.thread_type = "AUTO"
        self.rate, self.start = frame_rate(self.stream), stream_start(self.stream)

    @property
    def codec_name(self) -> str:
        return self.stream.codec_context.name

    def frames(self, start: float = 0.0, end: float | None = None,
               errors: list[str] | None = None) -> Iterator[DisplayFrame]:
        """Frames up to `end` seconds (from the stream's start), in decode order. Frames before `start`
        are yielded too (callers pick by time); `seek` skips most of them."""
        rotation = None
        for rel, frame in iter_frames(self.container, self.stream, self.path, start, end, self.start, errors):
            if rotation is None:
                rotation = display_rotation(frame, self.stream)
            yield DisplayFrame(rel, frame, rotation)

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Resampler:
    """Fills the target times `start + k / rate` with source frames as they are decoded, resized on the spot.

    The streaming form of `pick_frames`: `on_frame` is called once per decoded frame, in time order.
    """

    def __init__(self, rate: float, start: float, size: int, geometry: Geometry, rule: FrameRule):
        self.rate, self.start, self.size, self.geometry, self.rule = rate, start, size, geometry, rule
        self.out: list[torch.Tensor] = []  # (3, size, size) uint8 per target
        self._last: tuple[int, torch.Tensor] | None = None  # resize once per source frame

    def target(self, k: int) -> float:
        return self.start + k / self.rate

    def take(self, index: int, rgb) -> None:
        if self._last is None or self._last[0] != index:
            self._last = (index, resize_frames(rgb(index)[None], self.size, self.geometry)[0])
        self.out.append(self._last[1])

    def on_frame(self, time: float, index: int, prev: int | None, limit: float, rgb) -> None:
        """Source frame `index` at `time` (seconds, relative) was decoded; `prev` is the one before it."""
        while True:
            t = self.target(len(self.out))
            if t >= limit - TIME_EPS:
                return
            if self.rule == "at_or_after":
                # pending targets up to this frame's time show it: it is the first frame at or after them
                if t > time + TIME_EPS:
                    return
                self.take(index, rgb)
            else:
                # targets strictly before this frame's time show the previous frame (the first if none)
                if t >= time - TIME_EPS:
                    return
                self.take(index if prev is None else prev, rgb)

    def finish(self, n: int, index: int, rgb) -> torch.Tensor:
        while len(self.out) < n:
            self.take(index, rgb)
        del self.out[n:]
        if not self.out:
            return torch.zeros(0, 3, self.size, self.size, dtype=torch.uint8)
        return torch.stack(self.out)


def decode_video(path: str | os.PathLike, start: float = 0.0, duration: float | None = None, clip_fps: float = 8,
                 clip_size: int = 384, sync_fps: float = 25, sync_size: int = 224,
                 sync_geometry: Geometry = "squash", keep_original: bool = False,
                 quiet: bool = False, frame_rule: FrameRule = DEFAULT_FRAME_RULE,
                 strict: bool | None = None) -> DecodedVideo:
    """Decode `[start, start + duration)` of a video (default: to its end) into CLIP and sync frames.

    Returns `clip_frames (Tc, 3, clip_size, clip_size)` in [0, 1] (squash, bicubic) and
    `sync_frames (Ts, 3, sync_size, sync_size)` in [-1, 1] with `Tc = floor(clip_fps * D)`,
    `Ts = floor(sync_fps * D)`, D the effective duration (requested duration capped by the file's).
    `frame_rule` picks the source frame for each target time: "at_or_after" (the reference's reader, default)
    or "at_or_before" (the frame on screen then). Raises `InputError` for a missing, unreadable, non-video,
    truncated-to-nothing or too short file, a time that is not a finite number, or an unknown frame rule /
    geometry. A file truncated inside the range asked for warns (`DecodedVideo.truncated`); with `strict`
    (default: the `truncation_policy` in effect) it raises instead.
    """
    check_frame_rule(frame_rule)
    if sync_geometry not in ("squash", "center_crop"):
        raise InputError(f"unknown sync geometry '{sync_geometry}': use 'squash' or 'center_crop'")
    check_time_range(start, duration)
    for what, fps in (("clip", clip_fps), ("sync", sync_fps)):
        if not _finite(fps) or not 0 < fps <= MAX_OUTPUT_FPS:
            raise InputError(f"{what} frame rate must be a number in (0, {MAX_OUTPUT_FPS}], got {fps!r}")
    p = check_video_file(path)
    info = probe_video(p)
    if start >= info.duration > 0:
        raise InputError(f"start {start:g} s is at or after the end of {p} ({info.duration:.2f} s): "
                         f"use a start time in [0, {info.duration:.2f})")
    strict = _TRUNCATION.get() == "error" if strict is None else strict
    container = open_container(p)
    try:
        return _decode(container, p, info, start, duration, clip_fps, clip_size, sync_fps, sync_size,
                       sync_geometry, keep_original, quiet, frame_rule, strict)
    except DECODE_ERRORS as e:
        raise InputError(f"cannot decode {p} ({short_error(e)}): the file is corrupt; "
                         "re-encode it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`") from e
    finally:
        container.close()


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_time_range(start: float, duration: float | None) -> None:
    """`start` a finite number >= 0 s, `duration` None or a finite number > 0 s (else a one-line InputError)."""
    if not _finite(start) or start < 0:
        raise InputError(f"start must be a finite number of seconds >= 0, got {start!r}")
    if duration is not None and (not _finite(duration) or duration <= 0):
        raise InputError(f"duration must be a finite number of seconds > 0, got {duration!r}")


def _decode(container, p, info, start, duration, clip_fps, clip_size, sync_fps, sync_size, sync_geometry,
            keep_original, quiet, frame_rule, strict=False) -> DecodedVideo:
    stream = first_video_stream(container, p)
    stream.thread_type = "AUTO"
    end = None if duration is None else start + duration
    limit = math.inf if end is None else end
    rotation = info.rotation
    clip_rs = _Resampler(clip_fps, start, clip_size, "squash", frame_rule)
    sync_rs = _Resampler(sync_fps, start, sync_size, sync_geometry, frame_rule)
    live: dict[int, av.VideoFrame] = {}  # only the previous and the current source frame are kept
    rgb_cache: dict[int, torch.Tensor] = {}

    def rgb(i: int) -> torch.Tensor:  # (3, H, W) uint8, display orientation
        if i not in rgb_cache:
            rgb_cache.clear()
            rgb_cache[i] = torch.from_numpy(rotate_image(live[i].to_ndarray(format="rgb24"), rotation)).permute(2, 0, 1)
        return rgb_cache[i]

    originals: list[torch.Tensor] = []
    original_times: list[float] = []
    n_seen, prev, last_time = 0, None, 0.0
    last_dur = 1.0 / info.fps if info.fps > 0 else 0.04
    t0 = stream_start(stream)
    if start > 2.0 and t0 is not None and stream.time_base:  # skip to a keyframe before `start`
        try:
            container.seek(int((t0 + start - 1.0) / stream.time_base), stream=stream, backward=True)
        except DECODE_ERRORS as e:
            log.debug("seek failed in %s (%s); decoding from the beginning", p, short_error(e))
            container.seek(0)
    bar = tqdm(total=info.n_frames or None, desc=f"decode {p.name}", unit="frame", disable=quiet, leave=False)
    errors: list[str] = []
    try:
        for rel, frame in iter_frames(container, stream, p, start, end, t0, errors):
            bar.update(1)
            i = n_seen
            n_seen += 1
            live[i] = frame
            if frame.duration and frame.time_base:
                last_dur = float(frame.duration * frame.time_base)
            clip_rs.on_frame(rel, i, prev, limit, rgb)
            sync_rs.on_frame(rel, i, prev, limit, rgb)
            if prev is not None:
                live.pop(prev, None)
            if keep_original and rel < limit - TIME_EPS:
                if rel <= start + TIME_EPS:  # of the frames up to `start`, only the latest is on screen then
                    originals.clear()
                    original_times.clear()
                originals.append(rgb(i).permute(1, 2, 0))
                original_times.append(rel)
            prev, last_time = i, rel
    finally:
        bar.close()
    if prev is None:
        raise InputError(f"{p} has no video frames after {start:.2f} s: check the start time / the file")
    available = last_time + last_dur  # the last frame stays on screen for its duration
    # Truncated: the frames end before the range asked for, as far as the container says the video goes.
    wanted = info.duration if end is None else (min(end, info.duration) if info.duration > 0 else end)
    slack = max(TRUNCATION_SLACK_FRAMES * last_dur, TRUNCATION_SLACK_SECONDS)
    truncated = (info.duration > 0 and available < wanted - slack) or bool(errors)
    if truncated:
        why = f": {errors[0]}" if errors else ""
        msg = (f"{p} is truncated or damaged: its frames end at {available:.2f} s but the container says "
               f"{info.duration:.2f} s{why}")
        if strict:
            raise InputError(f"{msg}; re-encode or re-download it, or drop --strict to use the {available:.2f} s "
                             "that decode")
        log.warning("%s; using the %.2f s that decode", msg, available)
    eff_end = available if end is None else min(end, available)
    eff_duration = max(0.0, eff_end - start)
    n_clip = int(math.floor(clip_fps * eff_duration + 1e-6))
    n_sync = int(math.floor(sync_fps * eff_duration + 1e-6))
    if n_sync < MIN_SYNC_FRAMES:
        raise InputError(f"{p} is too short: {eff_duration:.2f} s gives {n_sync} frames at {sync_fps:g} fps, "
                         f"need at least {MIN_SYNC_FRAMES} ({MIN_SYNC_FRAMES / sync_fps:.2f} s); use a longer clip")
    clip_frames = clip_rs.finish(n_clip, prev, rgb).float().div_(255.0)
    sync_frames = sync_rs.finish(n_sync, prev, rgb).float().div_(127.5).sub_(1.0)
    return DecodedVideo(
        clip_frames=clip_frames, sync_frames=sync_frames,
        clip_times=torch.tensor([clip_rs.target(k) for k in range(n_clip)], dtype=torch.float64),
        sync_times=torch.tensor([sync_rs.target(k) for k in range(n_sync)], dtype=torch.float64),
        start=start, duration=eff_duration, fps=info.fps, size=(info.height, info.width),
        sync_geometry=sync_geometry, info=info,
        original_frames=torch.stack(originals) if keep_original and originals else None,
        original_times=torch.tensor(original_times, dtype=torch.float64) if keep_original else None,
        frame_rule=frame_rule, truncated=truncated)
