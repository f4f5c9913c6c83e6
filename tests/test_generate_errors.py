"""Bad input to `saganet generate`: exit code 2, one line on stderr, nothing written, inputs untouched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saganet.cli import main
from saganet.io.writers import write_mask_video, write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict[str, Path]:
    """A 1.2 s 48x64 video with an object mask, an empty mask and a wrong-aspect mask."""
    d = tmp_path_factory.mktemp("clip")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (30, 48, 64, 3), dtype=np.uint8)
    write_video(d / "video.mp4", frames, 25)
    m = np.zeros((30, 48, 64), bool)
    m[:, 10:30, 20:40] = True
    write_mask_video(d / "obj.mp4", m, 25)
    write_mask_video(d / "empty.mp4", np.zeros((30, 48, 64), bool), 25)
    write_mask_video(d / "square.mp4", np.ones((30, 48, 48), bool), 25)
    write_video(d / "short.mp4", frames[:10], 25)
    return {p.stem: p for p in d.iterdir()}


def run(capsys, *argv) -> tuple[int, str]:
    code = main(["generate", *map(str, argv)])
    err = capsys.readouterr().err
    return code, err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.startswith("saganet: error:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]


def assert_nothing_written(out: Path) -> None:
    assert not out.exists() or not [p for p in out.iterdir() if not p.name.startswith(".")]


TINY = ("--variant", "tiny", "--steps", "1", "-q")


def test_ok_baseline(capsys, clip, tmp_path):
    code, err = run(capsys, clip["video"], "--mask", clip["obj"], *TINY, "-o", tmp_path / "o")
    assert code == 0, err


@pytest.mark.parametrize("case", ["missing", "corrupt", "truncated", "not_video", "text", "short"])
def test_bad_video(case, capsys, clip, tmp_path):
    bad = {"missing": tmp_path / "nope.mp4", "corrupt": tmp_path / "c.mp4", "truncated": tmp_path / "t.mp4",
           "not_video": tmp_path / "a.wav", "text": tmp_path / "x.mp4", "short": clip["short"]}[case]
    if case == "corrupt":
        bad.write_bytes(np.random.default_rng(1).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    elif case == "truncated":
        data = clip["video"].read_bytes()
        bad.write_bytes(data[: len(data) * 3 // 10])
    elif case == "not_video":
        from saganet.io.audio import write_audio

        write_audio(bad, np.zeros(16000, np.float32), 16000)
    elif case == "text":
        bad.write_text("hello")
    out = tmp_path / "out"
    code, err = run(capsys, bad, "--mask", clip["obj"], *TINY, "-o", out)
    assert_one_line_error(code, err)
    assert_nothing_written(out)


def test_empty_mask_warns_or_fails_with_strict(capsys, clip, tmp_path, caplog):
    code, err = run(capsys, clip["video"], "--mask", clip["empty"], *TINY, "--strict-masks", "-o", tmp_path / "s")
    assert_one_line_error(code, err, "empty")
    assert_nothing_written(tmp_path / "s")
    code, _ = run(capsys, clip["video"], "--mask", clip["empty"], "--variant", "tiny", "--steps", "1",
                  "-o", tmp_path / "w")
    assert code == 0 and "empty" in caplog.text


@pytest.mark.parametrize("case", ["missing", "unreadable", "aspect"])
def test_bad_mask(case, capsys, clip, tmp_path):
    mask = {"missing": tmp_path / "none.mp4", "unreadable": tmp_path / "junk.mp4", "aspect": clip["square"]}[case]
    if case == "unreadable":
        mask.write_bytes(b"\x00\x01garbage" * 100)
    code, err = run(capsys, clip["video"], "--mask", mask, *TINY, "-o", tmp_path / "out")
    assert_one_line_error(code, err, "aspect" if case == "aspect" else "mask")
    assert_nothing_written(tmp_path / "out")


def test_no_mask_for_segaware_variant_fails_before_loading(capsys, clip, tmp_path, monkeypatch):
    monkeypatch.setenv("SAGANET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SAGANET_OFFLINE", "1")
    code, err = run(capsys, clip["video"], "--variant", "saganet_small", "-q", "-o", tmp_path / "out")
    assert_one_line_error(code, err, "give at least one object mask")


def test_unknown_variant(capsys, clip, tmp_path):
    code, err = run(capsys, clip["video"], "--mask", clip["obj"], "--variant", "huge_99k", "-o", tmp_path / "o")
    assert_one_line_error(code, err, "unknown variant", "saganet_small")


def test_weights_missing_offline(capsys, clip, tmp_path, monkeypatch):
    monkeypatch.setenv("SAGANET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SAGANET_OFFLINE", "1")
    code, err = run(capsys, clip["video"], "--mask", clip["obj"], "--variant", "saganet_small", "-q",
                    "-o", tmp_path / "out")
    assert_one_line_error(code, err, "saganet.pth", "saganet weights download")
    assert_nothing_written(tmp_path / "out")


def test_weights_wrong_file(capsys, clip, tmp_path, monkeypatch):
    """A cached saganet.pth that is not a SAGANet checkpoint: one clear error, not a traceback."""
    import torch

    home = tmp_path / "home"
    (home / "weights").mkdir(parents=True)
    torch.save({"weight": torch.zeros(3)}, home / "weights" / "saganet.pth")
    monkeypatch.setenv("SAGANET_HOME", str(home))
    monkeypatch.setenv("SAGANET_OFFLINE", "1")
    code, err = run(capsys, clip["video"], "--mask", clip["obj"], "--variant", "saganet_small", "-q",
                    "-o", tmp_path / "out")
    assert_one_line_error(code, err, "saganet.pth")


def test_output_not_writable(capsys, clip, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = run(capsys, clip["video"], "--mask", clip["obj"], *TINY, "-o", blocker / "sub")
    assert_one_line_error(code, err, "not writable")


def test_existing_outputs_need_overwrite_and_inputs_are_kept(capsys, clip, tmp_path):
    out = tmp_path / "o"
    assert run(capsys, clip["video"], "--mask", clip["obj"], *TINY, "-o", out)[0] == 0
    before = (out / "run.json").read_text()
    code, err = run(capsys, clip["video"], "--mask", clip["obj"], *TINY, "-o", out)
    assert_one_line_error(code, err, "--overwrite")
    assert (out / "run.json").read_text() == before
    assert run(capsys, clip["video"], "--mask", clip["obj"], *TINY, "--overwrite", "-o", out)[0] == 0
    # an output folder that holds the input: the input is never replaced
    shutil.copy(clip["video"], tmp_path / "in.mp4")
    data = (tmp_path / "in.mp4").read_bytes()
    code, err = run(capsys, tmp_path / "in.mp4", "--mask", clip["obj"], *TINY, "--overwrite", "-o", tmp_path)
    assert (tmp_path / "in.mp4").read_bytes() == data


def test_batch_resumes_and_records_failures(capsys, clip, tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(j) for j in [
        {"video": str(clip["video"]), "masks": [str(clip["obj"])], "output": "a"},
        {"video": str(tmp_path / "missing.mp4"), "masks": [str(clip["obj"])], "output": "bad"},
        {"video": str(clip["video"]), "masks": [str(clip["obj"])], "names": ["thing"], "output": "c"},
    ]) + "\n")
    out = tmp_path / "batch"
    code = main(["generate", "--batch", str(jobs), *TINY, "-o", str(out)])
    text = capsys.readouterr().out
    assert code == 1 and "2 done" in text and "1 failed" in text
    failures = [json.loads(ln) for ln in (out / "batch_failures.jsonl").read_text().splitlines()]
    assert len(failures) == 1 and failures[0]["job"] == 1 and "missing.mp4" in failures[0]["error"]
    assert (tmp_path / "a" / "run.json").is_file() and (tmp_path / "c" / "stem_thing.flac").is_file()
    mtime = (tmp_path / "a" / "run.json").stat().st_mtime
    main(["generate", "--batch", str(jobs), *TINY, "-o", str(out)])
    assert "2 skipped" in capsys.readouterr().out
    assert (tmp_path / "a" / "run.json").stat().st_mtime == mtime


def test_batch_csv(capsys, clip, tmp_path):
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"video,masks,names,prompt\n{clip['video']},{clip['obj']},obj,a thing\n")
    out = tmp_path / "batch"
    assert main(["generate", "--batch", str(jobs), *TINY, "-o", str(out)]) == 0
    run_dirs = [p for p in out.iterdir() if p.is_dir()]
    assert len(run_dirs) == 1 and json.loads((run_dirs[0] / "run.json").read_text())["prompts"] == ["a thing"]


def test_weights_commands(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SAGANET_HOME", str(tmp_path))
    assert main(["weights", "list"]) == 0
    assert "saganet.pth" in capsys.readouterr().out
    bogus = tmp_path / "weights" / "v1-44.pth"
    bogus.parent.mkdir(parents=True)
    bogus.write_bytes(b"tampered")
    assert main(["weights", "verify", str(bogus)]) == 1


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(min_size=0, max_size=4000).map(lambda b: ("bytes", b)),
    st.tuples(st.integers(1, 40), st.integers(8, 40), st.integers(8, 40), st.sampled_from([5, 12, 25, 30]))
    .map(lambda t: ("video", t)),
))
def test_fuzz_generate_never_crashes(data, capsys, clip, tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    kind, payload = data
    path = d / "in.mp4"
    if kind == "bytes":
        path.write_bytes(payload)
    else:
        n, h, w, fps = payload
        write_video(path, np.random.default_rng(n).integers(0, 255, (n, h * 2, w * 2, 3), dtype=np.uint8), fps)
    code = main(["generate", str(path), "--mask", str(clip["obj"]), "--pad-masks", *TINY, "-o", str(d / "out")])
    err = capsys.readouterr().err
    assert code in (0, 2)
    if code == 2:
        assert_one_line_error(code, err)
