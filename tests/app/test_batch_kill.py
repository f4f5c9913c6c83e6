"""kill -9 of a batch run at a random point and then while a job writes its outputs, then a rerun to the end: every job complete and right, the
jobs finished before the last rerun not redone, no temp file or staging folder left anywhere (issue 17)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from app_media import TOY

N_JOBS = 4


def start_batch(jobs: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "saganet.app.cli", "generate", "--batch", str(jobs), *TOY,
                             "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})


def kill_at_random(proc: subprocess.Popen, out: Path, rng: random.Random, while_writing: bool = False) -> str:
    """SIGKILL once a job of this run has started writing (a new job folder appears), after a random delay;
    or, `while_writing`, as soon as a job is writing its outputs (a staging folder exists)."""
    before = {p.name for p in out.iterdir()} if out.exists() else set()
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < 180:
        if while_writing and any(out.glob("*/.saganet-staging-*")):
            break
        if not while_writing and out.exists() and any(p.is_dir() and p.name not in before for p in out.iterdir()):
            break
        time.sleep(0.005)
    delay = 0.0 if while_writing else rng.uniform(0.0, 2.5)
    time.sleep(delay)
    finished = proc.poll() is not None
    if not finished:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.name.startswith(".")) if out.exists() else []
    done = sorted(p.parent.name for p in out.glob("*/run.json")) if out.exists() else []
    return (f"killed after {delay:.2f} s with {done} finished, leaving {left}" if not finished
            else "finished before the kill")


def job_files(d: Path) -> set[str]:
    return {p.name for p in d.iterdir()}


@pytest.mark.slow
def test_kill_minus_9_anywhere_then_rerun_completes_every_job_once(toy_media, tmp_path):
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"video": str(toy_media["video"]), "masks": [str(toy_media["masks"][i % 3])],
                                        "names": [f"obj{i}"], "seed": 100 + i}) + "\n" for i in range(N_JOBS)))
    out = tmp_path / "out"
    history = []
    for while_writing in (False, True):
        history.append(kill_at_random(start_batch(jobs, out), out, rng, while_writing))
    print("\n".join(history))
    done_before = {d.name: (d / "run.json").stat().st_mtime_ns for d in out.iterdir()
                   if d.is_dir() and (d / "run.json").is_file()}

    proc = start_batch(jobs, out)
    stdout, stderr = proc.communicate(timeout=600)
    context = f"seed {seed}, {history}, finished before the rerun: {sorted(done_before)}\n{stderr}"
    assert proc.returncode == 0, context
    assert f"batch: {N_JOBS - len(done_before)} done, {len(done_before)} skipped (already finished), 0 failed" \
        in stdout, context + stdout

    job_dirs = sorted(d for d in out.iterdir() if d.is_dir())
    assert [d.name for d in job_dirs] == [f"{i:05d}_scene" for i in range(N_JOBS)], context
    for i, d in enumerate(job_dirs):
        assert job_files(d) == {f"stem_obj{i}.flac", "mix.flac", "scene_saganet.mp4", "run.json"}, context
        run = json.loads((d / "run.json").read_text())
        assert run["objects"] == [f"obj{i}"] and run["options"]["seed"] == 100 + i, context
        if d.name in done_before:  # finished jobs are never redone
            assert (d / "run.json").stat().st_mtime_ns == done_before[d.name], context
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".")]
    assert leftovers == [], context
    assert not (out / "batch_failures.jsonl").exists()
