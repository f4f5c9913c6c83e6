"""`saganet data ingest`: metadata + raw source folders -> clips in the reference layout (RN-45).

SMS: for each metadata row, look for `{YTID}.mp4` anywhere under the subset's raw folder (MUSIC21, Solos or
AVSBench) and cut `[start_msec, end_msec)` to `{root}/{label}/{YTID}_{start}_{end}.mp4`; else look for the
already-cut `{filename}.mp4` and copy it to `{root}/{label}/{filename}.mp4` (what the reference does).
URMP: for each window, copy `{piece}/Vid_..._{s}_{e}.mp4` if it exists, else cut it from the performance
video `Vid_...mp4` (last two `_` fields stripped); each player's `AuSep_*` stem is cut to the same window
(`{root}/{piece}/AuSep_..._{s}_{e}.wav`).
Your own clips (`folder`): every video under a folder, labelled by its sub-folder, re-encoded whole into the SMS
layout, with a `{stem}_mask.mp4` found beside it copied to the mask location (see `plan_folder`).

Resumable and safe: a JSONL manifest (`{root}/ingest_manifest.jsonl`) records each clip as done or failed
with the reason; a re-run skips done clips, retries failed ones, removes temporaries of killed runs and
never overwrites an existing output (an output already there is kept and recorded as done). Clips are cut
in `workers` processes (`concurrent.futures`, spawn: no forked torch state); only the parent writes the
manifest. Missing sources are listed at the end. The root also gets a copy of the metadata and `clips.csv`
(id, kind, label, split, subset, start/end ms, duration) of the clips that are done.
"""

from __future__ import annotations

import csv
import logging
import multiprocessing
import os
import shutil
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from saganet.data.cut import CutOptions, copy_clip, cut_audio, cut_clip
from saganet.data.manifest import DONE, FAILED, Manifest, remove_stale_temps
from saganet.data.metadata import (
    read_sms_metadata,
    read_urmp_metadata,
    strip_window,
)
from saganet.errors import InputError, SaganetError
from saganet.io.atomic import atomic_path

log = logging.getLogger(__name__)

MANIFEST_NAME = "ingest_manifest.jsonl"
CLIPS_NAME = "clips.csv"
CLIP_COLUMNS = ("id", "kind", "label", "split", "subset", "start_ms", "end_ms", "duration")


@dataclass
class IngestJob:
    """One output clip (and, for URMP, its players' stems) and where its sources are."""

    clip_id: str  # path under the root without ".mp4"
    kind: str  # sms | urmp
    label: str
    split: str
    subset: str
    start_ms: int
    end_ms: int
    source: str | None = None
    action: str = "cut"  # cut | copy
    stems: list[dict] = field(default_factory=list)  # {"id", "source", "action"}
    missing: list[str] = field(default_factory=list)
    mask: str | None = None  # a mask video supplied with the clip (folder kind), copied next to it

    def outputs(self, root: Path) -> list[Path]:
        out = [root / f"{self.clip_id}.mp4", *(root / f"{s['id']}.wav" for s in self.stems)]
        return out + ([provided_mask_path(root, self.clip_id)] if self.mask else [])


def provided_mask_path(root: Path, clip_id: str) -> Path:
    """Where a supplied mask goes: the SMS mask location `{root}/{label}/{stem}/{stem}_mask.mp4`."""
    stem = clip_id.split("/")[-1]
    return root / clip_id / f"{stem}_mask.mp4"


@dataclass
class IngestReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # one line per missing source

    def summary(self) -> str:
        return (f"{len(self.done)} cut, {len(self.skipped)} already done, {len(self.failed)} failed "
                f"({len(self.missing)} missing source(s))")


class SourceIndex:
    """Every file with one of `suffixes` under a folder, by file name (one walk instead of a glob per clip)."""

    def __init__(self, root: str | os.PathLike | None, suffixes: tuple[str, ...] = (".mp4",)) -> None:
        root = Path(root) if root is not None else None
        self.root = root
        self.files: dict[str, Path] = {}
        if root is None:
            return
        if not root.is_dir():
            raise InputError(f"raw source folder not found: {root}: check the path")
        dup = 0
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames.sort()
            for name in sorted(filenames):
                if name.lower().endswith(suffixes) and not name.startswith("."):
                    if name in self.files:
                        dup += 1
                        continue
                    self.files[name] = Path(dirpath) / name
        if dup:
            log.warning("%s: %d duplicate file name(s); the first in sorted order is used", root, dup)

    def find(self, name: str) -> Path | None:
        return self.files.get(name)


# ------------------------------------------------------------------------------------------------ planning


