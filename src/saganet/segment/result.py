"""What a segmentation gives: per-object boolean masks over the whole clip, and how it is written and used.

Files written by `write_segmentation(result, out_dir)` (atomic, never over existing files unless
`overwrite=True`; all names are checked before anything is written):

    <name>_mask.mp4   binary mask video (white object), readable by `--mask` / `MaskSpec(kind="video")`
    <name>_rle.json   {"fps", "size", "name", "frames": [COCO RLE {"size": [h, w], "counts": str}, ...]},
                      readable by `--mask` / `MaskSpec(kind="rle_json")` (saganet.io.masks.decode_rle)
    preview.mp4       the video with each object's outline, a light tint and its name
    masks.json        prompts, segmenter / model, per-frame scores and areas, timings, file names

`to_object_masks(result, decoded_video)` turns a result into the `ObjectMask`s that mask files give, aligned to
the decoded video's sync frames, so the pipeline can take clicks in place of mask files.

RLE encoding uses pycocotools (the reference format's own library); decoding stays in saganet.io.masks.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from saganet.errors import InputError
from saganet.io.atomic import atomic_write_text
from saganet.io.masks import DEFAULT_MAX_SIDE, ObjectMask, RawMask, _downscale, align_mask
from saganet.io.video import DecodedVideo
from saganet.io.writers import write_mask_video, write_video
from saganet.segment.frames import VideoFrames
from saganet.segment.prompts import ObjectPrompt

log = logging.getLogger(__name__)

__all__ = [
    "ObjectTrack",
    "SegmentationResult",
    "encode_rle",
    "output_paths",
    "check_outputs",
    "write_segmentation",
    "to_object_masks",
    "render_preview",
]

# Outline colours of the preview (RGB), cycled over objects.
PALETTE = ((255, 64, 64), (64, 160, 255), (80, 230, 80), (255, 200, 40), (230, 80, 255), (40, 230, 230))


@dataclass
class ObjectTrack:
    """One object over the clip: `masks` bool (T, H, W), `scores` float (T,) in [0, 1]."""

    name: str
    masks: np.ndarray
    scores: np.ndarray
    prompt: ObjectPrompt | None = None
    info: dict = field(default_factory=dict)  # e.g. the grounding detection that made it

    @property
    def areas(self) -> np.ndarray:
        """Object pixels per frame, int64 (T,)."""
        return self.masks.reshape(self.masks.shape[0], -1).sum(1)


@dataclass
class SegmentationResult:
    """Masks of every object at the video's resolution and frame times (display orientation)."""

    objects: list[ObjectTrack]
    times: np.ndarray  # (T,) float64 seconds from the start of the video stream
    fps: float
    frame_duration: float
    size: tuple[int, int]  # (H, W)
    segmenter: str  # "color", "sam2.1-tiny", ...
    model: str  # hub id, or "color"
    timings: dict = field(default_factory=dict)  # seconds per stage
    source: str = "<array>"
    frames: VideoFrames | None = field(default=None, repr=False)  # kept for the preview

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.objects]

    def masks(self, name: str) -> np.ndarray:
        for o in self.objects:
            if o.name == name:
                return o.masks
        raise KeyError(f"no object named '{name}'; have {self.names}")

    def to_dict(self, files: dict[str, dict[str, str]] | None = None) -> dict:
        files = files or {}
        return {
            "video": self.source,
            "size": list(self.size),
            "fps": self.fps,
            "n_frames": int(len(self.times)),
            "segmenter": self.segmenter,
            "model": self.model,
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
            "objects": [
                {
                    "name": o.name,
                    "prompt": o.prompt.to_dict() if o.prompt is not None else None,
                    "files": files.get(o.name, {}),
                    "info": o.info,
                    "scores": [round(float(s), 4) for s in o.scores],
                    "areas": [int(a) for a in o.areas],
                }
                for o in self.objects
            ],
        }


# ------------------------------------------------------------------------------------------------ RLE


def encode_rle(mask: np.ndarray) -> dict:
    """(h, w) bool -> COCO compressed RLE {"size": [h, w], "counts": str}."""
    from pycocotools import mask as cocomask

    rle = cocomask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


# ------------------------------------------------------------------------------------------------ writing


def _file_stem(name: str) -> str:
    return re.sub(r"[^\w.+-]+", "_", name).strip("_") or "object"


def output_paths(out_dir: str | os.PathLike, names: list[str], preview: bool = True) -> dict[str, Path]:
    """Every file `write_segmentation` writes, keyed 'NAME:mask', 'NAME:rle', 'preview', 'meta'."""
    d = Path(out_dir)
    paths: dict[str, Path] = {}
    stems = [_file_stem(n) for n in names]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise InputError(f"object names {names} give the same file names {dup}: rename the objects")
    for n, s in zip(names, stems):
        paths[f"{n}:mask"] = d / f"{s}_mask.mp4"
        paths[f"{n}:rle"] = d / f"{s}_rle.json"
    if preview:
        paths["preview"] = d / "preview.mp4"
    paths["meta"] = d / "masks.json"
    return paths


