"""`saganet data masks`: the mask-generation strategy (label -> the sounding instrument's mask over the clip).

For each clip:
1. Ground the label on K key frames (default 3, spread over the clip; `saganet.segment.grounding`'s
   choice). The segmenter grounds the text on each key frame and propagates every match over the whole
   clip (`saganet.segment.segment_video` with one text prompt pinned to each key frame, in one call):
   SAM 2 + Grounding DINO for real data, the colour segmenter for the toy world and the tests.
2. Candidates from different key frames that are the same instance (IoU over the clip >= `same_iou`) are
   merged into one instance.
3. The sounding instance is chosen by this documented rule:
       instance_score = consistency * mean_score + size_weight * relative_size
   `consistency` = fraction of key frames on which grounding found the instance, `mean_score` = its mean
   grounding score over those frames, `relative_size` = its mean area over the clip divided by the largest
   candidate's. A solo performer is found on every key frame with a high score; a poster, a second
   instrument in the background or a false match is found on fewer frames, with lower scores, and is
   usually smaller, so it loses on each term. The size term (weight 0.1) breaks near ties only.
4. Outputs next to the clip, in the reference layout: `{root}/{label}/{stem}/{stem}_mask.mp4` (binary mask
   video) and `{stem}_mask.json` (COCO RLE per frame, `{"fps", "size", "frames": [...]}` readable by
   `saganet.io.masks`, plus the chosen instance's statistics and every candidate, which `verify` reads).
   URMP: one mask per player row at `{root}/{mask_id}.mp4` (+ `.json`); players of one piece with the
   same label get that label's best instances ordered left to right by mean x (URMP players are seated
   in the order their instruments are named).

Resumable through `{root}/masks_manifest.jsonl`; existing outputs are never overwritten unless asked. A mask
video that came with the clip (`ingest folder`) is kept: only its RLE JSON is written (grounding counted as
certain, since a person made it).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from saganet.data.ingest import read_clip_table
from saganet.data.manifest import DONE, FAILED, Manifest, remove_stale_temps
from saganet.data.metadata import read_urmp_metadata
from saganet.errors import InputError, SaganetError
from saganet.io.atomic import atomic_write_text
from saganet.io.writers import write_mask_video

log = logging.getLogger(__name__)

MANIFEST_NAME = "masks_manifest.jsonl"


@dataclass(frozen=True)
class MaskStrategy:
    """Knobs of the instance choice (see the module docstring)."""

    key_frames: int = 3
    min_score: float = 0.3  # grounding matches below this are not candidates
    max_candidates: int = 3  # matches per key frame
    same_iou: float = 0.5  # candidates overlapping this much over the clip are one instance
    size_weight: float = 0.1


@dataclass
class Instance:
    masks: np.ndarray  # (T, H, W) bool
    scores: dict[int, float] = field(default_factory=dict)  # key frame -> grounding score
    track_scores: np.ndarray | None = None  # per-frame segmenter scores

    @property
    def area(self) -> float:
        return float(self.masks.mean())

    @property
    def centre_x(self) -> float:
        cols = self.masks.any(axis=1)  # (T, W)
        xs = np.nonzero(cols)[1]
        return float(xs.mean()) if xs.size else 0.0


def mask_paths(root: Path, clip_id: str) -> tuple[Path, Path]:
    """SMS: `{root}/{label}/{stem}/{stem}_mask.mp4` and the RLE JSON beside it."""
    stem = clip_id.split("/")[-1]
    d = root / clip_id
    return d / f"{stem}_mask.mp4", d / f"{stem}_mask.json"


def clip_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two (T, H, W) masks over the whole clip."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def key_frame_indices(n_frames: int, count: int) -> list[int]:
    from saganet.segment.grounding import default_key_frames

    return default_key_frames(n_frames, count)


def _is_nothing_found(e: InputError) -> bool:
    return "nothing" in str(e)


def find_instances(frames, label: str, segmenter, strategy: MaskStrategy) -> list[Instance]:
    """Ground `label` on the key frames and propagate each match: the distinct instances found.

    All key frames go to the segmenter in one call (one object per key frame and match), so SAM 2 encodes
    each frame once for every candidate. When a key frame finds nothing the segmenter rejects the whole
    call; the key frames are then segmented one by one and the empty ones skipped.
    """
    from saganet.segment import ObjectPrompt, TextPrompt, segment_video

    keys = key_frame_indices(len(frames), strategy.key_frames)

    def run(fs: list[int]):
        prompts = [ObjectPrompt(f"{label}_k{f}", text=TextPrompt(label, float(frames.times[f]), f)) for f in fs]
        res = segment_video(frames, prompts, segmenter, max_objects=strategy.max_candidates,
                            min_score=strategy.min_score, keep_frames=False)
        return [(tr.prompt.text.frame if tr.prompt is not None and tr.prompt.text is not None else fs[0], tr)
                for tr in res.objects]

    try:
        found = run(keys)
    except InputError as e:
        if not _is_nothing_found(e):
            raise
        found = []
        for f in keys:
            try:
                found += run([f])
            except InputError as e1:
                if not _is_nothing_found(e1):
                    raise
                log.debug("no '%s' on key frame %d: %s", label, f, e1)
    instances: list[Instance] = []
    for f, tr in found:
        score = _grounding_score(tr)
        match = next((ins for ins in instances if clip_iou(ins.masks, tr.masks) >= strategy.same_iou), None)
        if match is None:
            instances.append(Instance(tr.masks, {f: score}, tr.scores))
        else:
            match.scores[f] = max(score, match.scores.get(f, 0.0))
            if score >= max(match.scores.values()):  # keep the propagation of the best detection
                match.masks, match.track_scores = tr.masks, tr.scores
    return instances


def _grounding_score(track) -> float:
    """The grounding score of the detection a track came from (colour: `info["score"]`, SAM 2 + Grounding
    DINO: `info["detection"]["score"]`); the mean per-frame segmenter score when neither is recorded."""
    info = track.info or {}
    if "score" in info:
        return float(info["score"])
    if isinstance(info.get("detection"), dict) and "score" in info["detection"]:
        return float(info["detection"]["score"])
    return float(np.mean(track.scores)) if len(track.scores) else 0.0


def rank_instances(instances: list[Instance], n_keys: int, strategy: MaskStrategy) -> list[tuple[float, dict]]:
    """(instance_score, stats) per instance, in input order (the rule of the module docstring)."""
    if not instances:
        return []
    max_area = max(i.area for i in instances) or 1.0
    out = []
    for ins in instances:
        consistency = len(ins.scores) / max(n_keys, 1)
        mean_score = float(np.mean(list(ins.scores.values())))
        rel = ins.area / max_area
        s = consistency * mean_score + strategy.size_weight * rel
        out.append((s, {"instance_score": round(s, 4), "consistency": round(consistency, 4),
                        "grounding_score": round(mean_score, 4), "relative_size": round(rel, 4),
                        "area": round(ins.area, 5), "key_frames": sorted(ins.scores)}))
    return out


def choose_instances(instances: list[Instance], n_keys: int, strategy: MaskStrategy, k: int = 1
                     ) -> tuple[list[int], list[dict]]:
    """Indices of the `k` best instances (best first) and every instance's stats."""
    ranked = rank_instances(instances, n_keys, strategy)
    order = sorted(range(len(ranked)), key=lambda i: -ranked[i][0])
    return order[:k], [r[1] for r in ranked]


