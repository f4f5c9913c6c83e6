"""`saganet evaluate` on folders: pairing, bad input (listed skips or one-line errors, nothing written
halfway), the embedding cache, batch-output layout with scenes, the toy family, the CLI."""

import json

import numpy as np
import pytest
import soundfile as sf

from saganet.app.cli import main
from saganet.errors import InputError
from saganet.eval import EvalOptions, discover_items, evaluate_folder, family_names

FAST = dict(weights="random", size="tiny", progress=False)


def tone(path, freq, seconds=2.0, sr=16000, amp=0.3, noise=0.0, seed=0):
    t = np.arange(int(seconds * sr)) / sr
    x = amp * np.sin(2 * np.pi * freq * t) + noise * np.random.default_rng(seed).normal(size=len(t))
    sf.write(str(path), x.astype(np.float32), sr)
    return path


@pytest.fixture
def folders(tmp_path):
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir()
    ref.mkdir()
    for i in range(4):
        tone(gen / f"clip{i}.flac", 300 + 100 * i, noise=0.01, seed=i)
        tone(ref / f"clip{i}.wav", 310 + 100 * i, sr=44100)
    return gen, ref


def test_good_folders_give_every_metric(folders, tmp_path):
    gen, ref = folders
    res = evaluate_folder(gen, ref, tmp_path / "out", EvalOptions(families=("panns", "vggish"), **FAST))
    for k in ("FD_PANNs", "KL_PANNs", "IS_PANNs", "FD_VGGish"):
        assert np.isfinite(res["metrics"][k])
    assert res["n_items"] == 4 and res["skipped"] == {}
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["metrics"]["FD_PANNs"] == pytest.approx(res["metrics"]["FD_PANNs"])
    md = (tmp_path / "out" / "metrics.md").read_text()
    assert "| panns | FD_PANNs |" in md and "Random weights" in md


def test_identical_sets_score_zero(folders, tmp_path):
    gen, _ = folders
    res = evaluate_folder(gen, gen, tmp_path / "out", EvalOptions(families=("panns", "vggish"), **FAST))
    assert abs(res["metrics"]["FD_PANNs"]) < 1e-6
    assert abs(res["metrics"]["KL_PANNs"]) < 1e-9
    assert abs(res["metrics"]["FD_VGGish"]) < 1e-6


def test_bad_files_are_listed_skips_with_reasons(folders, tmp_path):
    gen, ref = folders
    tone(gen / "orphan.flac", 500)  # no reference
    sf.write(str(gen / "silent.flac"), np.zeros(32000, np.float32), 16000)
    tone(ref / "silent.flac", 500)
    (gen / "broken.flac").write_bytes(b"not audio at all")
    tone(ref / "broken.flac", 500)
    tone(gen / "short.flac", 500, seconds=0.3)
    tone(ref / "short.flac", 500)
    tone(gen / "longer.flac", 500, seconds=4.0)  # different lengths: evaluated with a note
    tone(ref / "longer.flac", 500, seconds=2.0)
    tone(ref / "lonely_ref.flac", 500)
    res = evaluate_folder(gen, ref, tmp_path / "out", EvalOptions(families=("panns",), **FAST))
    sk = res["skipped"]
    assert sk["orphan"].startswith("no reference")
    assert sk["silent"].startswith("silent")
    assert sk["broken"].startswith("unreadable")
    assert sk["short"].startswith("too short")
    assert "lonely_ref" in " ".join(sk)
    assert "longer" in res["items"] and any("longer" in n for n in res["notes"])
    md = (tmp_path / "out" / "metrics.md").read_text()
    assert "broken: unreadable" in md and "silent: silent" in md


def test_nothing_usable_is_one_error_and_nothing_written(tmp_path):
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    gen.mkdir()
    ref.mkdir()
    sf.write(str(gen / "a.flac"), np.zeros(32000, np.float32), 16000)
    sf.write(str(ref / "a.flac"), np.zeros(32000, np.float32), 16000)
    with pytest.raises(InputError, match="no usable files"):
        evaluate_folder(gen, ref, tmp_path / "out", EvalOptions(**FAST))
    assert not (tmp_path / "out" / "metrics.json").exists()
    tone(gen / "b.flac", 300)
    with pytest.raises(InputError, match="no evaluable pairs|no usable"):
        evaluate_folder(gen, ref, tmp_path / "out", EvalOptions(**FAST))
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_missing_folders_unknown_family_and_no_overwrite(folders, tmp_path):
    gen, ref = folders
    with pytest.raises(InputError, match="not found"):
        evaluate_folder(tmp_path / "nope", ref, tmp_path / "out", EvalOptions(**FAST))
    with pytest.raises(InputError, match="unknown metric family"):
        evaluate_folder(gen, ref, tmp_path / "out", EvalOptions(families=("fd_bogus",), **FAST))
    evaluate_folder(gen, ref, tmp_path / "out", EvalOptions(families=("vggish",), **FAST))
    with pytest.raises(InputError, match="--overwrite"):
        evaluate_folder(gen, ref, tmp_path / "out", EvalOptions(families=("vggish",), **FAST))
    evaluate_folder(gen, ref, tmp_path / "out", EvalOptions(families=("vggish",), overwrite=True, **FAST))