def plan_sms(metadata: Path, sources: dict[str, Path | None]) -> list[IngestJob]:
    """Jobs for SMS: `sources` maps subset (music21 | solos | avs-semantic) to its raw folder (or None)."""
    rows = read_sms_metadata(metadata)
    indexes = {k: SourceIndex(v) for k, v in sources.items()}
    jobs, seen = [], set()
    for r in rows:
        idx = indexes.get(r.subset) or SourceIndex(None)
        long_src = idx.find(f"{r.ytid}.mp4")
        short_src = idx.find(f"{r.filename}.mp4") if r.filename else None
        if long_src is not None:
            stem, src, action = r.cut_stem, long_src, "cut"
        elif short_src is not None:
            stem, src, action = r.filename, short_src, "copy"
        else:
            stem, src, action = r.cut_stem, None, "cut"
        job = IngestJob(f"{r.label}/{stem}", "sms", r.label, r.split, r.subset, r.start_ms, r.end_ms,
                        str(src) if src else None, action)
        if src is None:
            where = sources.get(r.subset)
            names = f"{r.ytid}.mp4" + (f" or {r.filename}.mp4" if r.filename else "")
            job.missing.append(f"{r.subset} ({where or 'no folder given'}): {names}")
        if job.clip_id in seen:
            log.warning("metadata lists %s twice; it is cut once", job.clip_id)
            continue
        seen.add(job.clip_id)
        jobs.append(job)
    return jobs


def plan_urmp(metadata: Path, source: Path | None) -> list[IngestJob]:
    """Jobs for URMP: one per window (mixture video), with one stem per player row."""
    rows = read_urmp_metadata(metadata)
    idx = SourceIndex(source, (".mp4", ".wav", ".flac"))
    by_video: dict[str, list] = defaultdict(list)
    for r in rows:
        by_video[r.video_id].append(r)
    jobs = []
    for vid, players in by_video.items():
        r0 = players[0]
        name = vid.split("/")[-1]
        job = IngestJob(vid, "urmp", "+".join(p.label for p in players), "test", "urmp", r0.start_ms, r0.end_ms)
        pre, full = idx.find(f"{name}.mp4"), idx.find(f"{strip_window(name)}.mp4")
        if pre is not None:
            job.source, job.action = str(pre), "copy"
        elif full is not None:
            job.source, job.action = str(full), "cut"
        else:
            job.missing.append(f"urmp ({source or 'no folder given'}): {name}.mp4 or {strip_window(name)}.mp4")
        for p in players:
            aname = p.audio_id.split("/")[-1]
            pre_a = idx.find(f"{aname}.wav")
            full_a = idx.find(f"{strip_window(aname)}.wav") or idx.find(f"{strip_window(aname)}.flac")
            stem = {"id": p.audio_id, "source": None, "action": "cut"}
            if pre_a is not None:
                stem.update(source=str(pre_a), action="copy")
            elif full_a is not None:
                stem.update(source=str(full_a))
            else:
                job.missing.append(f"urmp ({source or 'no folder given'}): {aname}.wav or {strip_window(aname)}.wav")
            job.stems.append(stem)
        jobs.append(job)
    return jobs


VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")


def plan_folder(folder: Path, val_fraction: float = 0.1) -> list[IngestJob]:
    """Jobs for your own clips: every video under `folder` (not `*_mask.*`), label = its first sub-folder's
    name (`clip` at the top level), the whole clip re-encoded to mp4; a `{stem}_mask.mp4` beside a video is
    taken as its mask. The split is `val` for a stable `val_fraction` of the clips (hash of the id)."""
    import zlib

    from saganet.io.video import probe_video

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"clip folder not found: {folder}: pass a folder of videos")
    if not 0 <= val_fraction < 1:
        raise InputError(f"bad validation fraction {val_fraction}: use a number in [0, 1)")
    jobs = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in VIDEO_SUFFIXES or p.stem.endswith("_mask") \
                or p.name.startswith("."):
            continue
        rel = p.relative_to(folder)
        label = rel.parts[0] if len(rel.parts) > 1 else "clip"
        cid = f"{label}/{p.stem}"
        job = IngestJob(cid, "folder", label, "train", "folder", 0, 0, str(p), "cut")
        try:
            job.end_ms = int(probe_video(p).duration * 1000)
        except SaganetError as e:
            job.missing.append(f"{p}: {str(e).splitlines()[0]}")
        if (zlib.crc32(cid.encode()) % 1000) / 1000 < val_fraction:
            job.split = "val"
        mask = p.with_name(f"{p.stem}_mask.mp4")
        job.mask = str(mask) if mask.is_file() else None
        jobs.append(job)
    if not jobs:
        raise InputError(f"no videos under {folder} ({', '.join(VIDEO_SUFFIXES)})")
    return jobs


# ------------------------------------------------------------------------------------------------ running


