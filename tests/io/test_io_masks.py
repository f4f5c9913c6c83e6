"""Masks: URMP mask videos, PNG folders (binary / palette / colour), COCO RLE, instance-id videos, errors."""

from __future__ import annotations

import json
import logging
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from saganet.errors import InputError
from saganet.io.masks import (
    MaskSpec,
    RawMask,
    align_mask,
    decode_rle,
    load_mask,
    load_masks,
    parse_select,
    read_mask,
)
from saganet.io.video import decode_video
from saganet.io.writers import write_mask_video, write_video

URMP = "urmp_09_jesus_tpt_vn"
VID = f"{URMP}/Vid_09_Jesus_tpt_vn_159092_164092.mp4"
TPT = f"{URMP}/Masks_01_tpt_09_Jesus_159092_164092.mp4"
VN = f"{URMP}/Masks_02_vn_09_Jesus_159092_164092.mp4"


def moving_square(t: int, h: int = 48, w: int = 64, size: int = 12) -> np.ndarray:
    """(T, h, w) bool: a square moving right by 1 px per frame."""
    m = np.zeros((t, h, w), bool)
    for i in range(t):
        m[i, 10:10 + size, 4 + i: 4 + i + size] = True
    return m


def rle_encode(mask: np.ndarray, compressed: bool = True) -> dict:
    """Test-side COCO RLE encoder (column-major runs starting with 0; optional LEB128-like string)."""
    flat = mask.T.reshape(-1).astype(np.uint8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0, *counts]
    if not compressed:
        return {"size": list(mask.shape), "counts": counts}
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return {"size": list(mask.shape), "counts": "".join(out)}


@pytest.fixture(scope="module")
def urmp(media_dir):
    return decode_video(media_dir / VID, quiet=True)


@pytest.fixture(scope="module")
def small_video(tmp_path_factory):
    """A 1-s 25 fps 64x48 video (what the masks below are aligned to)."""
    p = tmp_path_factory.mktemp("v") / "video.mp4"
    write_video(p, np.full((25, 48, 64, 3), 100, np.uint8), 25)
    return decode_video(p, quiet=True)


def test_urmp_masks(media_dir, urmp):
    tpt, vn = load_masks([MaskSpec(media_dir / TPT), MaskSpec(media_dir / VN)], urmp)
    for m in (tpt, vn):
        assert m.masks.shape == (125, 1, 224, 224) and m.masks.dtype == torch.float32
        assert set(m.masks.unique().tolist()) <= {0.0, 1.0}
        area = m.masks.mean(dim=(1, 2, 3))
        assert (area > 0.0005).all() and (area < 0.1).all()  # an instrument: small, never empty
    assert tpt.name.startswith("Masks_01_tpt") and vn.name.startswith("Masks_02_vn")
    inter = (tpt.masks * vn.masks).sum()
    assert inter < 0.05 * min(tpt.masks.sum(), vn.masks.sum())  # different objects
    # the trumpet player sits left of the violinist
    cols = torch.arange(224.0)
    cx = [float((m.masks.sum(dim=(0, 1, 2)) * cols).sum() / m.masks.sum()) for m in (tpt, vn)]
    assert cx[0] < 112 < cx[1]


def test_urmp_mask_luma_not_overflowed(media_dir):
    """RN-24: codec noise (luma 1-3) must stay background; only the white object is foreground."""
    raw = read_mask(MaskSpec(media_dir / TPT), max_side=None)
    assert raw.orig_size == (1080, 1920) and raw.frames.shape == (125, 1080, 1920)
    assert raw.frames.mean() < 0.02
    np.testing.assert_allclose(raw.times, np.arange(125) / 25)


