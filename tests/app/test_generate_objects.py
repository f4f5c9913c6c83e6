"""`saganet generate` with objects from clicks / words (issue 13) and the media cases of issue 17 that succeed:
a truncated video (warning, the decodable part is used), `--select` picking white in a binary mask."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from app_media import TOY

from saganet.app.cli import main
from saganet.app.generate import segment_objects
from saganet.io.audio import read_audio
from saganet.io.masks import MaskSpec, load_masks
from saganet.pipeline import SAGANetPipeline


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["generate", *map(str, argv)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def iou(a, b) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_a_click_gives_that_objects_stem(toy_media, tmp_path, capsys):
    x, y = toy_media["points"][1]
    out = tmp_path / "out"
    code, stdout, err = run(capsys, toy_media["video"], "--point", f"{x},{y}", "--segmenter", "color", *TOY, "-o", out)
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {"stem_object1.flac", "mix.flac", "scene_saganet.mp4", "run.json"}
    run_info = json.loads((out / "run.json").read_text())
    assert run_info["objects"] == ["object1"]
    assert run_info["segmentation"] == {"segmenter": "color", "prompts": [["point", f"{x},{y}"]]}
    wav, sr = read_audio(out / "stem_object1.flac")
    assert sr == 16000 and abs(len(wav) / sr - 2.56) < 0.01 and float(wav.abs().max()) > 0


def test_named_objects_from_a_word_and_a_click_beside_a_mask_file(toy_media, tmp_path, capsys):
    """--text names its object after the text; --object names the clicks after it; a --mask can come too."""
    x, y = toy_media["points"][2]
    out = tmp_path / "out"
    code, _, err = run(capsys, toy_media["video"], "--mask", toy_media["masks"][0], "--name", "first",
                       "--text", "reed", "--object", "top", "--point", f"{x},{y}", "--gain", "top=-6",
                       "--segmenter", "color", *TOY, "-o", out)
    assert code == 0, err
    assert json.loads((out / "run.json").read_text())["objects"] == ["first", "reed", "top"]
    assert {"stem_first.flac", "stem_reed.flac", "stem_top.flac"} <= {p.name for p in out.iterdir()}


def test_a_batch_line_with_clicks_and_gains(toy_media, tmp_path, capsys):
    """The same objects from a batch line: "objects" pairs as on the command line, "segmenter", "gains"."""
    x, y = toy_media["points"][0]
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"video": str(toy_media["video"]), "objects": [["object", "low"], ["point", f"{x},{y}"]],
                                "segmenter": "color", "gains": {"low": -3}}) + "\n")
    out = tmp_path / "out"
    code = main(["generate", "--batch", str(jobs), *TOY, "-o", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0 and "1 done" in stdout, stdout
    run_info = json.loads((out / "00000_scene" / "run.json").read_text())
    assert run_info["objects"] == ["low"] and run_info["segmentation"]["segmenter"] == "color"


def test_segment_objects_matches_the_worlds_true_masks(toy_media):
    """The API path: clicks -> ObjectMasks aligned like mask files; IoU >= 0.9 with the true masks' alignment."""
    pipe = SAGANetPipeline.from_variant("toy")
    decoded = pipe.load_video(toy_media["video"], quiet=True)
    prompts = []
    for k, (x, y) in enumerate(toy_media["points"]):
        prompts += [("object", f"obj{k}"), ("point", f"{x},{y}")]
    objs = segment_objects(toy_media["video"], prompts, decoded, segmenter="color")
    truth = load_masks([MaskSpec(m) for m in toy_media["masks"]], decoded)
    assert [o.name for o in objs] == ["obj0", "obj1", "obj2"]
    for o, t in zip(objs, truth):
        assert o.masks.shape == t.masks.shape
        assert iou(o.masks.numpy() > 0.5, t.masks.numpy() > 0.5) >= 0.9, o.name


def test_truncated_video_warns_and_uses_what_decodes(toy_media, tmp_path, capsys, caplog):
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        code, _, err = run(capsys, toy_media["truncated"], "--mask", toy_media["masks"][0], "--pad-masks", *TOY,
                           "-o", out)
    assert code == 0, err
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "truncated" in r.getMessage()]
    assert len(warnings) == 1 and "container says 2.56 s" in warnings[0]
    duration = json.loads((out / "run.json").read_text())["duration"]
    assert 0.64 <= duration < 2.0  # the part that decodes, not the 2.56 s the header promises


def test_select_an_id_in_an_instance_id_folder(toy_media, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(capsys, toy_media["video"], "--mask", toy_media["ids"], "--select", "120", "--name", "second",
                       "--no-video", *TOY, "-o", out)
    assert code == 0, err
    assert json.loads((out / "run.json").read_text())["objects"] == ["second"]


@pytest.mark.parametrize("select", ["255", "-"])
def test_select_white_or_none_on_a_binary_mask_is_the_object(select, toy_media, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(capsys, toy_media["video"], "--mask", toy_media["masks"][0], "--select", select, "--no-video",
                       *TOY, "-o", out)
    assert code == 0, err
