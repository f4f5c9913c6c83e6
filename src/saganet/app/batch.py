"""Batch generation: a jobs file (JSONL or CSV) run job by job, resumable after a kill at any point.

A job is finished when its output folder holds `run.json`, the completion record its commit writes last
(`saganet.app.outputs`); finished jobs are skipped on a rerun, unfinished ones are redone (what a killed run
left is removed first, no `--overwrite` needed).

A JSONL line: `{"video": "clip.mp4", "masks": ["violin.mp4"], "names": ["violin"], "seed": 3}`; objects may
also come from prompts, segmented first: `"objects": [["point", "40,52"], ["object", "drum"], ["text", "drum"]]`
(with `"segmenter"`), and mix gains from `"gains": {"violin": -6}`. CSV columns carry the same fields
(';'-separated lists, `kind=value` prompts, `name=dB` gains).

Every job is checked before any is run, exactly as a command line is (`job_request` builds the same
`GenerateRequest` and `apply_job_options` type-checks the job's own fields): a line that is not a JSON object,
a field of the wrong type, a bad number. A bad job is recorded as failed with its one-line reason (in
`<batch_out>/batch_failures.jsonl`, rewritten by every run) and the batch goes on; a summary is returned at
the end. Two jobs writing to the same folder are refused before anything runs.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from saganet.errors import InputError, SaganetError
from saganet.io.atomic import atomic_write_text

log = logging.getLogger(__name__)

# Fields of a job besides its options (JOB_OPTIONS); list-valued ones are ';'-separated in CSV.
LIST_FIELDS = ("masks", "names", "selects")
TEXT_FIELDS = ("video", "output", "prompt", "negative_prompt")


@dataclass
class Job:
    """One generation: a video, its object masks and options; `output` is the job's own folder.

    `error` is set for a line that could not be read as a job (it is recorded as failed, never run)."""

    video: str
    masks: list[str]
    output: str
    names: list[str] = field(default_factory=list)
    prompt: str = ""
    negative_prompt: str = ""
    options: dict = field(default_factory=dict)
    selects: list[str] = field(default_factory=list)
    objects: list[tuple[str, str]] = field(default_factory=list)  # segmentation prompts, as on the command line
    gains: dict = field(default_factory=dict)  # object name -> dB
    error: str | None = None
    line: int | None = None  # line (JSONL) or row (CSV) number in the jobs file

    @property
    def done(self) -> bool:
        from saganet.app.outputs import COMPLETION

        return self.error is None and (Path(self.output) / COMPLETION).is_file()


def _as_list(v, key: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [s.strip() for s in v.split(";") if s.strip()]
    if isinstance(v, list) and all(isinstance(s, str) for s in v):
        return [s for s in v if s.strip()]
    raise InputError(f"job field '{key}' must be a list of text (or ';'-separated text), got {v!r}")


def _job_from_dict(d, index: int, out_root: Path, base: Path) -> Job:
    if not isinstance(d, dict):
        raise InputError(f'a job must be a JSON object such as {{"video": "clip.mp4", "masks": [...]}}, '
                         f"got {json.dumps(d)[:60]}")
    if None in d:  # csv.DictReader puts the cells past the header under the key None
        raise InputError("the row has more cells than the header has columns")
    d = {k: v for k, v in d.items() if v not in (None, "")}
    if "video" not in d:
        raise InputError("no 'video' field; every job needs a video path")
    for key in TEXT_FIELDS:
        if key in d and (not isinstance(d[key], str) or not d[key].strip()):
            raise InputError(f"job field '{key}' must be non-empty text, got {d[key]!r}")
    if "mask" in d and "masks" in d:
        raise InputError("give either 'mask' or 'masks', not both")

    def rel(p: str) -> str:
        return str(p if os.path.isabs(p) else (base / p))

    video = rel(d.pop("video"))
    masks = [rel(m) for m in _as_list(d.pop("masks", d.pop("mask", None)), "masks")]
    names = _as_list(d.pop("names", None), "names")
    selects = _as_list(d.pop("selects", None), "selects")
    output = rel(d.pop("output")) if "output" in d else str(out_root / f"{index:05d}_{Path(video).stem}")
    return Job(video=video, masks=masks, output=output, names=names, prompt=d.pop("prompt", ""),
               negative_prompt=d.pop("negative_prompt", ""), selects=selects,
               objects=_prompt_pairs(d.pop("objects", None)), gains=_gains(d.pop("gains", None)), options=d)


def _prompt_pairs(v) -> list[tuple[str, str]]:
    """'objects': [["point", "40,52"], ["object", "drum"], ["text", "drum"]] (a CSV cell: 'point=40,52;text=drum')."""
    if v is None:
        return []
    if isinstance(v, str):
        items = [tuple(x.split("=", 1)) for x in v.split(";") if x.strip()]
    else:
        items = v if isinstance(v, list) else [None]
    if not all(isinstance(x, (list, tuple)) and len(x) == 2 and all(isinstance(y, str) for y in x) for x in items):
        raise InputError(f"job field 'objects' must be a list of [kind, value] text pairs such as "
                         f'[["point", "40,52"], ["text", "violin"]], got {v!r}')
    return [(k.strip(), val.strip()) for k, val in items]


def _gains(v) -> dict:
    """'gains': {"violin": -6} (a CSV cell: 'violin=-6;drum=3'); numbers are checked by the request."""
    if v is None:
        return {}
    if isinstance(v, str):
        pairs = [x.split("=", 1) for x in v.split(";") if x.strip()]
        if not all(len(x) == 2 for x in pairs):
            raise InputError(f"job field 'gains' must look like 'name=dB;name=dB', got {v!r}")
        return {k.strip(): _convert(g, float) for k, g in pairs}
    if not isinstance(v, dict):
        raise InputError(f'job field \'gains\' must map object names to dB, e.g. {{"violin": -6}}, got {v!r}')
    return dict(v)


def read_jobs(path: str | os.PathLike, out_root: str | os.PathLike) -> list[Job]:
    """Read jobs from `.jsonl` (one JSON object per line) or `.csv` (header row). Paths are relative to the file.

    A line that is not a valid job gives a `Job` with `error` set (recorded as failed by `run_batch`); a
    missing or empty file, and two jobs with the same output folder, are an `InputError`.
    """
    path, out_root = Path(path), Path(out_root)
    if not path.is_file():
        raise InputError(f"jobs file not found: {path}")
    base = path.parent
    rows: list[tuple[int, object]] = []  # (line number, parsed row or an InputError)
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="") as f:
                rows = [(i + 2, r) for i, r in enumerate(csv.DictReader(f))]
        else:
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                try:
                    rows.append((i, json.loads(line)))
                except json.JSONDecodeError as e:
                    rows.append((i, InputError(f"not valid JSON ({e.msg}); one JSON object per line")))
    except (UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"cannot read jobs file {path} ({str(e).splitlines()[0]}): use UTF-8 JSONL or CSV") from e
    if not rows:
        raise InputError(f"jobs file {path} holds no job")
    jobs = []
    for index, (line, row) in enumerate(rows):
        try:
            if isinstance(row, InputError):
                raise row
            job = _job_from_dict(row, index, out_root, base)
        except InputError as e:
            job = Job(video="", masks=[], output="", error=f"{path.name}:{line}: {e}")
        job.line = line
        jobs.append(job)
    check_distinct_outputs(jobs)
    return jobs


def check_distinct_outputs(jobs: list[Job]) -> None:
    """Two jobs writing to one folder would make the second look finished (or collide): refused up front."""
    seen: dict[str, int] = {}
    for i, job in enumerate(jobs):
        if job.error is not None:
            continue
        key = os.path.normcase(os.path.abspath(job.output))
        if key in seen:
            raise InputError(f"jobs {seen[key]} and {i} both write to {job.output}: give each job its own 'output'")
        seen[key] = i


@dataclass
class BatchSummary:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)

    def line(self) -> str:
        return f"{self.done} done, {self.skipped} skipped (already finished), {len(self.failed)} failed"


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def run_batch(jobs: list[Job], run_one: Callable[[Job], None], out_root: str | os.PathLike,
              quiet: bool = False, check: Callable[[Job], None] | None = None) -> BatchSummary:
    """Run every unfinished job with `run_one`; record failures and go on.

    `check(job)` validates a job without running it; it is called for every unfinished job before the first
    one runs, so bad jobs fail before any model is loaded. A job raising anything but a `SaganetError` is a
    bug: it is logged with its traceback and recorded as failed, and the batch goes on.
    """
    from saganet.app.outputs import clean_stale

    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    failures_file = out_root / "batch_failures.jsonl"
    failures_file.unlink(missing_ok=True)  # it lists the failures of this run (failed jobs are retried)
    for stale in out_root.glob(".batch_failures.*.jsonl"):  # temp files of a run killed while recording
        stale.unlink(missing_ok=True)
    records: list[dict] = []
    summary = BatchSummary()

    def fail(i: int, job: Job, msg: str) -> None:
        summary.failed.append((i, msg))
        log.info("job %d (%s) failed: %s", i, job.video or f"line {job.line}", msg)
        records.append({"job": i, "line": job.line, "video": job.video, "error": msg})
        records.sort(key=lambda r: r["job"])
        atomic_write_text(failures_file, "".join(json.dumps(r) + "\n" for r in records))

    todo: list[tuple[int, Job]] = []
    for i, job in enumerate(jobs):
        if job.error is not None:
            fail(i, job, job.error)
        elif job.done:
            clean_stale(job.output)  # a commit killed after its run.json leaves its journal
            summary.skipped += 1
        else:
            try:
                if check is not None:
                    check(job)
                todo.append((i, job))
            except SaganetError as e:
                fail(i, job, _one_line(e))
    for i, job in tqdm(todo, desc="jobs", disable=quiet):
        try:
            run_one(job)
            summary.done += 1
        except SaganetError as e:
            fail(i, job, _one_line(e))
        except OSError as e:  # disk full, permissions, vanished files
            fail(i, job, f"{e.strerror or e}{f' ({e.filename})' if e.filename else ''}")
        except Exception as e:  # a bug: keep the traceback in the log, keep the batch going
            log.error("job %d (%s) crashed", i, job.video, exc_info=True)
            fail(i, job, f"internal error ({type(e).__name__}: {_one_line(e)}); please report it")
    summary.failed.sort()
    return summary


# Options a batch job may set for itself: field -> (request path, type). The command line gives the rest.
JOB_OPTIONS = {"seed": ("options.seed", int), "steps": ("options.steps", int), "cfg": ("options.cfg_strength", float),
               "sampler": ("options.sampler", str), "start": ("start", float), "duration": ("duration", float),
               "variant": ("variant", str), "segmenter": ("segmenter", str)}


def _convert(value, kind: type):
    """CSV cells are text: '4' -> 4 for int fields, '2.5' / 'nan' -> float for float fields."""
    if isinstance(value, str) and kind is int:
        t = value.strip()
        if t.lstrip("+-").isdigit():
            return int(t)
    elif isinstance(value, str) and kind is float:
        try:
            return float(value)
        except ValueError:
            return value
    return value


def apply_job_options(request, options: dict):
    """`request` (a `GenerateRequest`) with a job's own fields applied, type-checked exactly like the command
    line's; an unknown field or a wrong type fails the job instead of being ignored. Ranges are then checked
    by `GenerateRequest.validate()`, as for the command line."""
    top, opts = {}, {}
    for key, value in options.items():
        if key not in JOB_OPTIONS:
            raise InputError(f"unknown job field '{key}': a job may set video, masks, names, selects, objects, "
                             f"gains, output, prompt, negative_prompt, {', '.join(JOB_OPTIONS)}")
        path, kind = JOB_OPTIONS[key]
        value = _convert(value, kind)
        ok = (isinstance(value, kind) and not isinstance(value, bool)) or (kind is float and isinstance(value, int)
                                                                           and not isinstance(value, bool))
        if not ok:
            raise InputError(f"job field '{key}' must be {'a number' if kind is float else kind.__name__}, "
                             f"got {value!r}")
        (opts if path.startswith("options.") else top)[path.removeprefix("options.")] = (
            float(value) if kind is float else value)
    return replace(request, options=replace(request.options, **opts), **top)


def job_request(base, job: Job):
    """The `GenerateRequest` of `job`: the command line's request (`base`) with the job's inputs, output,
    prompts and own fields; validated like a command line (InputError if not)."""
    from saganet.app.generate import mask_specs

    if job.error is not None:
        raise InputError(job.error)
    opts = replace(base.options, prompt=job.prompt or base.options.prompt,
                   negative_prompt=job.negative_prompt or base.options.negative_prompt)
    req = replace(base, video=job.video, output=job.output, masks=mask_specs(job.masks, job.selects, job.names),
                  options=opts, segment_prompts=list(job.objects), gains_db={**base.gains_db, **job.gains})
    req = apply_job_options(req, job.options)
    req.validate()
    return req


def iter_failures(out_root: str | os.PathLike) -> Iterator[dict]:
    f = Path(out_root) / "batch_failures.jsonl"
    if f.is_file():
        for line in f.read_text().splitlines():
            if line.strip():
                yield json.loads(line)