def test_mask_video_roundtrip_and_center_crop(tmp_path, small_video):
    m = moving_square(25)
    write_mask_video(tmp_path / "m.mp4", m, 25)
    obj = load_mask(MaskSpec(tmp_path / "m.mp4", name="sq"), small_video)
    assert obj.name == "sq" and obj.masks.shape == (25, 1, 224, 224)
    want = torch.nn.functional.interpolate(torch.from_numpy(m).float()[:, None], (224, 224), mode="area") >= 0.5
    assert (obj.masks.bool() != want).float().mean() < 0.01
    # centre-crop geometry: the 48x48 centre of the 64-wide frame, like the sync frames
    raw = read_mask(MaskSpec(tmp_path / "m.mp4"))
    cc = align_mask(raw, small_video.sync_times, (48, 64), geometry="center_crop")
    want_cc = torch.nn.functional.interpolate(torch.from_numpy(m[:, :, 8:56]).float()[:, None], (224, 224),
                                              mode="area") >= 0.5
    assert (cc.bool() != want_cc).float().mean() < 0.01


def test_png_folder_binary(tmp_path, small_video):
    m = moving_square(25)
    for i, fr in enumerate(m):
        Image.fromarray(fr.astype(np.uint8) * 255, mode="L").save(tmp_path / f"frame_{i}.png")
    obj = load_mask(MaskSpec(tmp_path), small_video)
    assert obj.name == tmp_path.name
    want = torch.nn.functional.interpolate(torch.from_numpy(m).float()[:, None], (224, 224), mode="area") >= 0.5
    assert torch.equal(obj.masks.bool(), want)  # lossless, natural sort (frame_10 after frame_9)


def test_png_folder_palette_two_objects(tmp_path, small_video):
    a, b = moving_square(25), np.zeros((25, 48, 64), bool)
    b[:, 30:44, 40:60] = True
    pal = [0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9)
    for i in range(25):
        idx = a[i].astype(np.uint8) + 2 * b[i].astype(np.uint8)
        img = Image.fromarray(idx, mode="P")
        img.putpalette(pal)
        img.save(tmp_path / f"{i:05d}.png")
    o1 = load_mask(MaskSpec(tmp_path, select=1), small_video)
    o2 = load_mask(MaskSpec(tmp_path, select=(0, 0, 255)), small_video)  # palette colour of index 2
    assert o1.masks.sum() > 0 and o2.masks.sum() > 0 and (o1.masks * o2.masks).sum() == 0
    assert o1.name == f"{tmp_path.name}_1" and o2.name == f"{tmp_path.name}_0000ff"
    assert o2.masks[:, :, 150:200, 150:200].mean() == 1.0
    with pytest.raises(InputError, match="several objects"):
        load_mask(MaskSpec(tmp_path), small_video)


def test_png_folder_rgb_colours(tmp_path, small_video):
    for i in range(25):
        img = np.zeros((48, 64, 3), np.uint8)
        img[5:20, 5:20] = (255, 0, 0)
        img[25:40, 30:50] = (0, 255, 0)
        Image.fromarray(img).save(tmp_path / f"{i}.png")
    red = load_mask(MaskSpec(tmp_path, select=parse_select("#ff0000")), small_video)
    green = load_mask(MaskSpec(tmp_path, select=parse_select("0,255,0")), small_video)
    assert red.masks[0, 0, 30:90, 25:65].mean() == 1.0 and red.masks[0, 0, 120:, 120:].sum() == 0
    assert green.masks[0, 0, :100, :100].sum() == 0 and green.masks.sum() > 0
    with pytest.raises(InputError, match="several colours"):
        load_mask(MaskSpec(tmp_path), small_video)


@pytest.mark.parametrize("compressed", [True, False])
def test_rle_json_roundtrip(tmp_path, small_video, compressed):
    rng = np.random.default_rng(0)
    m = moving_square(25)
    m[:, 40:, :] |= rng.random((25, 8, 64)) > 0.7  # irregular runs (deltas of both signs)
    m[3, 0, 0] = True  # a run starting at pixel 0 (leading zero count)
    for fr in m:
        assert np.array_equal(decode_rle(rle_encode(fr, compressed)), fr)
    path = tmp_path / "masks.json"
    path.write_text(json.dumps([rle_encode(fr, compressed) for fr in m]))
    raw = read_mask(MaskSpec(path), fps=25)
    assert np.array_equal(raw.frames, m) and raw.orig_size == (48, 64)
    obj = load_mask(MaskSpec(path), small_video)
    assert obj.masks.shape == (25, 1, 224, 224) and obj.name == "masks"


