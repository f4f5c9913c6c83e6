"""Object masks: read from mask videos, PNG folders, COCO RLE JSON or instance-id videos; align to a video.

Two steps:
- `read_mask(spec)` reads a source into a `RawMask`: boolean frames `(N, h, w)` with their timestamps.
- `align_mask(raw, ...)` (RN-28) resamples it to the sync timestamps, picking mask frames by the same rule
  as the video's frames (`frame_rule`, default the reference's first frame at or after each time; see
  `saganet.io.video`), so a mask made from the video's own frames lines up frame for frame; and to the
  sync frames' geometry (squash, or resize-short-side + centre crop), giving `(T, 1, S, S)` float in {0, 1}.
  `load_mask(spec, video)` does both.

Binary mask videos are decoded from the LUMA plane and binarised at `threshold` (default 0.5). The reference
demo instead computes `(rgb2gray(frames) * 255).astype(uint8)` on values already in [0, 255], which wraps
modulo 256 (white -> ~250, codec noise 1-3 -> ~253-255), RN-24. We never do that.

Selecting an object (`select`) in a mask video that is plainly binary (black and white) is refused unless it
selects white, and so is a selector that matches the background (id 0 / black, within the tolerance):
either would silently give the background or nothing as the object.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import av
import numpy as np
import torch
import torch.nn.functional as F

from saganet.errors import InputError
from saganet.io.video import (
    DECODE_ERRORS,
    DEFAULT_FRAME_RULE,
    TIME_EPS,
    DecodedVideo,
    FrameRule,
    Geometry,
    VideoReader,
    pick_frames,
    short_error,
)

log = logging.getLogger(__name__)

MaskKind = Literal["auto", "video", "id_video", "png_dir", "rle_json"]
Selector = int | tuple[int, int, int] | None

IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg")
LOSSLESS_CODECS = {"ffv1", "png", "rawvideo", "huffyuv", "ffvhuff", "utvideo", "qtrle", "magicyuv", "apng"}
LOSSY_TOLERANCE = 12.0  # gray-id matching tolerance (0-255 units) for lossy codecs
LOSSY_COLOUR_TOLERANCE = 40.0  # colour matching tolerance for lossy codecs (chroma is subsampled and bleeds)
BINARY_FRACTION = 0.99  # a mask video whose pixels are this much black or white (within tolerance) is binary
ASPECT_TOLERANCE = 0.02  # relative aspect-ratio difference still accepted (rounding of odd sizes)
DEFAULT_MAX_SIDE = 1024  # masks are kept at most this large while reading (they end at 224² anyway)


@dataclass
class MaskSpec:
    """Where one object's mask comes from and how to pick the object.

    `select`: palette index / gray id (int) or RGB colour (tuple) for multi-object sources; None for a
    binary source. `tolerance`: id/colour matching tolerance in 0-255 units (None: 0 for lossless sources,
    12 (gray id) / 40 (colour, max channel difference) for lossy videos: use well separated ids/colours). `fps`: frame rate of PNG / RLE sequences (None: the video's).
    """

    source: Path
    kind: MaskKind = "auto"
    select: Selector = None
    name: str | None = None
    threshold: float = 0.5
    tolerance: float | None = None
    fps: float | None = None

    def __post_init__(self) -> None:
        self.source = Path(self.source)

    def resolved_kind(self) -> str:
        if self.kind != "auto":
            return self.kind
        if self.source.is_dir():
            return "png_dir"
        if self.source.suffix.lower() == ".json":
            return "rle_json"
        return "video" if self.select is None else "id_video"

    @property
    def display_name(self) -> str:
        """`name` if given, else the file stem, plus the selected id / colour."""
        if self.name:
            return self.name
        if self.select is None:
            return self.source.stem
        if isinstance(self.select, tuple):
            r, g, b = self.select
            return f"{self.source.stem}_{r:02x}{g:02x}{b:02x}"
        return f"{self.source.stem}_{self.select}"


def parse_select(text: str | None) -> Selector:
    """'3' -> 3; '255,0,0' or '#ff0000' -> (255, 0, 0); '' / None -> None."""
    if text is None or not str(text).strip():
        return None
    t = str(text).strip()
    try:
        if t.startswith("#") and len(t) == 7:
            return tuple(int(t[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        if "," in t:
            parts = tuple(int(v) for v in t.split(","))
            if len(parts) == 3 and all(0 <= v <= 255 for v in parts):
                return parts  # type: ignore[return-value]
        else:
            return int(t)
    except ValueError:
        pass
    raise InputError(f"bad mask selector '{text}': use an integer id (3) or a colour (255,0,0 or #ff0000)")


@dataclass
class RawMask:
    """A mask at its own resolution and timestamps (display orientation)."""

    frames: np.ndarray  # (N, h, w) bool
    times: np.ndarray  # (N,) float64 seconds from the start of the mask
    frame_duration: float  # how long the last frame stays on screen
    orig_size: tuple[int, int]  # (H, W) of the source before any downscaling while reading
    name: str = "mask"

    @property
    def end(self) -> float:
        return float(self.times[-1]) + self.frame_duration if len(self.times) else 0.0


@dataclass
class ObjectMask:
    name: str
    masks: torch.Tensor  # (T, 1, S, S) float32 in {0, 1}, aligned to the video's sync frames
    spec: MaskSpec | None = None
    raw: RawMask | None = field(default=None, repr=False)


# ---------------------------------------------------------------------------------------------- reading


def _downscale(m: np.ndarray, max_side: int | None) -> np.ndarray:
    """Boolean (h, w) -> at most `max_side` on the long side (area average, re-binarised at 0.5)."""
    h, w = m.shape
    if not max_side or max(h, w) <= max_side:
        return m
    s = max_side / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    x = torch.from_numpy(m).float()[None, None]
    return (F.interpolate(x, (nh, nw), mode="area")[0, 0] >= 0.5).numpy()


def _match(values: np.ndarray, select: Selector, tol: float, what: str) -> np.ndarray:
    """values (h, w) ids or (h, w, 3) colours -> bool mask of the selected object."""
    if isinstance(select, tuple):
        if values.ndim != 3:
            raise InputError(f"{what} has no colours: select the object by integer id, not by colour")
        d = np.abs(values[..., :3].astype(np.int16) - np.asarray(select, np.int16)).max(-1)
        return d <= tol
    if values.ndim == 3:
        raise InputError(f"{what} is a colour mask: select the object by colour (e.g. 255,0,0), not by id")
    return np.abs(values.astype(np.int64) - int(select)) <= tol


def _near_background(select: Selector, tol: float) -> bool:
    if isinstance(select, tuple):
        return max(select) <= tol
    return select is not None and abs(int(select)) <= tol


def _check_selector_in_binary(p: Path, select: Selector, tol: float, black_white: int, total: int) -> None:
    """Refuse a selector on a black-and-white mask video unless it selects white (the object)."""
    if total == 0 or black_white < BINARY_FRACTION * total:
        return
    white = min(select) >= 255 - tol if isinstance(select, tuple) else int(select) >= 255 - tol  # type: ignore[arg-type]
    if not white:
        what = ",".join(map(str, select)) if isinstance(select, tuple) else str(select)
        raise InputError(f"mask video {p} is a binary (black and white) mask: --select {what} would pick "
                         f"{'its background' if _near_background(select, tol) else 'nothing'}; drop --select "
                         "(or give '-') for a binary mask")


def _check_selector_found(p: Path, select: Selector, frames: list[np.ndarray]) -> None:
    """A selected id / colour that is in no frame at all is a wrong selector, not an object out of view."""
    if select is not None and frames and not any(f.any() for f in frames):
        what = ",".join(map(str, select)) if isinstance(select, tuple) else str(select)
        raise InputError(f"--select {what} matches no pixel in any frame of mask {p}: check the object's id or "
                         "colour in that file")


def _read_video_mask(spec: MaskSpec, max_side: int | None, id_video: bool) -> RawMask:
    p = spec.source
    with VideoReader(p, hint="pass a mask video, a PNG folder or an RLE .json") as video:
        lossless = video.codec_name in LOSSLESS_CODECS
        lossy_tol = LOSSY_COLOUR_TOLERANCE if isinstance(spec.select, tuple) else LOSSY_TOLERANCE
        tol = spec.tolerance if spec.tolerance is not None else (0.0 if lossless else lossy_tol)
        dur = 1.0 / float(video.rate) if video.rate else 0.04
        fmt = "rgb24" if isinstance(spec.select, tuple) else "gray"
        if id_video and _near_background(spec.select, tol):
            what = ",".join(map(str, spec.select)) if isinstance(spec.select, tuple) else str(spec.select)
            raise InputError(f"--select {what} on mask video {p} matches the background (id 0 / black, within "
                             f"the tolerance {tol:g} of its {'lossless' if lossless else 'lossy'} codec): select "
                             "an object's id or colour, or drop --select for a binary mask")
        frames, times, orig = [], [], None
        black_white = total = 0  # pixels that are black or white, of all pixels (binary-mask check)
        for f in video.frames():
            h, w = f.frame.height, f.frame.width
            orig = f.display_size
            s = min(1.0, max_side / max(h, w)) if max_side else 1.0
            # Shrink with swscale before thresholding (fast): area for a binary mask, nearest for ids/colours
            # (averaging would invent ids). Luma plane (format="gray"), never rgb2gray * 255 cast to uint8
            # (RN-24).
            v = f.to_array(format=fmt, width=max(1, round(w * s)), height=max(1, round(h * s)),
                           interpolation="POINT" if id_video else "AREA")
            if id_video:
                level = v.max(-1) if v.ndim == 3 else v
                spread = v.max(-1) - v.min(-1) if v.ndim == 3 else 0
                bw = ((level <= LOSSY_TOLERANCE) | (level >= 255 - LOSSY_TOLERANCE)) & (spread <= LOSSY_TOLERANCE)
                black_white += int(bw.sum())
                total += bw.size
            m = _match(v, spec.select, tol, f"mask video {p}") if id_video else v >= spec.threshold * 255.0
            frames.append(m)
            times.append(f.time)
            dur = f.duration or dur
    if not frames:
        raise InputError(f"mask video {p} has no decodable frames: it is empty, corrupt or truncated")
    if id_video:
        _check_selector_in_binary(p, spec.select, tol, black_white, total)
        _check_selector_found(p, spec.select, frames)
    return RawMask(np.stack(frames), np.asarray(times, np.float64), dur, orig, spec.display_name)


def _natural_key(p: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def _read_png_dir(spec: MaskSpec, fps: float, max_side: int | None) -> RawMask:
    from PIL import Image, UnidentifiedImageError

    files = sorted((f for f in spec.source.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    if not files:
        raise InputError(f"mask folder {spec.source} has no image files (.png): check the path")
    tol = spec.tolerance if spec.tolerance is not None else 0.0
    frames, orig, seen_ids, seen_colours = [], None, set(), set()
    for f in files:
        try:
            with Image.open(f) as img:
                img.load()
                mode, palette = img.mode, img.getpalette()
                if mode == "1":
                    arr = np.array(img.convert("L"))
                elif mode in ("RGBA", "LA", "CMYK", "YCbCr", "HSV"):
                    arr = np.array(img.convert("RGB"))
                else:
                    arr = np.array(img)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise InputError(f"cannot read mask image {f} ({short_error(e)}): the file is corrupt or not an image") from e
        if orig is not None and arr.shape[:2] != orig:
            raise InputError(f"mask image {f} is {arr.shape[1]}x{arr.shape[0]} but earlier frames are "
                             f"{orig[1]}x{orig[0]}: all frames of a mask must have one size")
        orig = arr.shape[:2]
        sel = spec.select
        if sel is not None and _near_background(sel, tol) and not (mode == "P" and isinstance(sel, tuple)):
            what = ",".join(map(str, sel)) if isinstance(sel, tuple) else str(sel)
            raise InputError(f"--select {what} on mask folder {spec.source} selects the background (id 0 / black): "
                             "select an object's id or colour, or drop --select for a binary mask")
        if mode == "P" and isinstance(sel, tuple) and palette:  # colour -> palette indices with that colour
            pal = np.asarray(palette, np.int16).reshape(-1, 3)
            ids = np.nonzero(np.abs(pal - np.asarray(sel, np.int16)).max(-1) <= tol)[0]
            m = np.isin(arr, ids)
        elif sel is not None:
            m = _match(arr, sel, tol, f"mask image {f}")
        elif arr.ndim == 3:  # colour image without selector: must be a single-object (black/colour) mask
            fg = arr.max(-1) >= spec.threshold * 255.0
            seen_colours.update(map(tuple, np.unique(arr[fg].reshape(-1, 3) // 16 * 16, axis=0)[:8].tolist()))
            m = fg
        elif mode == "P":
            seen_ids.update(np.unique(arr).tolist())
            m = arr != 0
        else:
            top = 65535.0 if arr.dtype == np.uint16 else (255.0 if arr.dtype == np.uint8 else max(1.0, arr.max()))
            m = arr >= spec.threshold * top
        frames.append(_downscale(np.asarray(m, bool), max_side))
    _check_selector_found(spec.source, spec.select, frames)
    seen_ids.discard(0)
    if len(seen_ids) > 1:
        raise InputError(f"mask folder {spec.source} holds several objects (palette indices "
                         f"{sorted(seen_ids)[:10]}): select one by index")
    if len(seen_colours) > 1:
        raise InputError(f"mask folder {spec.source} holds several colours ({sorted(seen_colours)[:5]}): "
                         "select one object by colour, e.g. 255,0,0")
    times = np.arange(len(frames), dtype=np.float64) / fps
    return RawMask(np.stack(frames), times, 1.0 / fps, orig, spec.display_name)


def decode_rle(rle: dict) -> np.ndarray:
    """COCO RLE `{"size": [h, w], "counts": str | list[int]}` -> (h, w) bool.

    Decoded by hand (pycocotools needs a C build for this one function). Counts alternate runs of 0 and 1,
    starting with 0, over the pixels in column-major order. Compressed string counts use COCO's
    LEB128-like code: 5 bits per char (offset 48), bit 0x20 = more chars follow, the last char's bit 0x10
    is the sign, and from the third count on each value is stored as a delta to the count two before.
    """
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, (bytes, str)):
        s = counts.encode() if isinstance(counts, str) else counts
        cnts: list[int] = []
        p = 0
        while p < len(s):
            x, k, more = 0, 0, True
            while more:
                if p >= len(s):
                    raise ValueError("RLE string ends inside a number")
                c = s[p] - 48
                x |= (c & 0x1F) << (5 * k)
                more = bool(c & 0x20)
                p += 1
                k += 1
                if not more and (c & 0x10):
                    x |= -1 << (5 * k)
            if len(cnts) > 2:
                x += cnts[-2]
            cnts.append(x)
    else:
        cnts = [int(v) for v in counts]
    if any(c < 0 for c in cnts) or sum(cnts) != h * w or h < 0 or w < 0:
        raise ValueError(f"RLE counts sum to {sum(cnts)} (some negative?) but size is {h}x{w}")
    vals = np.zeros(len(cnts), bool)
    vals[1::2] = True
    return np.repeat(vals, cnts).reshape(w, h).T


def _read_rle_json(spec: MaskSpec, fps: float, max_side: int | None) -> RawMask:
    try:
        data = json.loads(spec.source.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read RLE mask {spec.source} ({short_error(e)}): expected a JSON list of "
                         '{"size": [h, w], "counts": ...} per frame') from e
    if isinstance(data, dict):
        try:
            fps = float(data.get("fps", fps))
        except (TypeError, ValueError) as e:
            raise InputError(f"RLE mask {spec.source}: 'fps' must be a number, got {data.get('fps')!r}") from e
        if not np.isfinite(fps) or fps <= 0:
            raise InputError(f"RLE mask {spec.source}: 'fps' must be > 0, got {fps}")
        data = next((data[k] for k in ("frames", "masks", "annotations") if k in data), None)
    if not isinstance(data, list) or not data:
        raise InputError(f"RLE mask {spec.source}: expected a non-empty JSON list of "
                         '{"size": [h, w], "counts": ...} per frame')
    frames, size = [], None
    for i, entry in enumerate(data):
        if isinstance(entry, list):  # several objects per frame: pick one by index
            if not isinstance(spec.select, int) or not 0 <= spec.select < len(entry):
                raise InputError(f"RLE mask {spec.source} holds {len(entry)} objects per frame: "
                                 "select one by index (0-based)")
            entry = entry[spec.select]
        try:
            if entry is None:  # no annotation for this frame: empty
                if size is None:
                    raise ValueError("first frame has no size")
                m = np.zeros(size, bool)
            else:
                m = decode_rle(entry)
        except (ValueError, KeyError, TypeError, OverflowError, MemoryError) as e:
            raise InputError(f"bad RLE entry {i} in {spec.source} ({short_error(e)}): expected "
                             '{"size": [h, w], "counts": ...}') from e
        if size is not None and m.shape != size:
            raise InputError(f"RLE mask {spec.source}: frame {i} is {m.shape} but frame 0 is {size}")
        size = m.shape
        frames.append(_downscale(m, max_side))
    times = np.arange(len(frames), dtype=np.float64) / fps
    return RawMask(np.stack(frames), times, 1.0 / fps, size, spec.display_name)


def read_mask(spec: MaskSpec, fps: float | None = None, max_side: int | None = DEFAULT_MAX_SIDE) -> RawMask:
    """Read one object's mask at its own resolution (long side capped at `max_side`) and timestamps.

    `fps` is the frame rate of PNG / RLE sequences when `spec.fps` is not set (typically the video's).
    """
    if not spec.source.exists():
        raise InputError(f"mask not found: {spec.source}: check the path")
    kind = spec.resolved_kind()
    rate = float(spec.fps or fps or 25.0)
    if rate <= 0:
        raise InputError(f"bad mask frame rate {rate}: must be > 0")
    try:
        if kind == "png_dir":
            if not spec.source.is_dir():
                raise InputError(f"mask {spec.source} is not a folder of PNG frames")
            return _read_png_dir(spec, rate, max_side)
        if spec.source.is_dir():
            raise InputError(f"mask {spec.source} is a folder: use kind 'png_dir' or pass a file")
        if kind == "rle_json":
            return _read_rle_json(spec, rate, max_side)
        if kind in ("video", "id_video"):
            if kind == "id_video" and spec.select is None:
                raise InputError(f"instance-id mask video {spec.source} needs an object id or colour to select")
            return _read_video_mask(spec, max_side, id_video=kind == "id_video")
    except InputError:
        raise
    except (*DECODE_ERRORS, av.FFmpegError) as e:
        raise InputError(f"cannot read mask {spec.source} ({short_error(e)}): corrupt or unsupported file") from e
    raise InputError(f"unknown mask kind '{kind}': use video, id_video, png_dir or rle_json")


# ---------------------------------------------------------------------------------------------- aligning


def _to_geometry(m: torch.Tensor, size: int, geometry: Geometry) -> torch.Tensor:
    """(N, 1, h, w) float {0,1} -> (N, 1, size, size) {0,1}: area resize, re-binarised at 0.5.

    'center_crop' crops the central square first, which equals resize-short-side then centre crop.
    """
    if geometry == "center_crop":
        h, w = m.shape[-2:]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        m = m[..., top:top + s, left:left + s]
    return (F.interpolate(m, (size, size), mode="area") >= 0.5).float()


def align_mask(raw: RawMask, times: torch.Tensor | np.ndarray, video_size: tuple[int, int], size: int = 224,
               geometry: Geometry = "squash", need_end: float | None = None,
               video_duration: float | None = None, pad: bool = False, strict: bool = False,
               frame_rule: FrameRule = DEFAULT_FRAME_RULE) -> torch.Tensor:
    """Resample `raw` to target `times` (seconds), picking mask frames by `frame_rule`, and to the sync
    frames' geometry.

    Returns `(T, 1, size, size)` float32 in {0, 1}. The mask must have the video's aspect ratio (`video_size`
    = display (H, W)). It must cover `need_end` (end of the decoded range) and not run past `video_duration`,
    each with one mask frame of slack, unless `pad` (repeat the last frame / truncate). An all-zero result
    warns, or raises with `strict`.
    """
    name = raw.name
    H, W = video_size
    mh, mw = raw.orig_size
    if min(H, W, mh, mw) <= 0:
        raise InputError(f"mask {name} or its video has an empty frame size")
    if abs((mw / mh) / (W / H) - 1.0) > ASPECT_TOLERANCE:
        raise InputError(f"mask {name} is {mw}x{mh} (aspect {mw / mh:.3f}) but the video is {W}x{H} "
                         f"(aspect {W / H:.3f}): masks must have the video's aspect ratio")
    slack = raw.frame_duration + TIME_EPS
    if need_end is not None and raw.end < need_end - slack and not pad:
        raise InputError(f"mask {name} is shorter than the video ({raw.end:.2f} s < {need_end:.2f} s): "
                         "pass pad=True (--pad-masks) to repeat its last frame, or shorten the duration")
    if video_duration is not None and raw.end > video_duration + slack and not pad:
        raise InputError(f"mask {name} is longer than the video ({raw.end:.2f} s > {video_duration:.2f} s): "
                         "pass pad=True (--pad-masks) to truncate it, or check that it belongs to this video")
    t = np.asarray(times, np.float64)
    idx = pick_frames(raw.times, t, frame_rule)
    distinct, inverse = np.unique(idx, return_inverse=True)
    m = torch.from_numpy(raw.frames[distinct]).float()[:, None]
    out = _to_geometry(m, size, geometry)[torch.from_numpy(inverse.reshape(-1))]
    if out.numel() and not out.any():
        msg = f"mask {name} is empty (all zero) over the video's time range: check the selector / threshold"
        if strict:
            raise InputError(msg)
        log.warning(msg)
    return out


def load_mask(spec: MaskSpec, video: DecodedVideo, pad: bool = False, strict: bool = False,
              max_side: int | None = DEFAULT_MAX_SIDE, keep_raw: bool = False) -> ObjectMask:
    """Read `spec` and align it to `video`'s sync frames: `ObjectMask.masks` is `(Ts, 1, S, S)`."""
    raw = read_mask(spec, fps=video.fps or None, max_side=max_side)
    masks = align_mask(raw, video.sync_times, video.size, size=video.sync_frames.shape[-1],
                       geometry=video.sync_geometry, need_end=video.start + video.duration,
                       video_duration=max(video.info.duration, video.start + video.duration), pad=pad,
                       strict=strict, frame_rule=video.frame_rule)
    return ObjectMask(name=spec.display_name, masks=masks, spec=spec, raw=raw if keep_raw else None)


def align_masks(raws: list[RawMask], specs: list[MaskSpec | None], video: DecodedVideo, pad: bool = False,
                strict: bool = False, keep_raw: bool = False) -> list[ObjectMask]:
    """Masks read earlier (`read_mask`) aligned to `video`'s sync frames, as `load_masks` gives them."""
    out = []
    for raw, spec in zip(raws, specs):
        masks = align_mask(raw, video.sync_times, video.size, size=video.sync_frames.shape[-1],
                           geometry=video.sync_geometry, need_end=video.start + video.duration,
                           video_duration=max(video.info.duration, video.start + video.duration), pad=pad,
                           strict=strict, frame_rule=video.frame_rule)
        out.append(ObjectMask(name=raw.name, masks=masks, spec=spec, raw=raw if keep_raw else None))
    _check_unique([o.name for o in out])
    return out


def _check_unique(names: list[str]) -> None:
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"several masks are named {dup}: give each object its own name")


def load_masks(specs: list[MaskSpec], video: DecodedVideo, pad: bool = False, strict: bool = False,
               keep_raw: bool = False) -> list[ObjectMask]:
    """`load_mask` for several objects; names must be unique (they name the output stems)."""
    out = [load_mask(s, video, pad=pad, strict=strict, keep_raw=keep_raw) for s in specs]
    names = [o.name for o in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"several masks are named {dup}: give each object its own name")
    return out