def write_mask(mp4: Path, rle_json: Path, masks: np.ndarray, fps: float, meta: dict) -> None:
    """Mask video + COCO RLE JSON (atomic; the JSON last, so its presence means both are complete)."""
    from saganet.segment.result import encode_rle

    write_mask_video(mp4, masks, fps)
    doc = {"fps": fps, "size": list(masks.shape[1:]), **meta, "frames": [encode_rle(m) for m in masks]}
    atomic_write_text(rle_json, json.dumps(doc))


def register_provided_mask(mp4: Path, rle_json: Path, label: str) -> dict:
    """The RLE JSON of a mask video someone supplied (a human-made mask: grounding counts as certain)."""
    from saganet.io.masks import MaskSpec, read_mask
    from saganet.segment.result import encode_rle

    raw = read_mask(MaskSpec(mp4), max_side=None)
    fps = 1.0 / raw.frame_duration if raw.frame_duration > 0 else 25.0
    meta = {"label": label, "segmenter": "provided", "source": "provided", "grounding_score": 1.0,
            "consistency": 1.0, "area": round(float(raw.frames.mean()), 5), "candidates": [], "chosen": 0}
    doc = {"fps": fps, "size": list(raw.frames.shape[1:]), **meta, "frames": [encode_rle(m) for m in raw.frames]}
    atomic_write_text(rle_json, json.dumps(doc))
    return meta