def test_rle_known_string():
    # a 3x2 mask [[0,1],[1,1],[0,0]] column-major: 0,1,0 | 1,1,0 -> counts [1,1,1,2,1]
    m = np.array([[0, 1], [1, 1], [0, 0]], bool)
    assert rle_encode(m, compressed=False)["counts"] == [1, 1, 1, 2, 1]
    assert np.array_equal(decode_rle({"size": [3, 2], "counts": [1, 1, 1, 2, 1]}), m)
    assert np.array_equal(decode_rle(rle_encode(m)), m)


def test_instance_id_video(tmp_path, small_video):
    a, b = moving_square(25), np.zeros((25, 48, 64), bool)
    b[:, 30:44, 40:60] = True
    gray = np.where(a, 80, np.where(b, 160, 0)).astype(np.uint8)
    write_video(tmp_path / "ids.mp4", np.repeat(gray[..., None], 3, -1), 25)
    o1 = load_mask(MaskSpec(tmp_path / "ids.mp4", select=80), small_video)
    o2 = load_mask(MaskSpec(tmp_path / "ids.mp4", select=160, name="second"), small_video)
    want1 = torch.nn.functional.interpolate(torch.from_numpy(a).float()[:, None], (224, 224), mode="area") >= 0.5
    assert (o1.masks.bool() != want1).float().mean() < 0.01
    assert o2.name == "second" and o2.masks[:, :, 150:200, 150:200].mean() == 1.0
    assert (o1.masks * o2.masks).sum() == 0
    colour = np.zeros((25, 48, 64, 3), np.uint8)
    colour[a] = (255, 0, 0)
    colour[b] = (0, 0, 255)
    write_video(tmp_path / "col.mp4", colour, 25)
    blue = load_mask(MaskSpec(tmp_path / "col.mp4", select=(0, 0, 255)), small_video)
    assert blue.masks[:, :, 150:200, 150:200].mean() == 1.0 and blue.masks[:, :, :60, :].sum() == 0
    with pytest.raises(InputError, match="needs an object id"):
        load_mask(MaskSpec(tmp_path / "ids.mp4", kind="id_video"), small_video)


@pytest.mark.parametrize("rule", ["at_or_after", "at_or_before"])
def test_mask_timestamps_other_fps(rule):
    """A 10 fps mask aligned to 25 fps targets: first mask frame at or after / last at or before each time."""
    frames = np.zeros((10, 8, 8), bool)
    for i in range(10):
        frames[i, :, : i % 8 + 1] = True
    raw = RawMask(frames, np.arange(10) / 10, 0.1, (8, 8))
    times = torch.arange(25, dtype=torch.float64) / 25
    out = align_mask(raw, times, (8, 8), size=8, frame_rule=rule)
    for k in range(25):
        exact = Fraction(k * 10, 25)
        i = min(math.ceil(exact), 9) if rule == "at_or_after" else math.floor(exact)  # past the end: the last
        assert torch.equal(out[k, 0].bool(), torch.from_numpy(frames[i])), k


@pytest.mark.parametrize("rule", ["at_or_after", "at_or_before"])
def test_mask_lines_up_with_the_video_frames(tmp_path, rule):
    """A 30 fps video and its 30 fps mask, both coding the frame index, read at 25 fps: every sync frame and its
    mask come from the same source frame, under either rule (the video's rule is passed on to the mask)."""
    n = 40
    frames = np.zeros((n, 48, 64, 3), np.uint8)
    masks = np.zeros((n, 48, 64), bool)
    for i in range(n):
        frames[i] = 6 * i  # grey level codes the index
        masks[i, :, : i + 1] = True  # width (columns) codes the index
    write_video(tmp_path / "v.mp4", frames, 30)
    write_mask_video(tmp_path / "m.mp4", masks, 30)
    v = decode_video(tmp_path / "v.mp4", quiet=True, frame_rule=rule)
    obj = load_mask(MaskSpec(tmp_path / "m.mp4"), v)
    video_idx = ((v.sync_frames.mean(dim=(1, 2, 3)) + 1) * 127.5 / 6).round().long().tolist()
    mask_idx = ((obj.masks.mean(dim=(1, 2, 3)) * 64).round() - 1).long().tolist()
    exact = [Fraction(30 * k, 25) for k in range(len(video_idx))]
    want = [math.ceil(x) if rule == "at_or_after" else math.floor(x) for x in exact]
    assert video_idx == want
    assert mask_idx == want


