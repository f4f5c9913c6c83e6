"""Batch generation: a jobs file (JSONL or CSV) run job by job, resumable.

A job is finished when its output folder holds `run.json`; finished jobs are skipped on a rerun.
A failing job is recorded (in `<batch_out>/batch_failures.jsonl`, rewritten by every run) with its
one-line error and the batch goes on; a summary is returned at the end.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from saganet.errors import InputError, SaganetError

log = logging.getLogger(__name__)

# Columns a CSV row may carry; list-valued ones are separated by ';'.
LIST_FIELDS = ("masks", "names", "prompts")


@dataclass
class Job:
    """One generation: a video, its object masks and options; `output` is the job's own folder."""

    video: str
    masks: list[str]
    output: str
    names: list[str] = field(default_factory=list)
    prompt: str = ""
    negative_prompt: str = ""
    options: dict = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return (Path(self.output) / "run.json").is_file()


def _job_from_dict(d: dict, index: int, out_root: Path, base: Path) -> Job:
    d = {k: v for k, v in d.items() if v not in (None, "")}
    if "video" not in d:
        raise InputError(f"job {index}: no 'video' field; every job needs a video path")

    def as_list(v) -> list[str]:
        if v is None:
            return []
        return [s for s in (v.split(";") if isinstance(v, str) else list(v)) if s]

    def rel(p: str) -> str:
        return str(p if os.path.isabs(p) else (base / p))

    video = rel(d.pop("video"))
    masks = [rel(m) for m in as_list(d.pop("masks", d.pop("mask", None)))]
    names = as_list(d.pop("names", None))
    output = rel(d.pop("output")) if "output" in d else str(out_root / f"{index:05d}_{Path(video).stem}")
    return Job(video=video, masks=masks, output=output, names=names,
               prompt=d.pop("prompt", ""), negative_prompt=d.pop("negative_prompt", ""), options=d)


def read_jobs(path: str | os.PathLike, out_root: str | os.PathLike) -> list[Job]:
    """Read jobs from `.jsonl` (one JSON object per line) or `.csv` (header row). Paths are relative to the file."""
    path, out_root = Path(path), Path(out_root)
    if not path.is_file():
        raise InputError(f"jobs file not found: {path}")
    base = path.parent
    rows: list[dict] = []
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    else:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{i}: not valid JSON ({e.msg}); one JSON object per line") from e
    if not rows:
        raise InputError(f"jobs file {path} holds no job")
    return [_job_from_dict(r, i, out_root, base) for i, r in enumerate(rows)]


@dataclass
class BatchSummary:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)

    def line(self) -> str:
        return f"{self.done} done, {self.skipped} skipped (already finished), {len(self.failed)} failed"


def run_batch(jobs: list[Job], run_one: Callable[[Job], None], out_root: str | os.PathLike,
              quiet: bool = False) -> BatchSummary:
    """Run every unfinished job with `run_one`; record failures and go on."""
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    failures_file = out_root / "batch_failures.jsonl"
    failures_file.unlink(missing_ok=True)  # it lists the failures of this run (failed jobs are retried)
    summary = BatchSummary()
    for i, job in enumerate(tqdm(jobs, desc="jobs", disable=quiet)):
        if job.done:
            summary.skipped += 1
            continue
        try:
            run_one(job)
            summary.done += 1
        except SaganetError as e:
            msg = str(e)
            summary.failed.append((i, msg))
            log.error("job %d (%s) failed: %s", i, job.video, msg)
            with failures_file.open("a") as f:
                f.write(json.dumps({"job": i, "video": job.video, "error": msg}) + "\n")
    return summary


# Options a batch job may set for itself: field -> (request path, type). The command line gives the rest.
JOB_OPTIONS = {"seed": ("options.seed", int), "steps": ("options.steps", int), "cfg": ("options.cfg_strength", float),
               "sampler": ("options.sampler", str), "start": ("start", float), "duration": ("duration", float),
               "variant": ("variant", str)}


def apply_job_options(request, options: dict):
    """`request` (a `GenerateRequest`) with a job's own fields applied, type-checked exactly like the command
    line's; an unknown field or a wrong type fails the job instead of being ignored."""
    from dataclasses import replace

    top, opts = {}, {}
    for key, value in options.items():
        if key not in JOB_OPTIONS:
            raise InputError(f"unknown job field '{key}': a job may set video, masks, names, output, prompt, "
                             f"negative_prompt, {', '.join(JOB_OPTIONS)}")
        path, kind = JOB_OPTIONS[key]
        if kind is int and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)  # CSV cells are text
        elif kind is float and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        ok = (isinstance(value, kind) and not isinstance(value, bool)) or (kind is float and isinstance(value, int)
                                                                           and not isinstance(value, bool))
        if not ok:
            raise InputError(f"job field '{key}' must be {kind.__name__}, got {value!r}")
        (opts if path.startswith("options.") else top)[path.removeprefix("options.")] = (
            float(value) if kind is float else value)
    return replace(request, options=replace(request.options, **opts), **top)


def iter_failures(out_root: str | os.PathLike) -> Iterator[dict]:
    f = Path(out_root) / "batch_failures.jsonl"
    if f.is_file():
        for line in f.read_text().splitlines():
            yield json.loads(line)