def read_mask_meta(rle_json: Path) -> dict:
    """The statistics stored with a mask (everything but the RLE frames)."""
    doc = json.loads(Path(rle_json).read_text())
    doc.pop("frames", None)
    return doc


def _segmenter(name: str, palette: dict | None, device: str | None):
    from saganet.segment import make_segmenter

    return make_segmenter(name, palette=palette, device=device)


def mask_clip(video: Path, label: str, segmenter, strategy: MaskStrategy, n_instances: int = 1
              ) -> tuple[list[Instance], list[int], list[dict], float]:
    """Instances of `label` in `video`, the chosen ones (best first) and all stats; also the clip's fps."""
    from saganet.segment import load_frames

    frames = load_frames(video)
    instances = find_instances(frames, label, segmenter, strategy)
    chosen, stats = choose_instances(instances, len(key_frame_indices(len(frames), strategy.key_frames)),
                                     strategy, n_instances)
    return instances, chosen, stats, frames.fps


def _sms_job(root: Path, clip_id: str, label: str, segmenter, seg_name: str, strategy: MaskStrategy,
             overwrite: bool) -> dict:
    mp4, js = mask_paths(root, clip_id)
    if js.exists() and mp4.exists() and not overwrite:
        return {"status": DONE, "reason": "existing output kept"}
    if mp4.exists() and not js.exists() and not overwrite:  # a mask supplied with the clip: keep it, index it
        info = register_provided_mask(mp4, js, label)
        return {"status": DONE, "reason": "provided mask kept", "info": info}
    instances, chosen, stats, fps = mask_clip(root / f"{clip_id}.mp4", label, segmenter, strategy)
    if not chosen:
        return {"status": FAILED, "reason": f"no '{label}' found on any key frame"}
    best = chosen[0]
    meta = {"label": label, "segmenter": seg_name, "strategy": asdict(strategy), **stats[best],
            "candidates": stats, "chosen": best}
    write_mask(mp4, js, instances[best].masks, fps, meta)
    return {"status": DONE, "reason": "", "info": stats[best]}


def _urmp_job(root: Path, video_id: str, players: list, segmenter, seg_name: str, strategy: MaskStrategy,
              overwrite: bool) -> dict:
    targets = [(root / f"{p.mask_id}.mp4", root / f"{p.mask_id}.json") for p in players]
    if not overwrite:  # published / hand-made masks placed in the root are kept; only their JSON is written
        for p, (a, b) in zip(players, targets):
            if a.exists() and not b.exists():
                register_provided_mask(a, b, p.label)
    if all(a.exists() and b.exists() for a, b in targets) and not overwrite:
        return {"status": DONE, "reason": "existing output kept"}
    by_label: dict[str, list[int]] = {}
    for i, p in enumerate(players):
        by_label.setdefault(p.label, []).append(i)
    failed = []
    for label, idx in by_label.items():
        instances, chosen, stats, fps = mask_clip(root / f"{video_id}.mp4", label, segmenter, strategy,
                                                  n_instances=len(idx))
        if len(chosen) < len(idx):
            failed.append(f"{len(idx)} '{label}' player(s) but {len(chosen)} found")
            continue
        # same-label players: left to right in player order
        chosen = sorted(chosen, key=lambda c: instances[c].centre_x)
        for i, c in zip(sorted(idx, key=lambda i: players[i].player), chosen):
            mp4, js = targets[i]
            if mp4.exists() and js.exists() and not overwrite:
                continue
            meta = {"label": label, "segmenter": seg_name, "strategy": asdict(strategy), **stats[c],
                    "candidates": stats, "chosen": c, "player": players[i].player}
            write_mask(mp4, js, instances[c].masks, fps, meta)
    if failed:
        return {"status": FAILED, "reason": "; ".join(failed)}
    return {"status": DONE, "reason": ""}