# ------------------------------------------------------------------------------------------- errors


def _raw(t: int, h: int = 48, w: int = 64, fps: float = 25, value: bool = True) -> RawMask:
    f = np.zeros((t, h, w), bool)
    f[:, 10:20, 10:20] = value
    return RawMask(f, np.arange(t) / fps, 1 / fps, (h, w), name="obj")


def test_empty_mask_warns_or_errors(caplog):
    times = torch.arange(25, dtype=torch.float64) / 25
    with caplog.at_level(logging.WARNING):
        out = align_mask(_raw(25, value=False), times, (48, 64))
    assert out.sum() == 0 and "empty" in caplog.text
    with pytest.raises(InputError, match="empty"):
        align_mask(_raw(25, value=False), times, (48, 64), strict=True)


def test_aspect_ratio_mismatch():
    times = torch.arange(25, dtype=torch.float64) / 25
    with pytest.raises(InputError, match="aspect"):
        align_mask(_raw(25, 48, 48), times, (48, 64))
    # same aspect at another resolution is resized
    assert align_mask(_raw(25, 96, 128), times, (48, 64)).shape == (25, 1, 224, 224)


def test_length_mismatch():
    times = torch.arange(50, dtype=torch.float64) / 25
    with pytest.raises(InputError, match="shorter"):
        align_mask(_raw(40), times, (48, 64), need_end=2.0, video_duration=2.0)
    padded = align_mask(_raw(40), times, (48, 64), need_end=2.0, video_duration=2.0, pad=True)
    assert padded.shape[0] == 50 and torch.equal(padded[-1], padded[39])  # last frame repeated
    with pytest.raises(InputError, match="longer"):
        align_mask(_raw(80), times, (48, 64), need_end=2.0, video_duration=2.0)
    assert align_mask(_raw(80), times, (48, 64), need_end=2.0, video_duration=2.0, pad=True).shape[0] == 50
    # one frame of slack either way is fine
    align_mask(_raw(49), times, (48, 64), need_end=2.0, video_duration=2.0)
    align_mask(_raw(51), times, (48, 64), need_end=2.0, video_duration=2.0)


def test_length_mismatch_through_load_mask(tmp_path, small_video):
    write_mask_video(tmp_path / "short.mp4", moving_square(12), 25)
    with pytest.raises(InputError, match="shorter"):
        load_mask(MaskSpec(tmp_path / "short.mp4"), small_video)
    assert load_mask(MaskSpec(tmp_path / "short.mp4"), small_video, pad=True).masks.shape[0] == 25


def test_bad_sources(tmp_path, small_video):
    with pytest.raises(InputError, match="not found"):
        read_mask(MaskSpec(tmp_path / "missing.mp4"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="RLE"):
        read_mask(MaskSpec(bad))
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps([{"size": [4, 4], "counts": [3, 2]}]))
    with pytest.raises(InputError, match="bad RLE entry 0"):
        read_mask(MaskSpec(wrong))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(InputError, match="no image files"):
        read_mask(MaskSpec(empty_dir))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(InputError):
        load_mask(MaskSpec(junk), small_video)
    with pytest.raises(InputError, match="selector"):
        parse_select("red")
    with pytest.raises(InputError, match="several masks are named"):
        write_mask_video(tmp_path / "m.mp4", moving_square(25), 25)
        load_masks([MaskSpec(tmp_path / "m.mp4"), MaskSpec(tmp_path / "m.mp4")], small_video)