def run_job(job: dict, root: str, opts: dict) -> dict:
    """Produce the missing outputs of one job (in a worker process). Never overwrites an existing file."""
    j = IngestJob(**job)
    rootp = Path(root)
    start, end = j.start_ms / 1000.0, j.end_ms / 1000.0
    made = []
    try:
        if j.missing:
            prefix = "unreadable source: " if j.kind == "folder" else "missing source: "
            return {"status": FAILED, "reason": prefix + "; ".join(j.missing)}
        dest = rootp / f"{j.clip_id}.mp4"
        info: dict = {}
        if not dest.exists():
            info = copy_clip(j.source, dest) if j.action == "copy" else cut_clip(j.source, dest, start, end,
                                                                                 CutOptions(**opts))
            made.append(str(dest))
        if j.mask and not provided_mask_path(rootp, j.clip_id).exists():
            copy_clip(j.mask, provided_mask_path(rootp, j.clip_id))
            made.append("mask")
        for s in j.stems:
            sdest = rootp / f"{s['id']}.wav"
            if sdest.exists():
                continue
            if s["action"] == "copy":
                copy_clip(s["source"], sdest)
            else:
                cut_audio(s["source"], sdest, start, end)
            made.append(str(sdest))
        return {"status": DONE, "reason": "" if made else "existing output kept", "info": info}
    except SaganetError as e:
        return {"status": FAILED, "reason": str(e).splitlines()[0]}
    except OSError as e:
        return {"status": FAILED, "reason": f"{e.strerror or e} ({e.filename})"}


def _copy_metadata(metadata: Path, root: Path, name: str) -> None:
    dest = root / name
    if not dest.exists():
        with atomic_path(dest) as tmp:
            shutil.copyfile(metadata, tmp)


def write_clip_table(root: Path, jobs: list[IngestJob], manifest: Manifest) -> Path:
    done = manifest.done()
    path = root / CLIPS_NAME
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CLIP_COLUMNS)
        for j in jobs:
            if j.clip_id in done:
                w.writerow([j.clip_id, j.kind, j.label, j.split, j.subset, j.start_ms, j.end_ms,
                            f"{(j.end_ms - j.start_ms) / 1000:.3f}"])
    return path


def read_clip_table(root: str | os.PathLike) -> list[dict]:
    path = Path(root) / CLIPS_NAME
    if not path.is_file():
        raise InputError(f"{path} not found: run `saganet data ingest` for this root first")
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def ingest(kind: str, metadata: str | os.PathLike, root: str | os.PathLike, sources: dict[str, Path | None],
           workers: int = 2, opts: CutOptions | None = None, limit: int | None = None,
           quiet: bool = False, val_fraction: float = 0.1) -> IngestReport:
    """Cut every clip of `metadata` (kind `sms` or `urmp`) into `root`; resumable (see the module docstring).

    Kind `folder`: `metadata` is a folder of your own videos (see `plan_folder`), for fine-tuning sets."""
    metadata, root = Path(metadata), Path(root)
    if kind == "sms":
        jobs = plan_sms(metadata, sources)
    elif kind == "urmp":
        jobs = plan_urmp(metadata, sources.get("urmp"))
    elif kind == "folder":
        jobs = plan_folder(metadata, val_fraction)
    else:
        raise InputError(f"unknown dataset kind '{kind}': use sms, urmp or folder")
    if limit is not None:
        jobs = jobs[:limit]
    root.mkdir(parents=True, exist_ok=True)
    if kind != "folder":
        _copy_metadata(metadata, root, "metadata.tsv" if kind == "urmp" else "metadata.csv")
    manifest = Manifest(root / MANIFEST_NAME)
    remove_stale_temps(p for j in jobs for p in j.outputs(root))
    report = IngestReport()
    todo = []
    for j in jobs:
        if manifest.status(j.clip_id) == DONE and all(p.exists() for p in j.outputs(root)):
            report.skipped.append(j.clip_id)
        else:
            todo.append(j)
    bar = tqdm(total=len(todo), desc=f"ingest {kind}", unit="clip", disable=quiet)

    def finish(j: IngestJob, res: dict) -> None:
        manifest.record(j.clip_id, res["status"], res.get("reason", ""), kind=j.kind, info=res.get("info", {}))
        if res["status"] == DONE:
            report.done.append(j.clip_id)
        else:
            report.failed[j.clip_id] = res.get("reason", "")
            report.missing.extend(j.missing)
        bar.update(1)

    opt = asdict(opts or CutOptions())
    try:
        if workers <= 1:
            for j in todo:
                finish(j, run_job(asdict(j), str(root), opt))
        else:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                pending: dict[Future, IngestJob] = {}
                queue = list(todo)
                while queue or pending:
                    while queue and len(pending) < 2 * workers:  # bounded queue: a kill loses little
                        j = queue.pop(0)
                        pending[pool.submit(run_job, asdict(j), str(root), opt)] = j
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        finish(pending.pop(fut), fut.result())
    finally:
        bar.close()
        write_clip_table(root, jobs, manifest)
    if report.missing:
        log.warning("%d missing source(s):\n  %s", len(report.missing), "\n  ".join(report.missing))
    log.info("ingest %s: %s", kind, report.summary())
    return report