def make_masks(root: str | os.PathLike, segmenter: str | object = "color", palette: dict | None = None,
               strategy: MaskStrategy | None = None, overwrite: bool = False, device: str | None = None,
               only: list[str] | None = None, quiet: bool = False) -> dict[str, str]:
    """Masks for every ingested clip under `root` (SMS or URMP, known from its metadata copy).

    Returns clip id -> "done" or the failure reason. `segmenter`: a name ("color", "sam2.1-tiny", ...) or a
    segmenter object; `palette`: class name -> RGB for the colour segmenter.
    """
    root = Path(root)
    strategy = strategy or MaskStrategy()
    seg = _segmenter(segmenter, palette, device) if isinstance(segmenter, str) else segmenter
    seg_name = segmenter if isinstance(segmenter, str) else getattr(seg, "name", type(seg).__name__)
    manifest = Manifest(root / MANIFEST_NAME)
    clips = read_clip_table(root)
    if only is not None:
        clips = [c for c in clips if c["id"] in set(only)]
    urmp = (root / "metadata.tsv").is_file() and not (root / "metadata.csv").is_file()
    players: dict[str, list] = {}
    if urmp:
        for r in read_urmp_metadata(root / "metadata.tsv"):
            players.setdefault(r.video_id, []).append(r)
    targets = []
    for c in clips:
        if urmp:
            targets += [root / f"{p.mask_id}{s}" for p in players.get(c["id"], []) for s in (".mp4", ".json")]
        else:
            targets += list(mask_paths(root, c["id"]))
    remove_stale_temps(targets)
    results: dict[str, str] = {}
    for c in tqdm(clips, desc="masks", unit="clip", disable=quiet):
        cid = c["id"]
        if manifest.status(cid) == DONE and not overwrite:
            if urmp or all(p.exists() for p in mask_paths(root, cid)):
                results[cid] = DONE
                continue
        try:
            if urmp:
                res = _urmp_job(root, cid, players.get(cid, []), seg, seg_name, strategy, overwrite)
            else:
                res = _sms_job(root, cid, c["label"], seg, seg_name, strategy, overwrite)
        except SaganetError as e:
            res = {"status": FAILED, "reason": str(e).splitlines()[0]}
        manifest.record(cid, res["status"], res.get("reason", ""), info=res.get("info", {}))
        results[cid] = DONE if res["status"] == DONE else res["reason"]
    n_done = sum(v == DONE for v in results.values())
    log.info("masks: %d done, %d failed", n_done, len(results) - n_done)
    return results


def resegment_from_click(root: str | os.PathLike, clip_id: str, x: float, y: float, time: float = 0.0,
                         segmenter: str | object = "color", palette: dict | None = None) -> dict:
    """Re-segment one SMS clip from a click (the review page's "re-click"); replaces its mask files."""
    from saganet.segment import ObjectPrompt, Point, load_frames, segment_video

    root = Path(root)
    video = root / f"{clip_id}.mp4"
    if not video.is_file():
        raise InputError(f"clip {clip_id} not found under {root}")
    frames = load_frames(video)
    label = clip_id.split("/")[0]
    res = segment_video(frames, [ObjectPrompt(label, points=[Point(float(x), float(y), float(time))])],
                        segmenter, palette=palette, keep_frames=False)
    tr = res.objects[0]
    mp4, js = mask_paths(root, clip_id)
    area = float(tr.masks.mean())
    meta = {"label": label, "segmenter": segmenter if isinstance(segmenter, str) else type(segmenter).__name__,
            "source": "click", "click": [x, y, time], "grounding_score": 1.0, "consistency": 1.0,
            "area": round(area, 5), "candidates": [], "chosen": 0}
    write_mask(mp4, js, tr.masks, frames.fps, meta)
    Manifest(root / MANIFEST_NAME).record(clip_id, DONE, "re-segmented from a click", info=meta)
    return meta