def test_cache_is_keyed_by_content_and_reused(folders, tmp_path):
    gen, ref = folders
    opts = EvalOptions(families=("panns",), cache_dir=str(tmp_path / "cache"), **FAST)
    r1 = evaluate_folder(gen, ref, tmp_path / "o1", opts)
    assert r1["cache"]["misses"] == 8 and r1["cache"]["hits"] == 0
    r2 = evaluate_folder(gen, ref, tmp_path / "o2", opts)
    assert r2["cache"]["misses"] == 0 and r2["cache"]["hits"] == 8
    assert r2["metrics"] == r1["metrics"]
    tone(gen / "clip0.flac", 900)  # new content under the same name -> recomputed
    r3 = evaluate_folder(gen, ref, tmp_path / "o3", opts)
    assert r3["cache"]["misses"] == 1
    assert r3["metrics"]["FD_PANNs"] != r1["metrics"]["FD_PANNs"]


def _batch_output(tmp_path, n_jobs=2):
    gen, ref = tmp_path / "batch", tmp_path / "truth"
    for j in range(n_jobs):
        (gen / f"job{j}").mkdir(parents=True)
        (ref / f"job{j}").mkdir(parents=True)
        for k, name in enumerate(("violin", "flute")):
            f = 300 * (k + 1) + 37 * j
            tone(gen / f"job{j}" / f"stem_{name}.flac", f, noise=0.02, seed=k)
            tone(ref / f"job{j}" / f"{name}.wav", f)
        tone(gen / f"job{j}" / "mix.flac", 440)
        (gen / f"job{j}" / "run.json").write_text(json.dumps({"objects": ["violin", "flute"],
                                                              "prompts": ["violin", "flute"]}))
    return gen, ref


def test_batch_output_layout_scenes_and_target_distractor(tmp_path):
    gen, ref = _batch_output(tmp_path)
    items, skipped = discover_items(gen, ref)
    assert sorted(i.name for i in items) == ["job0/flute", "job0/violin", "job1/flute", "job1/violin"]
    assert {i.scene for i in items} == {"job0", "job1"} and items[0].prompt in ("violin", "flute")
    res = evaluate_folder(gen, ref, tmp_path / "out", EvalOptions(families=("target_distractor",), **FAST))
    assert 0.0 <= res["metrics"]["TD_accuracy"] <= 1.0 and res["metrics"]["TD_scenes"] == 2
    assert set(res["items"]["job0/violin"]) == {"td_correct", "td_margin"}


def test_toy_family_registers_from_the_toy_layer(tmp_path):
    import saganet.toyworld.eval_family  # noqa: F401

    assert "toy" in family_names()
    gen, ref = _batch_output(tmp_path, n_jobs=1)
    res = evaluate_folder(gen, ref, tmp_path / "out", EvalOptions(families=("toy",), **FAST))
    for k in ("toy_class_correct", "toy_onset_f1", "toy_logmel_dist"):
        assert k in res["metrics"]


