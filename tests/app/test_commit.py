"""The output commit of `saganet.app.outputs`, interrupted at every step it has: what is left is either
nothing visible (staging folder, temp files) or a journal naming the moved files; the next check removes it
all, so the run is redone without --overwrite, and files no journal names are never touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from saganet.app import outputs
from saganet.app.outputs import (
    COMPLETION,
    JOURNAL,
    STAGING_PREFIX,
    check_output_dir,
    clean_stale,
    write_outputs,
)
from saganet.errors import InputError
from saganet.pipeline import GenerationResult

SR = 16000


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so no handler of ours runs (the `finally` clauses still do, which
    a real kill would not run: the staging folder is therefore also left behind by hand below)."""


def result(names=("a", "b")) -> GenerationResult:
    g = torch.Generator().manual_seed(0)
    stems = torch.rand(len(names), SR // 2, generator=g) * 0.2
    return GenerationResult(list(names), stems, SR, 0.5, ["" for _ in names], {"sample": 0.1})


def write(out: Path, **kw) -> dict[str, Path]:
    return write_outputs(result(), "clip.mp4", out, write_video=False, run_info={"variant": "toy"}, **kw)


def visible(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_complete_commit(tmp_path):
    paths = write(tmp_path / "o")
    assert visible(tmp_path / "o") == {"stem_a.flac", "stem_b.flac", "mix.flac", COMPLETION}
    assert json.loads(paths["run"].read_text())["outputs"] == {"stem:a": "stem_a.flac", "stem:b": "stem_b.flac",
                                                               "mix": "mix.flac"}


@pytest.mark.parametrize("renames_before_kill", [0, 1, 2])
def test_killed_inside_the_commit_is_redone_without_overwrite(renames_before_kill, tmp_path, monkeypatch):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    real_replace = os.replace
    calls = []

    def replace(src, dst):
        if Path(dst).parent == out and Path(dst).name != JOURNAL and not Path(src).name.startswith(".run."):
            if len(calls) == renames_before_kill:
                raise Killed
            calls.append(dst)
        return real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", replace)
    with pytest.raises(Killed):
        write(out)
    monkeypatch.setattr(outputs.os, "replace", real_replace)
    assert (out / JOURNAL).is_file() and not (out / COMPLETION).exists()
    assert len([n for n in visible(out) if n.startswith("stem_") or n == "mix.flac"]) == renames_before_kill
    # the next run: no --overwrite needed, the partial outputs are replaced, the user's file stays
    planned = [out / n for n in ("stem_a.flac", "stem_b.flac", "mix.flac", COMPLETION)]
    check_output_dir(out, planned, [], overwrite=False)
    assert visible(out) == {"notes.txt"}
    write(out, overwrite=False)
    assert visible(out) == {"notes.txt", "stem_a.flac", "stem_b.flac", "mix.flac", COMPLETION}


def test_killed_while_writing_run_json(tmp_path, monkeypatch):
    out = tmp_path / "o"
    real = outputs.atomic_write_text

    def atomic_write_text(dest, text):
        if Path(dest).name == COMPLETION:
            tmp = Path(dest).with_name(".run.abcd1234.json")
            tmp.write_text(text[:10])  # half a temp file, as a kill inside the write leaves it
            raise Killed
        return real(dest, text)

    monkeypatch.setattr(outputs, "atomic_write_text", atomic_write_text)
    with pytest.raises(Killed):
        write(out)
    monkeypatch.setattr(outputs, "atomic_write_text", real)
    assert not (out / COMPLETION).exists() and (out / ".run.abcd1234.json").exists()
    removed = {p.name for p in clean_stale(out)}
    assert {".run.abcd1234.json", JOURNAL, "stem_a.flac", "stem_b.flac", "mix.flac"} <= removed
    assert visible(out) == set()


def test_a_journal_after_run_json_only_is_removed(tmp_path):
    """Killed between writing run.json and deleting the journal: the run is complete, only the journal goes."""
    out = tmp_path / "o"
    write(out)
    (out / JOURNAL).write_text(json.dumps({"files": ["stem_a.flac", "stem_b.flac", "mix.flac", COMPLETION]}))
    clean_stale(out)
    assert visible(out) == {"stem_a.flac", "stem_b.flac", "mix.flac", COMPLETION}


def test_stale_staging_and_temp_files_are_removed_live_ones_kept(tmp_path):
    out = tmp_path / "o"
    write(out)
    dead = out / f"{STAGING_PREFIX}{dead_pid()}-x1"
    dead.mkdir()
    (dead / "stem_a.flac").write_bytes(b"partial")
    live = out / f"{STAGING_PREFIX}{os.getppid()}-x2"  # a running process (our parent) may still write there
    live.mkdir()
    for name in (".stem_a.k2j4h1l0.flac", ".mix.aaaaaaaa.flac", ".clip_saganet.zzzzzzzz.mp4"):
        (out / name).write_bytes(b"")
    (out / ".keep_me.txt").write_text("not ours")
    clean_stale(out)
    assert visible(out) == {"stem_a.flac", "stem_b.flac", "mix.flac", COMPLETION, live.name, ".keep_me.txt"}


def test_existing_outputs_of_a_finished_run_need_overwrite(tmp_path):
    out = tmp_path / "o"
    write(out)
    with pytest.raises(InputError, match="--overwrite"):
        check_output_dir(out, [out / "stem_a.flac", out / COMPLETION], [], overwrite=False)
    before = (out / "stem_a.flac").read_bytes()
    write(out, overwrite=True)
    assert (out / "stem_a.flac").read_bytes() == before  # same result, replaced in one commit


def test_colliding_stem_names_are_refused(tmp_path):
    with pytest.raises(InputError, match="'a b' and 'a_b'"):
        write_outputs(result(("a b", "a_b")), "clip.mp4", tmp_path / "o", write_video=False)
    assert not (tmp_path / "o").exists()


def test_an_output_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(InputError, match="existing file"):
        check_output_dir(f, [f / "mix.flac"], [], overwrite=True)
    assert f.read_text() == "x"


def test_a_failed_write_leaves_no_folder(tmp_path, monkeypatch):
    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "write_audio", disk_full)
    with pytest.raises(OSError):
        write(tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_the_journal_of_a_live_process_is_left_alone(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "stem_a.flac").write_bytes(b"being committed")
    (out / JOURNAL).write_text(json.dumps({"pid": os.getppid(), "files": ["stem_a.flac", COMPLETION]}))
    clean_stale(out)
    assert visible(out) == {"stem_a.flac", JOURNAL}
