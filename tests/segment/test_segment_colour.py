"""The colour segmenter on toy-world scenes (IoU against the world's true masks), the writers (mask mp4, COCO
RLE JSON read back through saganet.io.masks, preview, masks.json), ObjectMasks for the pipeline, the CLI
command, and one-line errors with nothing written."""

import argparse
import json

import numpy as np
import pytest

from saganet.errors import InputError
from saganet.io.masks import MaskSpec, read_mask
from saganet.io.video import decode_video
from saganet.io.writers import write_video
from saganet.segment import interpolate_masks, segment_video, to_object_masks, write_segmentation
from saganet.toyworld.world import (
    CLASSES,
    WorldConfig,
    render_scene,
    sample_multi_different,
    sample_multi_same_class,
    sample_solo,
)

PALETTE = {c.name: c.colour for c in CLASSES}
CFG = WorldConfig()


def scene(seed: int):
    rng = np.random.default_rng(seed)
    kind = seed % 3
    objs = (sample_solo(rng, CFG) if kind == 0 else sample_multi_different(rng, CFG) if kind == 1
            else sample_multi_same_class(rng, CFG))
    return render_scene(objs, CFG, rng), rng


def inner_point(mask: np.ndarray) -> tuple[float, float]:
    """The object pixel nearest to the mask's centroid (pixel centre), as a click would be."""
    ys, xs = np.nonzero(mask)
    k = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))
    return xs[k] + 0.5, ys[k] + 0.5