def test_cli_evaluate_and_one_line_errors(folders, tmp_path, capsys):
    gen, ref = folders
    code = main(["evaluate", str(gen), "--reference", str(ref), "--out", str(tmp_path / "o"), "--weights", "random",
                 "--model-size", "tiny", "--metrics", "panns,vggish", "--quiet"])
    assert code == 0 and (tmp_path / "o" / "metrics.json").is_file()
    assert "FD_VGGish" in capsys.readouterr().out
    code = main(["evaluate", str(tmp_path / "missing"), "--reference", str(ref), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("saganet: error: generated-audio folder not found")


def test_desync_full_frame_and_focal_crop_with_tiny_synchformer(tmp_path):
    from saganet.io.writers import write_mask_video, write_video

    gen, ref, vids = tmp_path / "gen", tmp_path / "ref", tmp_path / "videos"
    for d in (gen, ref, vids):
        d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        tone(gen / f"c{i}.flac", 400 + 50 * i, seconds=5.0)
        tone(ref / f"c{i}.flac", 400 + 50 * i, seconds=5.0)
        write_video(vids / f"c{i}.mp4", rng.integers(0, 255, (125, 32, 32, 3), dtype=np.uint8), 25)
    tone(gen / "short.flac", 400, seconds=2.0)
    tone(ref / "short.flac", 400, seconds=2.0)
    write_video(vids / "short.mp4", rng.integers(0, 255, (50, 32, 32, 3), dtype=np.uint8), 25)
    tone(gen / "novideo.flac", 400, seconds=5.0)
    tone(ref / "novideo.flac", 400, seconds=5.0)
    res = evaluate_folder(gen, ref, tmp_path / "out", EvalOptions(families=("desync",), **FAST), video_dir=vids)
    fam = res["families"]["desync"]
    assert 0.0 <= res["metrics"]["DeSync"] <= 2.0
    assert fam["skipped"]["novideo"] == "no video" and "segments" in fam["skipped"]["short"]
    # focal crop: an item with a mask gets DeSync_focal
    from saganet.eval.families import EvalItem, make_family
    from saganet.eval.runner import EvalContext

    m = np.zeros((125, 32, 32), bool)
    m[:, 8:20, 4:16] = True
    write_mask_video(tmp_path / "mask.mp4", m, 25)
    it = EvalItem("c0", gen / "c0.flac", ref / "c0.flac", video=vids / "c0.mp4", mask=tmp_path / "mask.mp4")
    r = make_family("desync").compute([it], EvalContext(EvalOptions(**FAST), None))
    assert set(r.rows["c0"]) == {"DeSync", "DeSync_focal"} and "DeSync_focal" in r.metrics
    # IB-score on the same videos (frames at 0.5 fps)
    res = evaluate_folder(gen, ref, tmp_path / "ib", EvalOptions(families=("imagebind",), **FAST), video_dir=vids)
    assert -1.0 <= res["metrics"]["IB_score"] <= 1.0
    ib = res["families"]["imagebind"]["skipped"]
    assert ib["novideo"] == "no video" and "2 frames" in ib["short"]
    r = make_family("imagebind").compute([it], EvalContext(EvalOptions(**FAST), None))
    assert set(r.rows["c0"]) == {"IB", "IB_focal"} and -1 <= r.metrics["IB_focal"] <= 1


def test_clap_score_with_prompts_and_tiny_clap(folders, tmp_path):
    gen, ref = folders
    prompts = {"clip0": "a violin", "clip1": "a flute", "clip2": "a violin"}
    res = evaluate_folder(gen, ref, tmp_path / "out", EvalOptions(families=("clap",), **FAST), prompts=prompts)
    assert -1.0 <= res["metrics"]["CLAP_score"] <= 1.0
    assert res["families"]["clap"]["skipped"] == {"clip3": "no text prompt"}
    assert set(res["items"]["clip0"]) == {"CLAP"}


def test_video_features_are_cached_too(tmp_path):
    from saganet.io.writers import write_video

    gen, ref, vids = tmp_path / "gen", tmp_path / "ref", tmp_path / "videos"
    for d in (gen, ref, vids):
        d.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        tone(gen / f"c{i}.flac", 400 + 50 * i, seconds=5.0)
        tone(ref / f"c{i}.flac", 400 + 50 * i, seconds=5.0)
        write_video(vids / f"c{i}.mp4", rng.integers(0, 255, (125, 32, 32, 3), dtype=np.uint8), 25)
    opts = EvalOptions(families=("desync",), cache_dir=str(tmp_path / "cache"), **FAST)
    r1 = evaluate_folder(gen, ref, tmp_path / "o1", opts, video_dir=vids)
    assert r1["cache"]["misses"] == 4  # 2 audio + 2 video
    tone(gen / "c0.flac", 900, seconds=5.0)  # another system's output for the same videos
    r2 = evaluate_folder(gen, ref, tmp_path / "o2", opts, video_dir=vids)
    assert r2["cache"]["misses"] == 1 and r2["cache"]["hits"] == 3


def test_missing_official_weights_offline_fail_before_any_work(folders, tmp_path, monkeypatch):
    from saganet.errors import CheckpointError

    monkeypatch.setenv("SAGANET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SAGANET_OFFLINE", "1")
    gen, ref = folders
    with pytest.raises(CheckpointError, match="Cnn14_16k"):
        evaluate_folder(gen, ref, tmp_path / "out", EvalOptions(families=("vggish", "panns"), progress=False))
    assert not (tmp_path / "out").exists()
