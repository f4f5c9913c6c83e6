"""Bad input to `saganet generate` / `saganet weights`: every case exits != 0 with ONE line on stderr that
starts with `saganet: error:`, shows no traceback and writes nothing in the output folder; inputs are never
touched. Runs use the tiny random model (`--variant tiny`) and a 48x64 synthetic clip.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from saganet.app.cli import main
from saganet.io.audio import write_audio
from saganet.io.writers import write_mask_video, write_video

TINY = ("--variant", "tiny", "--steps", "1", "-q")
H, W, FPS = 48, 64, 25


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict[str, Path]:
    """A 1.2 s 48x64 video with an object mask, an empty mask, a square (wrong aspect) mask and a 0.4 s video."""
    d = tmp_path_factory.mktemp("bad_input_clip")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (30, H, W, 3), dtype=np.uint8)
    write_video(d / "video.mp4", frames, FPS)
    m = np.zeros((30, H, W), bool)
    m[:, 10:30, 20:40] = True
    write_mask_video(d / "obj.mp4", m, FPS)
    write_mask_video(d / "empty.mp4", np.zeros((30, H, W), bool), FPS)
    write_mask_video(d / "square.mp4", np.ones((30, H, H), bool), FPS)
    write_video(d / "short.mp4", frames[:10], FPS)  # 0.4 s: 10 sync frames < 16
    return {p.stem: p for p in d.iterdir()}


def generate(capsys, *argv) -> tuple[int, str]:
    code = main(["generate", *map(str, argv)])
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *words: str) -> str:
    """Exit code 2 and stderr is exactly one line `saganet: error: ...` (runs are -q: no log lines)."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("saganet: error: "), err
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]
    return lines[0]


def assert_nothing_written(out: Path) -> None:
    assert not out.exists() or not list(out.iterdir()), list(out.iterdir())


