"""`segment_video`: masks for the objects a user points at, over a whole clip.

    from saganet.segment import segment_video, write_segmentation, to_object_masks
    res = segment_video("clip.mp4", [("object", "violin"), ("point", "320,200@1.5")], segmenter="sam2.1-tiny")
    write_segmentation(res, "masks/")                 # per object mp4 + RLE JSON, preview.mp4, masks.json
    objs = to_object_masks(res, decoded_video)        # same ObjectMasks as mask files give

Segmenters: "color" (non-learned, flat-coloured scenes, no download) and "sam2.1-tiny|small|base-plus|large"
(SAM 2.1 video propagation, text through Grounding DINO), or any object with `segment(frames, objects,
max_objects, min_score) -> list[ObjectTrack]` and `name` / `model_id` attributes.

`propagate_fps` segments only frames on a grid at that rate (plus the prompted frames) and fills the frames in
between by moving the neighbouring key masks along their centroids' path and blending their signed distance
fields: much faster for slow models, at some
cost in accuracy (measured in benchmarks/bench_segment.py).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np
import torch
from scipy import ndimage

from saganet.errors import InputError
from saganet.io.video import DecodedVideo
from saganet.segment.frames import VideoFrames, load_frames
from saganet.segment.models import DEFAULT_LEARNED, SAM2_MODELS
from saganet.segment.prompts import ObjectPrompt, parse_prompt_args, validate_prompts
from saganet.segment.result import ObjectTrack, SegmentationResult

log = logging.getLogger(__name__)

__all__ = ["SEGMENTERS", "SAM2_MODELS", "DEFAULT_LEARNED", "make_segmenter", "segment_video",
           "interpolate_masks"]

SEGMENTERS = ("color", *SAM2_MODELS)


def make_segmenter(name: str, palette: dict[str, tuple[int, int, int]] | None = None,
                   device: str | torch.device | None = None, offline: bool | None = None,
                   model_dirs: dict | None = None):
    """A segmenter by name ("color", "sam2.1-tiny", ...). Learned ones load their weights here, through
    saganet.weights (`model_dirs`: model key -> local folder, as for `--model-dir`)."""
    key = str(name).strip().lower().replace("colour", "color")
    if key == "color":
        from saganet.segment.colour import ColourSegmenter

        return ColourSegmenter(palette=palette)
    if key in SAM2_MODELS:
        from saganet.segment.sam2 import Sam2Segmenter

        return Sam2Segmenter.from_hub(key, device=device, offline=offline, model_dirs=model_dirs)
    raise InputError(f"unknown segmenter '{name}': choose one of {', '.join(SEGMENTERS)}")


def _as_objects(prompts: Sequence[ObjectPrompt] | Iterable[tuple[str, str]]) -> list[ObjectPrompt]:
    items = list(prompts)
    if items and all(isinstance(p, ObjectPrompt) for p in items):
        return items  # type: ignore[return-value]
    return parse_prompt_args(items)  # type: ignore[arg-type]


def _sdf(m: np.ndarray) -> np.ndarray:
    """Signed distance (pixels, > 0 inside) of a boolean mask."""
    if not m.any():
        return np.full(m.shape, -1e3, np.float32)
    if m.all():
        return np.full(m.shape, 1e3, np.float32)
    return (ndimage.distance_transform_edt(m) - ndimage.distance_transform_edt(~m)).astype(np.float32)


def _centroid(m: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(m)
    return np.array([ys.mean(), xs.mean()]) if ys.size else None


def _shift(m: np.ndarray, d: np.ndarray) -> np.ndarray:
    return ndimage.shift(m.astype(np.uint8), np.round(d), order=0, mode="constant", cval=0).astype(bool)


def interpolate_masks(keys: np.ndarray, masks: np.ndarray, n_frames: int) -> np.ndarray:
    """Masks on frames `keys` (sorted, (K,), with (K, H, W) bool) -> (n_frames, H, W) bool.

    Between two key frames both masks are moved towards each other along their centroids' path, and their
    signed distance fields are blended linearly and thresholded at 0: a moving, growing object morphs
    instead of jumping. Outside the key range the nearest key is held; an empty key mask fades by the blend.
    """
    out = np.zeros((n_frames, *masks.shape[1:]), bool)
    for t in range(n_frames):
        j = int(np.searchsorted(keys, t, side="right")) - 1
        if j < 0:
            out[t] = masks[0]
        elif keys[j] == t or j == len(keys) - 1:
            out[t] = masks[j]
        else:
            w = (t - keys[j]) / (keys[j + 1] - keys[j])
            a, b = masks[j], masks[j + 1]
            ca, cb = _centroid(a), _centroid(b)
            if ca is not None and cb is not None:
                a, b = _shift(a, w * (cb - ca)), _shift(b, -(1 - w) * (cb - ca))
            out[t] = (1 - w) * _sdf(a) + w * _sdf(b) > 0
    return out


def _subsample(frames: VideoFrames, objects: list[ObjectPrompt], rate: float
               ) -> tuple[np.ndarray, VideoFrames, list[ObjectPrompt]]:
    """Key frames on a `rate` grid plus every prompted frame; prompts re-indexed to the subset."""
    grid = np.arange(frames.times[0], frames.end, 1.0 / rate)
    idx = {int(np.clip(np.searchsorted(frames.times, t + 1e-4, side="right") - 1, 0, len(frames) - 1))
           for t in grid}
    for o in objects:
        idx |= set(o.frames) | ({o.text.frame} if o.text is not None and o.text.frame is not None else set())
    keys = np.array(sorted(idx))
    pos = {int(k): i for i, k in enumerate(keys)}
    sub = VideoFrames(frames.frames[keys], frames.times[keys], rate, frames.frame_duration, frames.source)

    def re(o: ObjectPrompt) -> ObjectPrompt:
        return ObjectPrompt(o.name, [replace(p, frame=pos[p.frame]) for p in o.points],
                            [replace(b, frame=pos[b.frame]) for b in o.boxes],
                            None if o.text is None else replace(o.text, frame=None if o.text.frame is None
                                                                 else pos[o.text.frame]))

    return keys, sub, [re(o) for o in objects]


def segment_video(video: str | os.PathLike | VideoFrames | DecodedVideo | np.ndarray,
                  prompts: Sequence[ObjectPrompt] | Iterable[tuple[str, str]], segmenter="color", *,
                  fps: float | None = None, palette: dict[str, tuple[int, int, int]] | None = None,
                  max_objects: int = 5, min_score: float = 0.3, propagate_fps: float | None = None,
                  device: str | torch.device | None = None, offline: bool | None = None,
                  model_dirs: dict | None = None, keep_frames: bool = True) -> SegmentationResult:
    """Segment the prompted objects over the whole clip.

    `video`: a file, a `DecodedVideo` decoded with `keep_original=True`, `VideoFrames`, or a (T, H, W, 3)
    uint8 array at `fps`. `prompts`: `ObjectPrompt`s or ordered (kind, value) pairs as on the command line
    (kind: object, point, neg_point, box, text). `segmenter`: a name from SEGMENTERS or a segmenter object.
    `palette`: class name -> RGB for text prompts with the colour segmenter. Text matches below `min_score`
    are dropped; at most `max_objects` per text. Returns masks at the video's resolution and frame times.
    """
    if not np.isfinite(min_score) or not 0 <= min_score <= 1:
        raise InputError(f"bad min score {min_score}: use a number in [0, 1]")
    if int(max_objects) < 1:
        raise InputError(f"bad max objects {max_objects}: use at least 1")
    if propagate_fps is not None and (not np.isfinite(propagate_fps) or propagate_fps <= 0):
        raise InputError(f"bad propagate fps {propagate_fps}: use a frame rate > 0")
    objects = _as_objects(prompts)
    if isinstance(segmenter, str) and segmenter.strip().lower() not in (*SEGMENTERS, "colour"):
        raise InputError(f"unknown segmenter '{segmenter}': choose one of {', '.join(SEGMENTERS)}")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    frames = load_frames(video, fps)
    timings["decode"] = time.perf_counter() - t0
    objects = validate_prompts(objects, frames.size, frames.times, frames.end)
    t0 = time.perf_counter()
    seg = make_segmenter(segmenter, palette=palette, device=device, offline=offline, model_dirs=model_dirs) \
        if isinstance(segmenter, str) else segmenter
    timings["load_model"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if propagate_fps is not None and propagate_fps < frames.fps:
        keys, sub, sub_objects = _subsample(frames, objects, propagate_fps)
        tracks = seg.segment(sub, sub_objects, max_objects=int(max_objects), min_score=float(min_score))
        full = []
        for tr in tracks:
            sc = np.interp(np.arange(len(frames)), keys, tr.scores).astype(np.float32)
            prompt = next((o for o in objects if tr.prompt is not None and o.name == tr.prompt.name), tr.prompt)
            full.append(ObjectTrack(tr.name, interpolate_masks(keys, tr.masks, len(frames)), sc, prompt, tr.info))
        tracks = full
    else:
        tracks = seg.segment(frames, objects, max_objects=int(max_objects), min_score=float(min_score))
    timings["segment"] = time.perf_counter() - t0
    timings["frames"] = float(len(frames))
    names = [t.name for t in tracks]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"several objects are named {dup}: give each object its own name with --object")
    return SegmentationResult(tracks, frames.times, frames.fps, frames.frame_duration, frames.size,
                              getattr(seg, "name", type(seg).__name__), getattr(seg, "model_id", "?"), timings,
                              frames.source, frames if keep_frames else None)