def xy(mask: np.ndarray, suffix: str = "") -> str:
    x, y = inner_point(mask)
    return f"{x},{y}{suffix}"


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-frame IoU of (T, H, W) masks (a frame where both are empty counts 1)."""
    inter = (a & b).sum((1, 2))
    union = (a | b).sum((1, 2))
    return float(np.where(union > 0, inter / np.maximum(union, 1), 1.0).mean())


@pytest.mark.parametrize("seed", range(6))
def test_clicks_reach_iou_09_on_toy_scenes(seed):
    sc, rng = scene(seed)
    f = int(rng.integers(0, CFG.n_frames))  # click on a random frame: tracking runs both ways
    prompts = []
    for i, m in enumerate(sc.masks):
        x, y = inner_point(m[f])
        prompts += [("object", f"o{i}"), ("point", f"{x},{y}@{f / CFG.fps}")]
    res = segment_video(sc.video, prompts, "color", fps=CFG.fps)
    assert res.size == (CFG.frame_size, CFG.frame_size) and len(res.objects) == len(sc.masks)
    for o, gt in zip(res.objects, sc.masks):
        assert o.masks.shape == gt.shape and o.masks.dtype == bool
        assert iou(o.masks, gt) >= 0.9, (seed, o.name, iou(o.masks, gt))
        assert o.scores.shape == (CFG.n_frames,) and o.scores[f] == 1.0


def test_box_and_text_prompts():
    sc, rng = scene(1)
    t = 10
    ys, xs = np.nonzero(sc.masks[0][t])
    box = f"{xs.min() - 3},{ys.min() - 3},{xs.max() + 4},{ys.max() + 4}@{t / CFG.fps}"
    name = sc.classes[1]
    res = segment_video(sc.video, [("object", "boxed"), ("box", box), ("object", "named"), ("text", name)], "color", fps=CFG.fps,
                        palette=PALETTE)
    assert iou(res.masks("boxed"), sc.masks[0]) >= 0.9
    assert iou(res.masks("named"), sc.masks[1]) >= 0.9


def test_text_gives_one_object_per_match_up_to_max_objects():
    sc, _ = scene(2)  # two objects of one class
    cls = sc.classes[0]
    res = segment_video(sc.video, [("text", cls)], "color", fps=CFG.fps, palette=PALETTE)
    assert res.names == [f"{cls}_1", f"{cls}_2"]
    best = [max(iou(o.masks, gt) for gt in sc.masks) for o in res.objects]
    assert min(best) >= 0.9
    res1 = segment_video(sc.video, [("text", cls)], "color", fps=CFG.fps, palette=PALETTE, max_objects=1)
    assert res1.names == [cls]


def test_negative_click_removes_a_region():
    sc, _ = scene(1)
    f = 5
    x0, y0 = inner_point(sc.masks[0][f])
    res = segment_video(sc.video, [("point", f"{x0},{y0}@0.2"), ("neg_point", f"{x0},{y0}@0.2"),
                                   ("point", xy(sc.masks[1][f], "@0.2"))], "color", fps=CFG.fps)
    m = res.objects[0].masks
    assert not (m & sc.masks[0]).any() and iou(m, sc.masks[1]) >= 0.9


def test_propagate_fps_interpolates_between_key_frames():
    sc, _ = scene(0)
    x, y = inner_point(sc.masks[0][0])
    full = segment_video(sc.video, [("point", f"{x},{y}")], "color", fps=CFG.fps)
    fast = segment_video(sc.video, [("point", f"{x},{y}")], "color", fps=CFG.fps, propagate_fps=5)
    assert fast.objects[0].masks.shape == full.objects[0].masks.shape
    assert iou(fast.objects[0].masks, sc.masks[0]) >= 0.8  # key frames exact, the rest morphed


def test_interpolate_masks_morphs_a_moving_square():
    a = np.zeros((2, 20, 40), bool)
    a[0, 5:15, 2:12] = True
    a[1, 5:15, 22:32] = True
    out = interpolate_masks(np.array([0, 4]), a, 6)
    assert (out[0] == a[0]).all() and (out[4] == a[1]).all() and (out[5] == a[1]).all()
    ys, xs = np.nonzero(out[2])
    assert abs(xs.mean() - 16.5) <= 1.0 and abs(out[2].sum() - 100) <= 20


@pytest.mark.parametrize("prompts, what", [
    ([("point", "1,1")], "background"),
    ([("text", "violin")], "does not know"),
    ([("point", "200,10")], "outside the frame"),
])
def test_bad_prompts_are_one_line_errors(prompts, what):
    sc, _ = scene(0)
    with pytest.raises(InputError, match=what) as e:
        segment_video(sc.video, prompts, "color", fps=CFG.fps, palette=PALETTE)
    assert "\n" not in str(e.value)


def test_text_that_finds_nothing():
    sc, _ = scene(0)  # one object: any other class is absent
    other = next(c for c in PALETTE if c != sc.classes[0])
    with pytest.raises(InputError, match="finds nothing"):
        segment_video(sc.video, [("text", other)], "color", fps=CFG.fps, palette=PALETTE)


def test_unknown_segmenter():
    with pytest.raises(InputError, match="unknown segmenter"):
        segment_video(np.zeros((2, 8, 8, 3), np.uint8), [("point", "1,1")], "magic", fps=25)


# ------------------------------------------------------------------------------------------- writing


def test_written_masks_read_back_through_io_masks(tmp_path):
    sc, _ = scene(1)
    prompts = []
    for i, m in enumerate(sc.masks):
        prompts += [("object", f"obj{i}"), ("point", xy(m[0]))]
    res = segment_video(sc.video, prompts, "color", fps=CFG.fps)
    paths = write_segmentation(res, tmp_path / "masks")
    names = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert names == sorted([f"obj{i}_{k}" for i in range(len(sc.masks)) for k in ("mask.mp4", "rle.json")]
                           + ["preview.mp4", "masks.json"])
    for i, o in enumerate(res.objects):
        rle = read_mask(MaskSpec(paths[f"obj{i}:rle"]))  # COCO RLE round trip: exact
        assert rle.frames.shape == o.masks.shape and (rle.frames == o.masks).all()
        assert np.allclose(rle.times, res.times)
        vid = read_mask(MaskSpec(paths[f"obj{i}:mask"]))  # near-lossless h264: (almost) exact
        assert vid.frames.shape == o.masks.shape and (vid.frames != o.masks).mean() < 1e-3
    meta = json.loads(paths["meta"].read_text())
    assert meta["segmenter"] == "color" and meta["n_frames"] == CFG.n_frames
    assert [o["name"] for o in meta["objects"]] == res.names
    assert meta["objects"][0]["areas"] == [int(a) for a in res.objects[0].areas]
    assert meta["objects"][0]["prompt"]["points"][0]["frame"] == 0 and "segment" in meta["timings"]
    pv = decode_video(paths["preview"], keep_original=True, quiet=True)
    assert pv.original_frames.shape[0] == CFG.n_frames


def test_no_overwrite_and_nothing_written_on_error(tmp_path):
    sc, _ = scene(0)
    res = segment_video(sc.video, [("point", xy(sc.masks[0][0]))], "color", fps=CFG.fps)
    out = tmp_path / "m"
    write_segmentation(res, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(InputError, match="overwrite"):
        write_segmentation(res, out)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    write_segmentation(res, out, overwrite=True)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_object_masks_for_the_pipeline(tmp_path):
    sc, _ = scene(1)
    path = tmp_path / "toy.mp4"
    write_video(path, sc.video, CFG.fps, crf=0)
    video = decode_video(path, keep_original=True, quiet=True)
    prompts = [("object", "a"), ("point", xy(sc.masks[0][0]))]
    res = segment_video(video, prompts, "color")
    objs = to_object_masks(res, video)
    assert objs[0].name == "a" and objs[0].masks.shape == (video.sync_frames.shape[0], 1, 224, 224)
    # the same masks written to an RLE file and loaded as a mask file give the same ObjectMask
    from saganet.io.masks import load_masks

    paths = write_segmentation(res, tmp_path / "m", preview=False)
    loaded = load_masks([MaskSpec(paths["a:rle"], name="a")], video)
    assert (loaded[0].masks == objs[0].masks).all()


# ------------------------------------------------------------------------------------------- CLI


def _cli(argv):
    from saganet.app.commands import segment as cmd

    parser = argparse.ArgumentParser(prog="saganet")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_click_and_text_on_a_toy_clip(tmp_path, capsys):
    sc, _ = scene(1)
    path = tmp_path / "toy.mp4"
    write_video(path, sc.video, CFG.fps)  # lossy h264 like a user's file
    x, y = inner_point(sc.masks[0][12])
    out = tmp_path / "masks"
    rc = _cli(["segment", str(path), "-o", str(out), "--segmenter", "color", "--object", "first",
               "--point", f"{x},{y}@0.48", "--object", "second", "--text", sc.classes[1]])
    assert rc == 0
    assert "first: mask on 64/64 frames" in capsys.readouterr().out
    meta = json.loads((out / "masks.json").read_text())
    assert [o["name"] for o in meta["objects"]] == ["first", "second"]
    m = read_mask(MaskSpec(out / "first_rle.json")).frames
    assert iou(m, sc.masks[0]) >= 0.85  # codec noise on the edges of a 96² clip
    with pytest.raises(InputError, match="overwrite"):
        _cli(["segment", str(path), "-o", str(out), "--segmenter", "color", "--object", "first",
              "--point", f"{x},{y}@0.48"])


@pytest.mark.parametrize("extra, what", [
    (["--point", "2,2"], "background"),
    (["--point", "500,2"], "outside the frame"),
    (["--segmenter", "nope", "--point", "2,2"], "unknown segmenter"),
    ([], "no prompts"),
    (["--model-dir", "nokey", "--point", "2,2"], "MODEL=PATH"),
])
def test_cli_bad_input_writes_nothing(tmp_path, extra, what):
    sc, _ = scene(0)
    path = tmp_path / "toy.mp4"
    write_video(path, sc.video, CFG.fps)
    argv = ["segment", str(path), "-o", str(tmp_path / "out")]
    if "--segmenter" not in extra:
        argv += ["--segmenter", "color"]
    with pytest.raises(InputError, match=what):
        _cli(argv + extra)
    assert not (tmp_path / "out").exists()


def test_output_folder_that_is_a_file_and_decoded_video_without_frames(tmp_path):
    from saganet.segment import check_outputs

    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        check_outputs(tmp_path / "f", ["a"])
    sc, _ = scene(0)
    path = tmp_path / "toy.mp4"
    write_video(path, sc.video, CFG.fps)
    with pytest.raises(InputError, match="keep_original=True"):
        segment_video(decode_video(path, quiet=True), [("point", "1,1")], "color")
    with pytest.raises(InputError, match="frame rate"):
        segment_video(sc.video, [("point", "1,1")], "color")  # an array needs fps
