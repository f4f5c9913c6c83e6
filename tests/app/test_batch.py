"""`saganet generate --batch JOBS -o OUT`: JSONL and CSV jobs, failures recorded, the rest goes on, resume.

A batch with failed jobs prints its summary on stdout and exits 2 with ONE stderr line `saganet: error:`
naming the failures file and the first failure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from saganet.app.batch import Job, iter_failures, read_jobs, run_batch
from saganet.app.cli import main
from saganet.errors import InputError
from saganet.io.writers import write_mask_video, write_video

TINY = ("--variant", "tiny", "--steps", "1", "-q")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    """A folder with a 1.2 s 48x64 video and two object masks (top-left and bottom-right)."""
    d = tmp_path_factory.mktemp("batch_media")
    write_video(d / "clip.mp4", np.random.default_rng(0).integers(0, 255, (30, 48, 64, 3), dtype=np.uint8), 25)
    a = np.zeros((30, 48, 64), bool)
    a[:, :24, :32] = True
    write_mask_video(d / "a.mp4", a, 25)
    write_mask_video(d / "b.mp4", a[:, ::-1, ::-1].copy(), 25)
    return d


def jobs_dir(media: Path, tmp_path: Path) -> Path:
    """The media next to the jobs file, so jobs can use relative paths."""
    d = tmp_path / "project"
    shutil.copytree(media, d)
    return d


def batch(capsys, jobs: Path, out: Path, *extra) -> tuple[int, str, str]:
    code = main(["generate", "--batch", str(jobs), *TINY, *extra, "-o", str(out)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_jsonl_batch_records_the_failure_goes_on_and_resumes(capsys, media, tmp_path):
    d = jobs_dir(media, tmp_path)
    jobs = d / "jobs.jsonl"
    jobs.write_text("\n".join([
        json.dumps({"video": "clip.mp4", "masks": ["a.mp4", "b.mp4"], "names": ["left", "right"],
                    "prompt": "two things"}),
        "# a comment line and an empty line are ignored",
        "",
        json.dumps({"video": "missing.mp4", "masks": ["a.mp4"]}),
        json.dumps({"video": "clip.mp4", "mask": "b.mp4", "output": "custom_out"}),
    ]) + "\n")
    out = tmp_path / "batch_out"
    code, stdout, err = batch(capsys, jobs, out)
    assert code == 2, err
    assert "batch: 2 done, 0 skipped (already finished), 1 failed" in stdout
    (line,) = err.strip().splitlines()
    assert line.startswith("saganet: error: 1 of 3 jobs failed") and "batch_failures.jsonl" in line
    assert "job 1: video file not found" in line
    assert "job 1:" in stdout and "missing.mp4" in stdout

    first = out / "00000_clip"  # default job folders: <batch out>/<index>_<video stem>
    assert {p.name for p in first.iterdir()} == {"stem_left.flac", "stem_right.flac", "mix.flac",
                                                 "clip_saganet.mp4", "run.json"}
    assert json.loads((first / "run.json").read_text())["prompts"] == ["two things", "two things"]
    assert (d / "custom_out" / "stem_b.flac").is_file()  # an explicit output is relative to the jobs file
    assert not (out / "00001_missing").exists()  # the failed job wrote nothing
    failures = list(iter_failures(out))
    assert len(failures) == 1 and failures[0]["job"] == 1
    assert failures[0]["video"] == str(d / "missing.mp4") and "video file not found" in failures[0]["error"]

    # Rerun: the finished jobs are skipped (untouched), the failed one is tried again.
    before = {**mtimes(first), **mtimes(d / "custom_out")}
    code, stdout, _ = batch(capsys, jobs, out)
    assert code == 2 and "0 done, 2 skipped (already finished), 1 failed" in stdout
    assert {**mtimes(first), **mtimes(d / "custom_out")} == before
    assert [f["job"] for f in iter_failures(out)] == [1]  # the failures of the last run, not a growing log

    # Once the input exists, a rerun does just that job and the batch succeeds.
    shutil.copy(d / "clip.mp4", d / "missing.mp4")
    code, stdout, _ = batch(capsys, jobs, out)
    assert code == 0 and "1 done, 2 skipped (already finished), 0 failed" in stdout
    assert (out / "00001_missing" / "stem_a.flac").is_file()
    assert list(iter_failures(out)) == []


def test_csv_batch(capsys, media, tmp_path):
    d = jobs_dir(media, tmp_path)
    jobs = d / "jobs.csv"
    jobs.write_text("video,masks,names,prompt,negative_prompt\n"
                    "clip.mp4,a.mp4;b.mp4,left;right,a violin,noise\n"
                    "clip.mp4,not_there.mp4,,,\n"
                    f"{d / 'clip.mp4'},{d / 'b.mp4'},,,\n")
    out = tmp_path / "csv_out"
    code, stdout, _ = batch(capsys, jobs, out)
    assert code == 2 and "2 done, 0 skipped (already finished), 1 failed" in stdout
    run = json.loads((out / "00000_clip" / "run.json").read_text())
    assert run["objects"] == ["left", "right"] and run["prompts"] == ["a violin", "a violin"]
    assert run["options"]["negative_prompt"] == "noise"
    assert (out / "00002_clip" / "stem_b.flac").is_file()
    (failure,) = iter_failures(out)
    assert failure["job"] == 1 and "not_there" in failure["error"]
    code, stdout, _ = batch(capsys, jobs, out)
    assert "0 done, 2 skipped" in stdout


def test_batch_options_apply_to_every_job(capsys, media, tmp_path):
    d = jobs_dir(media, tmp_path)
    jobs = d / "jobs.jsonl"
    jobs.write_text(json.dumps({"video": "clip.mp4", "masks": ["a.mp4"]}) + "\n")
    out = tmp_path / "o"
    code, _, err = batch(capsys, jobs, out, "--format", "wav", "--no-video", "--seed", "9", "--prompt", "hum")
    assert code == 0, err
    job = out / "00000_clip"
    assert {p.name for p in job.iterdir()} == {"stem_a.wav", "mix.wav", "run.json"}
    run = json.loads((job / "run.json").read_text())
    assert run["options"]["seed"] == 9 and run["prompts"] == ["hum"]


def test_jobs_set_their_own_options(capsys, media, tmp_path):
    d = jobs_dir(media, tmp_path)
    jobs = d / "jobs.csv"  # CSV values are strings: converted per field
    jobs.write_text("video,masks,seed,steps,cfg,sampler,duration,start\n"
                    "clip.mp4,a.mp4,4,2,2.5,heun,0.8,0.2\n"
                    "clip.mp4,a.mp4,,,,,,\n")
    (d / "bad.jsonl").write_text(json.dumps({"video": "clip.mp4", "masks": ["a.mp4"], "colour": "red"}) + "\n"
                                 + json.dumps({"video": "clip.mp4", "masks": ["a.mp4"], "seed": "many"}) + "\n")
    out = tmp_path / "o"
    code, stdout, err = batch(capsys, jobs, out, "--seed", "1")
    assert code == 0, stdout + err
    own = json.loads((out / "00000_clip" / "run.json").read_text())
    opt = own["options"]
    assert (opt["seed"], opt["steps"], opt["cfg_strength"], opt["sampler"]) == (4, 2, 2.5, "heun")
    assert own["duration"] == pytest.approx(0.8) and own["start"] == 0.2
    default = json.loads((out / "00001_clip" / "run.json").read_text())["options"]
    assert (default["seed"], default["steps"], default["sampler"]) == (1, 1, "euler")  # the command line's

    code, stdout, _ = batch(capsys, d / "bad.jsonl", tmp_path / "bad")
    assert code == 2 and "0 done, 0 skipped (already finished), 2 failed" in stdout
    errors = [f["error"] for f in iter_failures(tmp_path / "bad")]
    assert "unknown job field 'colour'" in errors[0] and "job field 'seed' must be int" in errors[1]


def test_empty_jobs_file_is_a_one_line_error(capsys, tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("# only a comment\n\n")
    code, _, err = batch(capsys, jobs, tmp_path / "o")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("saganet: error:") and "holds no job" in lines[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content, words", [
    ('{"video": "x.mp4", "mask": "a.mp4"}\n{not json}\n', "jobs.jsonl:2: not valid JSON"),
    ('{"video": "x.mp4", "mask": "a.mp4"}\n{"masks": ["a.mp4"]}\n', "jobs.jsonl:2: no 'video' field"),
])
def test_a_bad_line_is_a_failed_job_and_the_batch_goes_on(content, words, capsys, tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(content)
    code, stdout, err = batch(capsys, jobs, tmp_path / "o")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("saganet: error: 2 of 2 jobs failed"), err
    assert "0 done, 0 skipped (already finished), 2 failed" in stdout and words in stdout
    failures = list(iter_failures(tmp_path / "o"))
    assert [f["job"] for f in failures] == [0, 1] and words in failures[1]["error"]
    assert "x.mp4" in failures[0]["error"]  # the good line ran (and failed on its missing video)


def test_missing_jobs_file(capsys, tmp_path):
    code, _, err = batch(capsys, tmp_path / "nope.jsonl", tmp_path / "o")
    assert code == 2 and err.startswith("saganet: error: jobs file not found") and err.count("\n") == 1


# ------------------------------------------------------------------------------------------------ API
def test_read_jobs_resolves_paths_and_default_folders(tmp_path):
    jobs = tmp_path / "sub" / "jobs.jsonl"
    jobs.parent.mkdir()
    jobs.write_text(json.dumps({"video": "v.mp4", "masks": "m1.mp4;m2.mp4", "names": ["x", "y"], "cfg": 3}) + "\n"
                    + json.dumps({"video": "/abs/w.mp4", "mask": "/abs/m.png", "output": "here"}) + "\n")
    a, b = read_jobs(jobs, tmp_path / "out")
    assert a.video == str(jobs.parent / "v.mp4")
    assert a.masks == [str(jobs.parent / "m1.mp4"), str(jobs.parent / "m2.mp4")] and a.names == ["x", "y"]
    assert a.output == str(tmp_path / "out" / "00000_v") and a.options == {"cfg": 3}
    assert b.video == "/abs/w.mp4" and b.masks == ["/abs/m.png"] and b.output == str(jobs.parent / "here")


def test_run_batch_goes_on_after_a_failure(tmp_path):
    jobs = [Job(video=f"v{i}.mp4", masks=[], output=str(tmp_path / f"job{i}")) for i in range(3)]
    seen = []

    def run_one(job: Job) -> None:
        seen.append(job.video)
        if job.video == "v1.mp4":
            raise InputError("v1.mp4 is broken")
        Path(job.output).mkdir()
        (Path(job.output) / "run.json").write_text("{}")

    s = run_batch(jobs, run_one, tmp_path / "out", quiet=True)
    assert seen == ["v0.mp4", "v1.mp4", "v2.mp4"]
    assert (s.done, s.skipped, s.failed) == (2, 0, [(1, "v1.mp4 is broken")])
    assert s.line() == "2 done, 0 skipped (already finished), 1 failed"
    seen.clear()
    s = run_batch(jobs, run_one, tmp_path / "out", quiet=True)
    assert seen == ["v1.mp4"] and (s.done, s.skipped, len(s.failed)) == (0, 2, 1)


def test_jobs_carry_objects_and_gains_in_jsonl_and_csv(tmp_path):
    """Segmentation prompts ("objects") and mix gains per job: JSONL lists/objects, CSV 'kind=value' / 'name=dB'."""
    jl = tmp_path / "jobs.jsonl"
    jl.write_text(json.dumps({"video": "v.mp4", "objects": [["object", "drum"], ["point", "40,52@0.5"]],
                              "segmenter": "color", "gains": {"drum": -6}}) + "\n")
    (a,) = read_jobs(jl, tmp_path / "o")
    assert a.objects == [("object", "drum"), ("point", "40,52@0.5")] and a.gains == {"drum": -6}
    assert a.options == {"segmenter": "color"} and a.error is None
    csv_file = tmp_path / "jobs.csv"
    csv_file.write_text('video,objects,gains\nv.mp4,"object=drum;point=40,52;text=reed","drum=-6;reed=2.5"\n'
                        'v.mp4,"point",drum=loud\n')
    b, c = read_jobs(csv_file, tmp_path / "o")
    assert b.objects == [("object", "drum"), ("point", "40,52"), ("text", "reed")]
    assert b.gains == {"drum": -6.0, "reed": 2.5}
    assert c.error is not None and "'objects'" in c.error and "jobs.csv:3" in c.error