def check_outputs(out_dir: str | os.PathLike, names: list[str], overwrite: bool = False,
                  preview: bool = True) -> dict[str, Path]:
    """Fail (nothing written) if the output folder is a file or an output exists and `overwrite` is off."""
    d = Path(out_dir)
    if d.exists() and not d.is_dir():
        raise InputError(f"output {d} is a file: give a folder for the masks")
    paths = output_paths(d, names, preview)
    if not overwrite:
        there = [str(p) for p in paths.values() if p.exists()]
        if there:
            raise InputError(f"{there[0]} exists ({len(there)} output file(s) already there): pass --overwrite "
                             "(overwrite=True) or choose another output folder")
    return paths


def _outline(m: np.ndarray, width: int) -> np.ndarray:
    from scipy import ndimage

    return m & ~ndimage.binary_erosion(m, iterations=width, border_value=0)


def render_preview(frames: np.ndarray, objects: list[ObjectTrack]) -> np.ndarray:
    """(T, H, W, 3) uint8 frames with each object's outline, a light tint and its name (at its top-left)."""
    from PIL import Image, ImageDraw

    out = frames.copy()
    H, W = frames.shape[1:3]
    width = max(1, round(min(H, W) / 160))
    for t in range(out.shape[0]):
        labels = []
        for i, o in enumerate(objects):
            m = o.masks[t]
            if not m.any():
                continue
            c = np.asarray(PALETTE[i % len(PALETTE)], np.float32)
            f = out[t].astype(np.float32)
            f[m] = 0.75 * f[m] + 0.25 * c
            f[_outline(m, width)] = c
            out[t] = f.astype(np.uint8)
            ys, xs = np.nonzero(m)
            labels.append((int(xs.min()), max(0, int(ys.min()) - 11), o.name, PALETTE[i % len(PALETTE)]))
        if labels:
            img = Image.fromarray(out[t])
            draw = ImageDraw.Draw(img)
            for x, y, text, c in labels:
                draw.text((x + 1, y + 1), text, fill=(0, 0, 0))
                draw.text((x, y), text, fill=tuple(c))
            out[t] = np.asarray(img)
    return out


def write_segmentation(result: SegmentationResult, out_dir: str | os.PathLike, overwrite: bool = False,
                       preview: bool = True, frames: VideoFrames | np.ndarray | None = None) -> dict[str, Path]:
    """Write masks (mp4 + RLE JSON per object), the preview and masks.json; returns the paths written.

    The preview needs the video frames: `frames`, else the ones kept in `result.frames`; without either it is
    skipped. masks.json is written last, so its presence means the folder is complete.
    """
    fr = frames if frames is not None else result.frames
    if isinstance(fr, VideoFrames):
        fr = fr.frames
    preview = preview and fr is not None
    paths = check_outputs(out_dir, result.names, overwrite, preview)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, str]] = {}
    H, W = result.size
    for o in result.objects:
        mp, rp = paths[f"{o.name}:mask"], paths[f"{o.name}:rle"]
        write_mask_video(mp, o.masks, result.fps)
        rle = {"name": o.name, "fps": result.fps, "size": [H, W],
               "frames": [encode_rle(m) for m in o.masks]}
        atomic_write_text(rp, json.dumps(rle))
        files[o.name] = {"mask_video": mp.name, "rle_json": rp.name}
    if preview:
        write_video(paths["preview"], render_preview(np.asarray(fr), result.objects), result.fps)
    meta = result.to_dict(files)
    if preview:
        meta["preview"] = paths["preview"].name
    atomic_write_text(paths["meta"], json.dumps(meta, indent=1))
    log.info("wrote %d object mask(s) to %s", len(result.objects), out_dir)
    return paths


# ---------------------------------------------------------------------------------------------- pipeline


def to_object_masks(result: SegmentationResult, video: DecodedVideo, pad: bool = False, strict: bool = False,
                    max_side: int | None = DEFAULT_MAX_SIDE) -> list[ObjectMask]:
    """`ObjectMask`s aligned to `video`'s sync frames, exactly as `load_masks` gives for mask files.

    The result must come from the same video (display size with the same aspect ratio; times from the
    start of its video stream).
    """
    out = []
    for o in result.objects:
        frames = np.stack([_downscale(m, max_side) for m in o.masks])
        raw = RawMask(frames, np.asarray(result.times, np.float64), result.frame_duration, result.size, o.name)
        masks = align_mask(raw, video.sync_times, video.size, size=video.sync_frames.shape[-1],
                           geometry=video.sync_geometry, need_end=video.start + video.duration,
                           video_duration=max(video.info.duration, video.start + video.duration), pad=pad,
                           strict=strict)
        out.append(ObjectMask(name=o.name, masks=masks, spec=None, raw=raw))
    return out
