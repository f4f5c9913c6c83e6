"""Every bad input of issue 17, as a command line and as a batch (a job's line, or the flag given with --batch).

Each case must end with exit code 2, exactly ONE stderr line starting `saganet: error:` that names the
problem, no traceback, and nothing written (no output file, no job folder). Cases marked `before_model`
must fail before any model is loaded (the loader is replaced by one that fails the test).
The inputs are a toy-world scene and its mask videos (`conftest.py`); generation uses `--variant toy --steps 2`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from app_media import TOY

from saganet.app import generate as generate_module
from saganet.app.batch import iter_failures
from saganet.app.cli import main

NAN, INF = float("nan"), float("inf")


@dataclass
class Case:
    """`cli`: extra argv for `generate VIDEO --mask M0 ...` (`{video}`-style placeholders; `video=`/`masks=`
    replace the defaults). `job`: fields merged into the batch line, or a raw line (str); `flag`: True when
    the batch form is the same argv given with --batch. `words`: what the error line must say."""

    name: str
    words: tuple[str, ...]
    cli: list | None = None
    job: dict | str | None = None
    flag: bool = False
    video: str = "{video}"
    masks: list = field(default_factory=lambda: ["{mask0}"])
    before_model: bool = True


CASES = [
    # numbers: finite, in range, the range in the message
    Case("start_nan", ("start", "finite"), ["--start", "nan"], {"start": NAN}),
    Case("start_inf", ("start", "finite"), ["--start", "inf"], {"start": INF}),
    Case("start_after_the_end", ("start 9", "end"), ["--start", "9"], {"start": 9}),
    Case("duration_nan", ("duration", "finite", "> 0"), ["--duration", "nan"], {"duration": NAN}),
    Case("duration_negative", ("duration", "> 0"), ["--duration", "-1"], {"duration": -1}),
    Case("cfg_inf", ("cfg", "[0, 100]", "inf"), ["--cfg", "inf"], {"cfg": INF}),
    Case("cfg_nan", ("cfg", "[0, 100]", "nan"), ["--cfg", "nan"], {"cfg": NAN}),
    Case("steps_zero", ("steps", "[1, 1000]"), ["--steps", "0"], {"steps": 0}),
    Case("seed_huge", ("seed", "9223372036854775807"), ["--seed", "1180591620717411303424"],
         {"seed": 1180591620717411303424}),
    Case("seed_negative", ("seed", "[0, "), ["--seed", "-1"], {"seed": -1}),
    Case("seed_text", ("seed", "int", "many"), None, {"seed": "many"}),
    Case("cfg_text", ("cfg", "number", "strong"), None, {"cfg": "strong"}),
    Case("gain_word", ("--gain", "loud"), ["--gain", "mask_0=loud"], flag=True),
    Case("gain_word_in_a_job", ("gain of 'mask_0'", "loud"), None, {"gains": {"mask_0": "loud"}}),
    Case("gain_inf", ("gain", "[-60, 60]"), ["--gain", "mask_0=inf"], {"gains": {"mask_0": INF}}),
    Case("gain_unknown_object", ("--gain", "violin", "mask_0"), ["--gain", "violin=3"], {"gains": {"violin": 3}}),
    # devices: checked against what the machine has (CUDA is made unavailable for these tests)
    Case("device_cuda_without_gpu", ("cuda", "torch.cuda.is_available"), ["--device", "cuda"], flag=True),
    Case("device_bogus", ("unknown device", "bogus"), ["--device", "bogus"], flag=True),
    # names and outputs
    Case("names_collide_space", ("'a b'", "'a_b'", "stem_a_b"), ["--name", "a b", "--mask", "{mask1}", "--name", "a_b"],
         {"masks": ["{mask0}", "{mask1}"], "names": ["a b", "a_b"]}),
    Case("names_collide_slash", ("'a/b'", "'a?b'"), ["--name", "a/b", "--mask", "{mask1}", "--name", "a?b"],
         {"masks": ["{mask0}", "{mask1}"], "names": ["a/b", "a?b"]}),
    Case("output_empty", ("output folder is empty",), ["-o", ""], flag=True),
    Case("output_is_a_file", ("existing file", "not a folder"), ["-o", "{file}"], {"output": "{file}"}),
    # media and masks
    Case("select_on_binary_mask", ("--select 3", "background"), ["--select", "3"], {"selects": ["3"]}),
    Case("select_grey_on_binary_mask", ("--select 128", "binary", "nothing"), ["--select", "128"],
         {"selects": ["128"]}),
    Case("select_absent_id", ("--select 7", "matches no pixel"), ["--select", "7"], {"selects": ["7"]},
         masks=["{ids}"]),
    Case("select_background_id", ("--select 0", "background"), ["--select", "0"], {"selects": ["0"]},
         masks=["{ids}"]),
    Case("picture_renamed_mp4", ("picture.mp4", "still image", "not a video"), [], {}, video="{picture}"),
    Case("truncated_with_strict", ("truncated.mp4", "truncated", "container says 2.56 s"), ["--strict"],
         {}, flag=True, video="{truncated}", before_model=False),
    # batch lines that are not jobs
    Case("line_is_a_list", ("JSON object", "[1, 2]"), None, "[1, 2]"),
    Case("line_is_null", ("JSON object", "null"), None, "null"),
    Case("video_is_a_number", ("'video'", "text", "5"), None, {"video": 5}),
    Case("masks_is_a_number", ("'masks'", "list", "5"), None, {"masks": 5}),
    Case("unknown_field", ("unknown job field 'colour'",), None, {"colour": "red"}),
    Case("objects_not_pairs", ("'objects'", "[kind, value]"), None, {"objects": [["point"]]}),
    # objects from prompts (issue 13): a click on the background, a bad prompt, an unknown segmenter
    Case("click_on_background", ("point 2,2", "background"), ["--point", "2,2", "--segmenter", "color"],
         {"objects": [["point", "2,2"]], "segmenter": "color"}, masks=[]),
    Case("point_outside_the_frame", ("outside the frame", "96x96"), ["--point", "500,5", "--segmenter", "color"],
         {"objects": [["point", "500,5"]], "segmenter": "color"}, masks=[]),
    Case("point_not_numbers", ("--point", "'x'", "not a number"), ["--point", "x,y"], {"objects": [["point", "x,y"]]},
         masks=[]),
    Case("unknown_segmenter", ("unknown segmenter 'bogus'",), ["--point", "40,40", "--segmenter", "bogus"],
         {"objects": [["point", "40,40"]], "segmenter": "bogus"}, masks=[]),
    Case("text_unknown_to_colour_segmenter", ("violin",), ["--text", "violin", "--segmenter", "color"],
         {"objects": [["text", "violin"]], "segmenter": "color"}, masks=[]),
]


@pytest.fixture()
def env(toy_media, tmp_path, monkeypatch) -> dict:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    file = tmp_path / "a_file.txt"
    file.write_text("x")
    d = toy_media["dir"]
    return {"video": str(toy_media["video"]), "mask0": str(d / "mask_0.mp4"), "mask1": str(d / "mask_1.mp4"),
            "picture": str(toy_media["picture"]), "truncated": str(toy_media["truncated"]), "file": str(file),
            "ids": str(toy_media["ids"]),
            "tmp": tmp_path}


def _fill(value, env: dict):
    if isinstance(value, str):
        return value.format(**env) if "{" in value and not value.lstrip().startswith(("[", "{\"")) else value
    if isinstance(value, list):
        return [_fill(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, env) for k, v in value.items()}
    return value


def _no_model(monkeypatch) -> None:
    def load(*a, **k):
        raise AssertionError("a model was loaded before the input was validated")

    monkeypatch.setattr(generate_module.ModelCache, "get", load)


def run(capsys, argv: list) -> tuple[int, str, str]:
    code = main(["generate", *map(str, argv)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def assert_one_error_line(code: int, err: str, words: tuple[str, ...]) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("saganet: error: "), err
    for w in words:
        assert w.lower() in lines[0].lower(), (w, lines[0])
    return lines[0]


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize("case", [c for c in CASES if c.cli is not None], ids=lambda c: c.name)
def test_bad_input_command_line(case: Case, env, capsys, monkeypatch):
    if case.before_model:
        _no_model(monkeypatch)
    out = env["tmp"] / "out"
    argv = [_fill(case.video, env)]
    for m in case.masks:
        argv += ["--mask", _fill(m, env)]
    argv += [*TOY, "-o", out, *_fill(case.cli, env)]
    code, _, err = run(capsys, argv)
    assert_one_error_line(code, err, case.words)
    assert files_under(out) == []


@pytest.mark.parametrize("case", [c for c in CASES if c.job is not None or c.flag], ids=lambda c: c.name)
def test_bad_input_batch(case: Case, env, capsys, monkeypatch):
    if case.before_model:
        _no_model(monkeypatch)
    line = {"video": _fill(case.video, env), "masks": _fill(case.masks, env)}
    if isinstance(case.job, str):
        text = case.job
    else:
        line.update(_fill(case.job or {}, env))
        text = json.dumps(line)  # NaN / Infinity are written as JSON's common extension, which Python reads
    jobs = env["tmp"] / "jobs.jsonl"
    jobs.write_text(text + "\n")
    out = env["tmp"] / "batch_out"
    extra = _fill(case.cli, env) if case.flag else []
    if "-o" in extra:  # the flag case sets the batch folder itself
        i = extra.index("-o")
        out, extra = Path(extra[i + 1]) if extra[i + 1] else None, extra[:i] + extra[i + 2:]
        argv = ["--batch", jobs, *TOY, *extra, "-o", "" if out is None else out]
    else:
        argv = ["--batch", jobs, *TOY, *extra, "-o", out]
    code, stdout, err = run(capsys, argv)
    line_ = assert_one_error_line(code, err, case.words)
    if out is None or (out.exists() and not out.is_dir()):
        return
    written = [p for p in files_under(out) if p.name != "batch_failures.jsonl"]
    assert written == []
    if (out / "batch_failures.jsonl").exists():  # the job failed: recorded with its reason, summary printed
        assert "0 done, 0 skipped (already finished), 1 failed" in stdout
        (failure,) = iter_failures(out)
        assert failure["job"] == 0 and failure["error"] in line_


def test_duplicate_batch_outputs_are_refused_up_front(env, capsys, monkeypatch):
    _no_model(monkeypatch)
    jobs = env["tmp"] / "jobs.jsonl"
    same = str(env["tmp"] / "same")
    jobs.write_text("\n".join(json.dumps({"video": env["video"], "masks": [m], "output": same})
                              for m in (env["mask0"], env["mask1"])) + "\n")
    code, _, err = run(capsys, ["--batch", jobs, *TOY, "-o", env["tmp"] / "out"])
    assert_one_error_line(code, err, ("jobs 0 and 1", "same"))
    assert not (env["tmp"] / "out").exists() and not Path(same).exists()


def test_a_batch_goes_on_past_every_bad_line_and_prints_its_summary(env, capsys, monkeypatch):
    """All the bad lines of the table and one good line in one jobs file: the good job is done, every bad one
    is recorded with its reason, the summary counts them all."""
    good = {"video": env["video"], "masks": [env["mask0"]], "seed": 3}
    bad = [c for c in CASES if c.job is not None and not c.flag and c.before_model]
    lines = []
    for c in bad:
        if isinstance(c.job, str):
            lines.append(c.job)
        else:
            lines.append(json.dumps({"video": _fill(c.video, env), "masks": _fill(c.masks, env),
                                     **_fill(c.job, env)}))
    good_index = len(lines) // 2
    lines.insert(good_index, json.dumps(good))
    jobs = env["tmp"] / "jobs.jsonl"
    jobs.write_text("\n".join(lines) + "\n")
    out = env["tmp"] / "out"
    code, stdout, err = run(capsys, ["--batch", jobs, *TOY, "-o", out])
    assert_one_error_line(code, err, (f"{len(bad)} of {len(bad) + 1} jobs failed",))
    assert f"batch: 1 done, 0 skipped (already finished), {len(bad)} failed" in stdout
    failures = list(iter_failures(out))
    assert [f["job"] for f in failures] == [i for i in range(len(lines)) if i != good_index], failures
    for f, c in zip(failures, bad):
        for w in c.words:
            if "{" not in w:
                assert w.lower() in f["error"].lower(), (c.name, f["error"])
    (job_dir,) = [p for p in out.iterdir() if p.is_dir()]
    assert (job_dir / "run.json").is_file() and json.loads((job_dir / "run.json").read_text())["options"]["seed"] == 3


@pytest.mark.slow
def test_in_a_real_process_stderr_is_one_line(env):
    """The same contract seen from outside (real logging, real stderr): the hang of `--start nan` and a batch
    whose job has `cfg: Infinity` next to a good job (which used to abort the batch without a summary)."""
    import subprocess
    import sys

    def cli(*argv) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "saganet.app.cli", "generate", *map(str, argv)],
                              capture_output=True, text=True, timeout=300)

    out = env["tmp"] / "o"
    r = cli(env["video"], "--mask", env["mask0"], *TOY, "--start", "nan", "-o", out)
    assert_one_error_line(r.returncode, r.stderr, ("start", "finite"))
    assert not out.exists()

    jobs = env["tmp"] / "jobs.jsonl"
    jobs.write_text(json.dumps({"video": env["video"], "masks": [env["mask0"]], "cfg": INF}) + "\n"
                    + json.dumps({"video": env["video"], "masks": [env["mask1"]]}) + "\n")
    r = cli("--batch", jobs, *TOY, "-o", out)
    assert_one_error_line(r.returncode, r.stderr, ("1 of 2 jobs failed", "job 0", "cfg", "inf"))
    assert "batch: 1 done, 0 skipped (already finished), 1 failed" in r.stdout
    assert (out / "00001_scene" / "run.json").is_file() and not (out / "00000_scene").exists()
