"""Writing a generation to an output folder: stems, mix, muxed video, run.json, committed as one unit.

Layout: `stem_<name>.flac|wav` per object, `mix.flac|wav`, `<video>_saganet.mp4` (original frames +
the mix; optionally each object's mask outlined), `run.json` (inputs, variant, options, timings).

Kill -9 safety. Every output is first written into a staging folder `.saganet-staging-<pid>-*` inside the
output folder. The commit then writes a journal (`.saganet-commit.json`, listing the files it moves),
removes an old `run.json`, renames the staged files into place, writes `run.json` (the completion record,
last) and deletes the journal. So:
- a folder with `run.json` is complete (batch runs skip it on resume);
- a run killed while generating or staging leaves only the staging folder of a dead process;
- a run killed inside the commit leaves the journal, naming exactly the files it had moved.
The next run into the folder (`check_output_dir`) removes both, plus stray temp files of atomic writes, so an
unfinished run is redone without `--overwrite`; files no journal names are never replaced without it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch

from saganet.errors import InputError
from saganet.io.atomic import atomic_write_text
from saganet.io.audio import write_audio
from saganet.io.masks import ObjectMask
from saganet.io.mux import MaskOverlay, mux_video_with_audio
from saganet.pipeline import GenerationResult

log = logging.getLogger(__name__)

PEAK_LIMIT = 0.99
COMPLETION = "run.json"
JOURNAL = ".saganet-commit.json"
STAGING_PREFIX = ".saganet-staging-"
# Temp files of `saganet.io.atomic.atomic_path` for our outputs: ".<stem>.<8 random chars><suffix>".
_ATOMIC_TEMP = re.compile(r"^\.(stem_.+|mix|run|.+_saganet|\.saganet-commit)\.[A-Za-z0-9_]{8}\.(flac|wav|mp4|json)$")


def mix_stems(stems: torch.Tensor, gains_db: list[float] | None = None) -> torch.Tensor:
    """`stems (n, L)` -> `(L,)`: sum with per-stem gain (dB, default 0); scaled down only if it would clip."""
    gains = torch.tensor(gains_db or [0.0] * len(stems), dtype=stems.dtype)
    mix = (stems * (10 ** (gains / 20))[:, None]).sum(0)
    peak = float(mix.abs().max()) if mix.numel() else 0.0
    return mix * (PEAK_LIMIT / peak) if peak > PEAK_LIMIT else mix


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "object"


def check_stem_names(names: list[str]) -> None:
    """Two objects whose names give the same stem file (`a b` and `a_b`, `a/b` and `a?b`) are refused."""
    seen: dict[str, str] = {}
    for n in names:
        key = safe_name(n).lower()  # case-insensitive file systems would merge `A` and `a` too
        if key in seen:
            first = seen[key]
            same = "are both named" if first == n else "both give"
            raise InputError(f"objects '{first}' and '{n}' {same} the stem file stem_{safe_name(n)}: "
                             "give each object a distinct name (--name / --object)")
        seen[key] = n


def output_paths(out_dir: Path, video: Path, names: list[str], fmt: str) -> dict[str, Path]:
    paths = {f"stem:{n}": out_dir / f"stem_{safe_name(n)}.{fmt}" for n in names}
    paths["mix"] = out_dir / f"mix.{fmt}"
    paths["video"] = out_dir / f"{video.stem}_saganet.mp4"
    paths["run"] = out_dir / COMPLETION
    return paths


def check_output_target(out_dir: str | os.PathLike) -> Path:
    """The output folder path must be non-empty and must not be an existing file."""
    text = str(out_dir)
    if not text.strip():
        raise InputError("output folder is empty: pass -o FOLDER")
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise InputError(f"output {p} is an existing file, not a folder: choose another -o")
    return p


def _writable_dir(out_dir: Path) -> None:
    """The folder, or the nearest existing folder above it that would hold it, must be writable."""
    probe = out_dir
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        why = "is a file" if probe.exists() and not probe.is_dir() else "is not writable"
        raise InputError(f"output folder {out_dir} is not writable ({probe} {why}): choose another -o")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(out_dir: str | os.PathLike) -> list[Path]:
    """Remove what killed runs left in `out_dir`: staging folders of dead processes, temp files of atomic
    writes, and the files of an interrupted commit (those its journal names, when `run.json` is missing).
    Returns the removed paths."""
    out = Path(out_dir)
    if not out.is_dir():
        return []
    removed: list[Path] = []
    for p in out.iterdir():
        if p.name.startswith(STAGING_PREFIX) and p.is_dir():
            m = re.match(rf"{re.escape(STAGING_PREFIX)}(\d+)-", p.name)
            if m and _pid_alive(int(m.group(1))):
                continue  # another live process is writing here
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
        elif _ATOMIC_TEMP.match(p.name) and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    journal = out / JOURNAL
    if journal.is_file():
        try:
            record = json.loads(journal.read_text())
            listed, pid = list(record.get("files", [])), int(record.get("pid", 0))
        except (OSError, ValueError, TypeError, AttributeError):
            listed, pid = [], 0
        if pid and pid != os.getpid() and _pid_alive(pid):
            return removed  # another live process is committing into this folder right now
        if not (out / COMPLETION).is_file():  # the commit did not finish: its files are partial results
            for name in listed:
                f = out / Path(str(name)).name  # names only, never a path outside the folder
                if f.is_file() and f.name != JOURNAL:
                    f.unlink()
                    removed.append(f)
        journal.unlink(missing_ok=True)
        removed.append(journal)
    if removed:
        log.info("removed %d file(s) left by an interrupted run in %s", len(removed), out)
    return removed


def check_output_dir(out_dir: Path, planned: list[Path], inputs: list[Path], overwrite: bool) -> None:
    """Fail before any work if the folder is a file or not writable, outputs exist (without overwrite) or
    hit inputs. Leftovers of killed runs are removed first (see the module docstring); nothing is created."""
    out_dir = check_output_target(out_dir)
    _writable_dir(out_dir)
    resolved_inputs = {p.resolve() for p in inputs}
    for p in planned:
        if p.resolve() in resolved_inputs:
            raise InputError(f"output {p} would overwrite an input: choose another output folder")
    clean_stale(out_dir)
    existing = [p.name for p in planned if p.exists()]
    if existing and not overwrite:
        raise InputError(f"{out_dir} already holds {', '.join(existing[:3])}: pass --overwrite or choose another -o")


def commit_outputs(stage: Path, out_dir: Path, names: list[str], run_info_text: str) -> None:
    """Move the staged files `names` into `out_dir`, then write `run.json` (see the module docstring)."""
    atomic_write_text(out_dir / JOURNAL, json.dumps({"pid": os.getpid(), "files": [*names, COMPLETION]}))
    (out_dir / COMPLETION).unlink(missing_ok=True)  # an overwritten run is incomplete until the new record
    for n in names:
        os.replace(stage / n, out_dir / n)
    atomic_write_text(out_dir / COMPLETION, run_info_text)
    (out_dir / JOURNAL).unlink(missing_ok=True)


def write_outputs(result: GenerationResult, video_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                  fmt: str = "flac", gains_db: list[float] | None = None, masks: list[ObjectMask] | None = None,
                  overlay_masks: bool = False, write_video: bool = True, run_info: dict | None = None,
                  start: float = 0.0, overwrite: bool = True, inputs: list[Path] | None = None) -> dict[str, Path]:
    """Write stems, mix, mp4 and run.json for `result` as one commit; returns the written paths.

    With `overwrite=False` the outputs are checked again just before the commit (another run may have
    written them meanwhile)."""
    out, video = Path(out_dir), Path(video_path)
    check_stem_names(result.names)
    paths = output_paths(out, video, result.names, fmt)
    if not write_video:
        paths.pop("video")
    files = [p for k, p in paths.items() if k != "run"]
    if not overwrite:
        check_output_dir(out, list(paths.values()), list(inputs or []), overwrite=False)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out))
    committed = False
    try:
        staged = {k: stage / p.name for k, p in paths.items()}
        for name, stem in zip(result.names, result.stems):
            write_audio(staged[f"stem:{name}"], stem, result.sample_rate)
        mix = mix_stems(result.stems, gains_db)
        write_audio(staged["mix"], mix, result.sample_rate)
        if write_video:
            overlays = None
            if overlay_masks and masks:
                overlays = [MaskOverlay(o.raw.frames, o.raw.times, name=o.name) for o in masks if o.raw is not None]
            mux_video_with_audio(video, mix, result.sample_rate, staged["video"], overlays=overlays, start=start)
        info = {**(run_info or {}), "objects": result.names, "prompts": result.prompts, "duration": result.duration,
                "sample_rate": result.sample_rate, "timings": {k: round(v, 3) for k, v in result.timings.items()},
                "outputs": {k: p.name for k, p in paths.items() if k != "run"}}
        commit_outputs(stage, out, [p.name for p in files], json.dumps(info, indent=2, default=str))
        committed = True
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not committed and not any(out.iterdir()):
            out.rmdir()  # a failed write leaves no empty folder behind
    return paths
