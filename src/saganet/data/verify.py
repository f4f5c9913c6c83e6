"""`saganet data verify`: automatic verification of every SMS clip with named checks, and the review table.

Each check has its thresholds in `VerifyConfig` and a value stored in the table, so a rejection says why:

| check        | passes when                                                                              |
|--------------|------------------------------------------------------------------------------------------|
| grounding    | the chosen instance's mean grounding score >= `min_grounding_score` and it was found on   |
|              | >= `min_consistency` of the key frames (a click-made mask passes)                         |
| area         | mean mask area (fraction of the frame, non-empty frames) in [`min_area`, `max_area`]       |
| stability    | mean IoU of consecutive non-empty mask frames >= `min_stability`                           |
| empty_run    | no run of empty mask frames longer than `max_empty_run` seconds                            |
| drift        | the mask's centroid never moves farther than `max_drift` (fraction of the frame diagonal)  |
|              | from its median position: a track that slides off the performer                          |
| single       | at most `max_multi_fraction` of the frames hold more than one connected component of at    |
|              | least `min_component` of the mask (scipy.ndimage.label): one instrument, one instance      |
| border       | at most half the non-empty frames are "border only" (the mask touches >= 3 frame edges, or |
|              | lies entirely within the outer `border_band` of the frame): a frame edge, not an object   |
| silent       | audio RMS >= `min_rms_db` dBFS                                                             |
| clipped      | at most `max_clipped_fraction` of samples at |x| >= `clip_level`                           |
| duration     | |duration - metadata duration| <= `duration_tolerance` and duration >= `min_duration`     |

The table (`{root}/verify.csv`) has one row per clip: id, label, split, `auto` (accept/reject), `failed`
(the failed checks, `;`-separated), `review` (a human's accept/reject, empty if none), `decision` (the review
if given, else `auto`), a note and the measured values. Re-running verify recomputes the automatic part
and keeps the human decisions. `review.py` reads and writes the same table.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from saganet.data.cut import read_audio_window
from saganet.data.ingest import read_clip_table
from saganet.data.masks import mask_paths, read_mask_meta
from saganet.errors import InputError, SaganetError
from saganet.io.atomic import atomic_path
from saganet.io.masks import MaskSpec, read_mask
from saganet.io.video import probe_video

log = logging.getLogger(__name__)

TABLE_NAME = "verify.csv"
CHECKS = ("grounding", "area", "stability", "empty_run", "drift", "single", "border", "silent", "clipped",
          "duration", "files")
VALUE_COLUMNS = ("grounding_score", "consistency", "area", "stability", "longest_empty_s", "drift",
                 "multi_fraction", "border_fraction", "rms_db", "clipped_fraction", "duration")
COLUMNS = ("id", "label", "split", "decision", "auto", "failed", "review", "note", *VALUE_COLUMNS)


@dataclass(frozen=True)
class VerifyConfig:
    """Thresholds of every check (see the module docstring's table)."""

    min_grounding_score: float = 0.3
    min_consistency: float = 0.6
    min_area: float = 0.002
    max_area: float = 0.7
    min_stability: float = 0.5
    max_empty_run: float = 0.5  # seconds
    max_drift: float = 0.3  # fraction of the frame diagonal
    min_component: float = 0.1  # fraction of the frame's mask area that counts as a second instance
    max_multi_fraction: float = 0.2
    border_band: float = 0.05
    min_rms_db: float = -50.0
    clip_level: float = 0.999
    max_clipped_fraction: float = 0.001
    duration_tolerance: float = 0.1  # seconds
    min_duration: float = 0.64  # 16 sync frames

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not math.isfinite(v):
                raise InputError(f"verify threshold {f.name}={v} must be a finite number")


def mask_stats(masks: np.ndarray, fps: float, cfg: VerifyConfig) -> dict[str, float]:
    """The mask measurements of the checks, from (T, H, W) bool."""
    T, H, W = masks.shape
    areas = masks.reshape(T, -1).mean(1)
    nonempty = areas > 0
    out: dict[str, float] = {"area": float(areas[nonempty].mean()) if nonempty.any() else 0.0}
    ious = []
    for t in range(T - 1):
        if nonempty[t] and nonempty[t + 1]:
            a, b = masks[t], masks[t + 1]
            ious.append(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())
    out["stability"] = float(np.mean(ious)) if ious else 0.0
    run = longest = 0
    for e in ~nonempty:
        run = run + 1 if e else 0
        longest = max(longest, run)
    out["longest_empty_s"] = longest / fps
    if nonempty.any():
        ys, xs = np.mgrid[0:H, 0:W]
        cy = np.array([ys[m].mean() for m in masks[nonempty]])
        cx = np.array([xs[m].mean() for m in masks[nonempty]])
        d = np.hypot(cx - np.median(cx), cy - np.median(cy)) / math.hypot(H, W)
        out["drift"] = float(d.max())
    else:
        out["drift"] = 0.0
    multi = border = 0
    band_y, band_x = max(1, round(cfg.border_band * H)), max(1, round(cfg.border_band * W))
    for m in masks[nonempty]:
        labels, n = ndimage.label(m)
        if n > 1:
            sizes = np.bincount(labels.ravel())[1:]
            multi += int((sizes >= cfg.min_component * sizes.sum()).sum() > 1)
        edges = int(m[0].any()) + int(m[-1].any()) + int(m[:, 0].any()) + int(m[:, -1].any())
        inner = m[band_y:H - band_y, band_x:W - band_x]
        border += int(edges >= 3 or not inner.any())
    k = max(int(nonempty.sum()), 1)
    out["multi_fraction"] = multi / k
    out["border_fraction"] = border / k
    return out


def audio_stats(wav: np.ndarray, cfg: VerifyConfig) -> dict[str, float]:
    """RMS in dBFS and the fraction of clipped samples of a mono float waveform."""
    if wav.size == 0:
        return {"rms_db": -math.inf, "clipped_fraction": 0.0}
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    return {"rms_db": 20 * math.log10(max(rms, 1e-12)),
            "clipped_fraction": float((np.abs(wav) >= cfg.clip_level).mean())}


def failed_checks(v: dict, cfg: VerifyConfig) -> list[str]:
    """Names of the checks that `v` (measured values) fails."""
    bad = []
    if v["grounding_score"] < cfg.min_grounding_score or v["consistency"] < cfg.min_consistency:
        bad.append("grounding")
    if not cfg.min_area <= v["area"] <= cfg.max_area:
        bad.append("area")
    if v["stability"] < cfg.min_stability:
        bad.append("stability")
    if v["longest_empty_s"] > cfg.max_empty_run:
        bad.append("empty_run")
    if v["drift"] > cfg.max_drift:
        bad.append("drift")
    if v["multi_fraction"] > cfg.max_multi_fraction:
        bad.append("single")
    if v["border_fraction"] > 0.5:
        bad.append("border")
    if v["rms_db"] < cfg.min_rms_db:
        bad.append("silent")
    if v["clipped_fraction"] > cfg.max_clipped_fraction:
        bad.append("clipped")
    if abs(v["duration"] - v["expected_duration"]) > cfg.duration_tolerance or v["duration"] < cfg.min_duration:
        bad.append("duration")
    return bad


def verify_clip(root: Path, clip: dict, cfg: VerifyConfig) -> tuple[list[str], dict]:
    """(failed checks, measured values) of one clip (a row of clips.csv)."""
    cid = clip["id"]
    video = root / f"{cid}.mp4"
    mp4, js = mask_paths(root, cid)
    if not video.is_file() or not js.is_file():
        missing = "video" if not video.is_file() else "mask (run `saganet data masks`)"
        return ["files"], {"note": f"missing {missing}"}
    meta = read_mask_meta(js)
    raw = read_mask(MaskSpec(js), max_side=None)
    v: dict = {"grounding_score": float(meta.get("grounding_score", 0.0)),
               "consistency": float(meta.get("consistency", 0.0))}
    v.update(mask_stats(raw.frames, float(meta.get("fps", 25.0)), cfg))
    info = probe_video(video)
    v["duration"] = info.duration
    v["expected_duration"] = float(clip.get("duration") or info.duration)
    wav, _ = read_audio_window(video, 0.0, max(info.duration, 1e-3))
    v.update(audio_stats(wav.mean(0), cfg))
    return failed_checks(v, cfg), v


def read_table(path: str | os.PathLike) -> dict[str, dict]:
    p = Path(path)
    if not p.is_file():
        return {}
    with open(p, newline="", encoding="utf-8") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def write_table(path: str | os.PathLike, rows: dict[str, dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for cid in sorted(rows):
            w.writerow(rows[cid])


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def verify(root: str | os.PathLike, cfg: VerifyConfig | None = None, only: list[str] | None = None,
           quiet: bool = False) -> dict[str, dict]:
    """Verify every ingested clip of an SMS root; write and return the table (id -> row)."""
    root = Path(root)
    cfg = cfg or VerifyConfig()
    if (root / "metadata.tsv").is_file() and not (root / "metadata.csv").is_file():
        raise InputError(f"{root} is a URMP root: verify checks SMS (or own-clip) roots; the URMP test set is "
                         "curated per player by its metadata")
    clips = read_clip_table(root)
    if only is not None:
        clips = [c for c in clips if c["id"] in set(only)]
    table = read_table(root / TABLE_NAME)
    for c in tqdm(clips, desc="verify", unit="clip", disable=quiet):
        try:
            bad, values = verify_clip(root, c, cfg)
        except SaganetError as e:
            bad, values = ["files"], {"note": str(e).splitlines()[0]}
        old = table.get(c["id"], {})
        review = old.get("review", "")
        row = {"id": c["id"], "label": c["label"], "split": c["split"], "auto": "reject" if bad else "accept",
               "failed": ";".join(bad), "review": review, "note": values.pop("note", old.get("note", ""))}
        row["decision"] = review or row["auto"]
        row.update({k: _fmt(values[k]) for k in VALUE_COLUMNS if k in values})
        table[c["id"]] = row
    write_table(root / TABLE_NAME, table)
    n_acc = sum(r["decision"] == "accept" for r in table.values())
    log.info("verify: %d accepted, %d rejected", n_acc, len(table) - n_acc)
    return table


def accepted_ids(root: str | os.PathLike) -> set[str] | None:
    """Ids whose decision is accept, or None when the root has not been verified."""
    table = read_table(Path(root) / TABLE_NAME)
    if not table:
        return None
    return {k for k, r in table.items() if r.get("decision") == "accept"}


def config_from_overrides(pairs: list[str] | None) -> VerifyConfig:
    """`["min_area=0.01", ...]` -> VerifyConfig (CLI `--set`)."""
    base = asdict(VerifyConfig())
    for p in pairs or []:
        key, sep, value = p.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in base:
            raise InputError(f"bad verify setting '{p}': use NAME=VALUE with NAME one of {', '.join(base)}")
        try:
            base[key] = float(value)
        except ValueError as e:
            raise InputError(f"verify setting {key}: '{value}' is not a number") from e
    return VerifyConfig(**base)
