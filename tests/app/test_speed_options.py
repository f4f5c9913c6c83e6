"""The speed and memory options of `saganet generate` (issue 12): --threads, --dtype bf16 only where the CPU
computes it natively, --cache-dir shared across runs, --low-memory and --quantize giving working runs."""

from __future__ import annotations

import pytest

from saganet.app import generate as gen
from saganet.app.cli import main
from saganet.io.audio import read_audio

TINY = ("--variant", "tiny", "--steps", "2", "-q")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([*map(str, argv)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_threads(toy_media, tmp_path, capsys):
    code, _, err = run(capsys, "--threads", "0", "generate", toy_media["video"], "--mask", toy_media["masks"][0],
                       *TINY, "-o", tmp_path / "a")
    assert code == 2 and err.count("\n") == 1 and "--threads must be between 1 and 1024" in err
    assert not (tmp_path / "a").exists()
    import torch

    before = torch.get_num_threads()
    try:
        code, _, err = run(capsys, "--threads", "1", "generate", toy_media["video"], "--mask", toy_media["masks"][0],
                           *TINY, "-o", tmp_path / "b")
        assert code == 0, err
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_bf16_refused_where_the_cpu_emulates_it(toy_media, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gen, "cpu_has_native_bf16", lambda: False)
    code, _, err = run(capsys, "generate", toy_media["video"], "--mask", toy_media["masks"][0], *TINY,
                       "--dtype", "bf16", "-o", tmp_path / "a")
    assert code == 2 and "emulated" in err and "--dtype fp32" in err and err.count("\n") == 1
    assert not (tmp_path / "a").exists()
    monkeypatch.setattr(gen, "cpu_has_native_bf16", lambda: True)
    gen.check_precision("cpu", "bf16")  # accepted where the CPU has it


def test_cache_dir_is_shared_by_later_runs(toy_media, tmp_path, capsys):
    cache = tmp_path / "cache"
    outs = []
    for k in range(2):
        out = tmp_path / f"out{k}"
        code, _, err = run(capsys, "generate", toy_media["video"], "--mask", toy_media["masks"][k], *TINY,
                           "--cache-dir", cache, "-o", out)
        assert code == 0, err
        outs.append(out)
    entries = sorted(cache.glob("*.safetensors"))
    assert len(entries) == 1  # CLIP features of the clip: written by the first run, read by the second
    # a run with the cache equals a run without it
    code, _, err = run(capsys, "generate", toy_media["video"], "--mask", toy_media["masks"][1], *TINY,
                       "-o", tmp_path / "nocache")
    assert code == 0, err
    wav_cached = read_audio(next(outs[1].glob("stem_*.flac")))[0]
    wav_plain = read_audio(next((tmp_path / "nocache").glob("stem_*.flac")))[0]
    assert (wav_cached == wav_plain).all()


@pytest.mark.parametrize("flag", ["--low-memory", "--quantize"])
def test_low_memory_and_quantize_run(toy_media, tmp_path, capsys, flag):
    out = tmp_path / "out"
    code, _, err = run(capsys, "generate", toy_media["video"], "--mask", toy_media["masks"][0], *TINY, flag, "-o", out)
    assert code == 0, err
    assert len(list(out.glob("stem_*.flac"))) == 1


def test_quantize_needs_the_cpu(toy_media, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gen, "check_device", lambda d: d)  # pretend the machine has the GPU
    code, _, err = run(capsys, "generate", toy_media["video"], "--mask", toy_media["masks"][0], *TINY, "--quantize",
                       "--device", "cuda", "-o", tmp_path / "a")
    assert code == 2 and "CPU only" in err


def test_fast_preset(toy_media, tmp_path, capsys):
    import json

    out = tmp_path / "out"
    code, _, err = run(capsys, "generate", toy_media["video"], "--mask", toy_media["masks"][0], "--variant", "toy",
                       "-q", "--preset", "fast", "-o", out)
    assert code == 0, err
    options = json.loads((out / "run.json").read_text())["options"]
    assert (options["sampler"], options["steps"]) == ("midpoint", 5)
    with pytest.raises(SystemExit) as e:  # argparse refuses an unknown preset, naming the choices
        main(["generate", str(toy_media["video"]), "--preset", "turbo", "-o", str(tmp_path / "x")])
    assert e.value.code == 2 and "fast" in capsys.readouterr().err


def test_cache_dir_that_is_a_file(toy_media, tmp_path, capsys):
    f = tmp_path / "a_file"
    f.write_text("x")
    code, _, err = run(capsys, "generate", toy_media["video"], "--mask", toy_media["masks"][0], *TINY,
                       "--cache-dir", f, "-o", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and "--cache-dir" in err
    assert not (tmp_path / "out").exists() and f.read_text() == "x"


@pytest.mark.parametrize("cap", ["0", "-5", "nan"])
def test_ui_upload_cap_must_be_positive(tmp_path, capsys, cap):
    code, _, err = run(capsys, "ui", "--max-upload-mb", cap, "-o", tmp_path / "ui")
    assert code == 2 and err.count("\n") == 1 and "upload cap" in err
    assert not (tmp_path / "ui").exists()