def digest(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture()
def offline_home(tmp_path, monkeypatch) -> Path:
    """An empty weights cache and no downloads."""
    home = tmp_path / "saganet_home"
    home.mkdir()
    monkeypatch.setenv("SAGANET_HOME", str(home))
    monkeypatch.setenv("SAGANET_OFFLINE", "1")
    monkeypatch.delenv("SAGANET_WEIGHTS_URL", raising=False)
    return home


def test_the_clip_itself_is_fine(capsys, clip, tmp_path):
    code, err = generate(capsys, clip["video"], "--mask", clip["obj"], *TINY, "-o", tmp_path / "o")
    assert code == 0, err
    assert err == ""


# ------------------------------------------------------------------------------------------------ videos
def _bad_video(case: str, clip: dict[str, Path], media_dir: Path | None, d: Path) -> Path:
    if case == "missing":
        return d / "nope.mp4"
    if case == "directory":
        (d / "folder.mp4").mkdir()
        return d / "folder.mp4"
    if case == "random_bytes":
        p = d / "random.mp4"
        p.write_bytes(np.random.default_rng(1).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
        return p
    if case == "empty_file":
        p = d / "empty.mp4"
        p.write_bytes(b"")
        return p
    if case in ("truncated_synthetic", "truncated_vggsound"):
        src = clip["video"] if case == "truncated_synthetic" else media_dir / "vggsound" / "F8Zt3mYlOqU_000094.mp4"
        data = src.read_bytes()
        p = d / f"{case}.mp4"
        p.write_bytes(data[: len(data) * 3 // 10])
        return p
    if case == "wav":
        p = d / "sound.wav"
        write_audio(p, np.zeros(16000, np.float32), 16000)
        return p
    if case == "text_as_mp4":
        p = d / "notes.mp4"
        p.write_text("this is not a video\n" * 50)
        return p
    if case == "text":
        p = d / "notes.txt"
        p.write_text("hello")
        return p
    if case == "short":
        return clip["short"]
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing", "directory", "random_bytes", "empty_file", "truncated_synthetic",
                                  "truncated_vggsound", "wav", "text_as_mp4", "text", "short"])
def test_bad_video(case, capsys, clip, tmp_path, request):
    # only the VGGSound case reads ../shared: the others run (and must pass) without it
    media_dir = request.getfixturevalue("media_dir") if case == "truncated_vggsound" else None
    video = _bad_video(case, clip, media_dir, tmp_path)
    before = digest(video) if video.is_file() else None
    out = tmp_path / "out"
    code, err = generate(capsys, video, "--mask", clip["obj"], *TINY, "-o", out)
    line = assert_one_line_error(code, err)
    assert video.name in line  # the message says which file
    if case == "short":
        assert "too short" in line and "16" in line
    assert_nothing_written(out)
    if before is not None:
        assert digest(video) == before


def test_start_after_the_end_of_the_video(capsys, clip, tmp_path):
    code, err = generate(capsys, clip["video"], "--mask", clip["obj"], "--start", "5", *TINY, "-o", tmp_path / "o")
    assert_one_line_error(code, err)
    assert_nothing_written(tmp_path / "o")


# ------------------------------------------------------------------------------------------------ masks
def test_all_zero_mask_is_an_error_with_strict_masks(capsys, clip, tmp_path):
    code, err = generate(capsys, clip["video"], "--mask", clip["empty"], "--strict-masks", *TINY,
                         "-o", tmp_path / "o")
    assert_one_line_error(code, err, "mask empty is empty")
    assert_nothing_written(tmp_path / "o")


def test_all_zero_mask_only_warns_without_strict_masks(capsys, clip, tmp_path, caplog):
    code, err = generate(capsys, clip["video"], "--mask", clip["empty"], *TINY, "-o", tmp_path / "o")
    assert code == 0, err
    assert any(r.levelname == "WARNING" and "empty" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "o" / "stem_empty.flac").is_file()


@pytest.mark.parametrize("case", ["missing", "garbage", "text", "empty_folder", "aspect"])
def test_bad_mask(case, capsys, clip, tmp_path):
    mask = {"missing": tmp_path / "none.mp4", "garbage": tmp_path / "junk.mp4", "text": tmp_path / "mask.txt",
            "empty_folder": tmp_path / "frames", "aspect": clip["square"]}[case]
    if case == "garbage":
        mask.write_bytes(b"\x00\x01garbage" * 100)
    elif case == "text":
        mask.write_text("not a mask")
    elif case == "empty_folder":
        mask.mkdir()
    out = tmp_path / "out"
    code, err = generate(capsys, clip["video"], "--mask", mask, *TINY, "-o", out)
    line = assert_one_line_error(code, err, "aspect" if case == "aspect" else "mask")
    assert mask.stem in line  # the file, or the object named after it
    assert_nothing_written(out)


def test_shorter_mask_needs_pad_masks(capsys, clip, tmp_path):
    short = tmp_path / "short_mask.mp4"
    write_mask_video(short, np.ones((12, H, W), bool), FPS)
    code, err = generate(capsys, clip["video"], "--mask", short, *TINY, "-o", tmp_path / "o")
    assert_one_line_error(code, err, "--pad-masks")
    assert_nothing_written(tmp_path / "o")
    code, err = generate(capsys, clip["video"], "--mask", short, "--pad-masks", *TINY, "-o", tmp_path / "o")
    assert code == 0, err


@pytest.mark.parametrize("extra", [
    ("--steps", "0"), ("--sampler", "rk45"), ("--gain", "loud"), ("--object-prompt", "no equals sign"),
    ("--name", "a", "--name", "b"), ("--select", "not-a-colour"),
])
def test_bad_options(extra, capsys, clip, tmp_path):
    code, err = generate(capsys, clip["video"], "--mask", clip["obj"], *TINY, *extra, "-o", tmp_path / "o")
    assert_one_line_error(code, err)
    assert_nothing_written(tmp_path / "o")


def test_two_masks_with_the_same_name(capsys, clip, tmp_path):
    code, err = generate(capsys, clip["video"], "--mask", clip["obj"], "--mask", clip["obj"], *TINY,
                         "-o", tmp_path / "o")
    assert_one_line_error(code, err, "name")
    assert_nothing_written(tmp_path / "o")


# ------------------------------------------------------------------------------------------------ variants, weights
def test_unknown_variant(capsys, clip, tmp_path):
    code, err = generate(capsys, clip["video"], "--mask", clip["obj"], "--variant", "huge_99k", "-q",
                         "-o", tmp_path / "o")
    assert_one_line_error(code, err, "unknown variant", "huge_99k", "saganet_small", "tiny")
    assert_nothing_written(tmp_path / "o")


def test_segaware_variant_without_mask_fails_before_loading_weights(capsys, clip, tmp_path, offline_home):
    code, err = generate(capsys, clip["video"], "--variant", "saganet_small", "-q", "-o", tmp_path / "o")
    assert_one_line_error(code, err, "give at least one object mask")
    assert list(offline_home.iterdir()) == []  # the weights were never looked up
    assert_nothing_written(tmp_path / "o")


def test_weights_missing_offline(capsys, clip, tmp_path, offline_home):
    code, err = generate(capsys, clip["video"], "--mask", clip["obj"], "--variant", "saganet_small", "-q",
                         "-o", tmp_path / "o")
    assert_one_line_error(code, err, "saganet.pth", "saganet weights download saganet_small")
    assert_nothing_written(tmp_path / "o")


def _bogus_checkpoint(kind: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == "not_saganet":  # a valid torch file of something else
        torch.save({"weight": torch.zeros(3)}, path)
    elif kind == "wrong_weights":  # the right layout, the wrong tensors (another model / variant)
        torch.save({"network": {"blocks.0.weight": torch.zeros(4, 4)},
                    "synchformer": {"vfeat_extractor.x": torch.zeros(2)}}, path)
    elif kind == "malformed":  # entries of the wrong type
        torch.save({"network": [1, 2], "synchformer": 3}, path)
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["random_bytes", "not_saganet", "wrong_weights", "malformed"])
def test_bogus_cached_weights(kind, capsys, clip, tmp_path, offline_home):
    """A saganet.pth in the cache that is not the released file: one clear line naming the file and the fix."""
    ckpt = offline_home / "weights" / "saganet.pth"
    _bogus_checkpoint(kind, ckpt)
    before = digest(ckpt)
    code, err = generate(capsys, clip["video"], "--mask", clip["obj"], "--variant", "saganet_small", "-q",
                         "-o", tmp_path / "o")
    assert_one_line_error(code, err, "saganet.pth", "md5", "saganet weights download saganet_small")
    assert_nothing_written(tmp_path / "o")
    assert digest(ckpt) == before  # never deleted or replaced behind the user's back


def test_weights_list_runs_offline(capsys, offline_home):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert str(offline_home / "weights") in out
    for name in ("saganet.pth", "saganet_no_lora.pth", "v1-44.pth", "synchformer_state_dict.pth"):
        assert name in out
    assert "apple/DFN5B-CLIP-ViT-H-14-384" in out and "saganet_small" in out


def test_weights_verify_tampered_file(capsys, tmp_path, offline_home):
    bogus = tmp_path / "v1-44.pth"
    bogus.write_bytes(b"tampered")
    assert main(["weights", "verify", str(bogus)]) == 1
    assert "BAD" in capsys.readouterr().out
    unknown = tmp_path / "my_model.pth"
    unknown.write_bytes(b"x")
    code = main(["weights", "verify", str(unknown)])
    assert_one_line_error(code, capsys.readouterr().err, "my_model.pth")


# ------------------------------------------------------------------------------------------------ outputs
def test_output_folder_not_writable(capsys, clip, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, err = generate(capsys, clip["video"], "--mask", clip["obj"], *TINY, "-o", blocker / "sub")
    assert_one_line_error(code, err, "not writable", "-o")
    assert blocker.read_text() == "x"


def test_existing_outputs_are_refused_without_overwrite(capsys, clip, tmp_path):
    out = tmp_path / "o"
    argv = (clip["video"], "--mask", clip["obj"], *TINY, "-o", out)
    assert generate(capsys, *argv)[0] == 0
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()}
    code, err = generate(capsys, *argv, "--seed", "3")
    assert_one_line_error(code, err, "--overwrite", "stem_obj.flac")
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()} == before
    # --overwrite replaces them (another seed: other audio)
    assert generate(capsys, *argv, "--seed", "3", "--overwrite")[0] == 0
    assert (out / "stem_obj.flac").read_bytes() != before["stem_obj.flac"][1]
    assert json.loads((out / "run.json").read_text())["options"]["seed"] == 3


def test_an_input_is_never_overwritten(capsys, clip, tmp_path):
    """An RLE mask called run.json in the output folder: generating there would replace it."""
    folder = tmp_path / "work"
    folder.mkdir()
    rle = folder / "run.json"
    full = {"size": [H, W], "counts": [0, H * W]}
    rle.write_text(json.dumps({"fps": FPS, "frames": [full] * 30}))
    before = digest(rle)
    code, err = generate(capsys, clip["video"], "--mask", rle, *TINY, "--overwrite", "-o", folder)
    assert_one_line_error(code, err, "overwrite an input")
    assert digest(rle) == before and sorted(p.name for p in folder.iterdir()) == ["run.json"]


def test_the_muxed_video_never_replaces_its_source(capsys, clip, tmp_path):
    """A source named like an output of an earlier run, in the output folder itself."""
    folder = tmp_path / "work"
    folder.mkdir()
    src = folder / "video.mp4"
    src.write_bytes(clip["video"].read_bytes())
    before = digest(src)
    code, err = generate(capsys, src, "--mask", clip["obj"], *TINY, "-o", folder)
    assert code == 0, err
    assert digest(src) == before and (folder / "video_saganet.mp4").is_file()


# ------------------------------------------------------------------------------------------------ fuzzing
def _random_video(path: Path, n: int, h: int, w: int, fps: int, seed: int) -> None:
    frames = np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.one_of(
    st.binary(min_size=0, max_size=3000).map(lambda b: ("bytes", b)),
    st.tuples(st.integers(1, 40), st.integers(8, 40).map(lambda x: 2 * x), st.integers(8, 40).map(lambda x: 2 * x),
              st.integers(1, 60), st.integers(0, 2**16)).map(lambda t: ("video", t)),
    st.tuples(st.integers(1, 40), st.integers(8, 40).map(lambda x: 2 * x), st.integers(8, 40).map(lambda x: 2 * x),
              st.integers(1, 60), st.integers(0, 2**16), st.floats(0.05, 0.95)).map(lambda t: ("cut_video", t)),
    st.tuples(st.integers(16, 40), st.integers(8, 40).map(lambda x: 2 * x), st.integers(8, 40).map(lambda x: 2 * x),
              st.integers(10, 30), st.integers(0, 2**16), st.floats(0.0, 0.95)).map(lambda t: ("damaged_video", t)),
))
def test_fuzz_generate_exits_0_or_2_with_one_line(data, capsys, tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    kind, payload = data
    path = d / "in.mp4"
    h, w = H, W
    if kind == "bytes":
        path.write_bytes(payload)
    else:
        n, h, w, fps, seed = payload[:5]
        _random_video(path, n, h, w, fps, seed)
        raw = path.read_bytes()
        at = int(len(raw) * payload[5]) if kind != "video" else 0
        if kind == "cut_video":  # truncated
            path.write_bytes(raw[: max(1, at)])
        elif kind == "damaged_video":  # 300 random bytes written over the header or the frames
            noise = np.random.default_rng(seed).integers(0, 256, 300, dtype=np.uint8).tobytes()
            path.write_bytes(raw[:at] + noise + raw[at + 300:])
    mask = d / "mask"  # one full-frame PNG of the video's size, repeated with --pad-masks
    mask.mkdir()
    Image.fromarray(np.full((h, w), 255, np.uint8)).save(mask / "0.png")
    capsys.readouterr()
    code = main(["generate", str(path), "--mask", str(mask), "--pad-masks", *TINY, "-o", str(d / "out")])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:
        assert_one_line_error(code, err)
        assert_nothing_written(d / "out")
    else:
        assert (d / "out" / "run.json").is_file()
