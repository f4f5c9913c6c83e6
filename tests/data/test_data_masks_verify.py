"""masks (colour segmenter on the toy world, instance choice rule) and verify (planted bad clips)."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from saganet.data.cut import read_audio_window
from saganet.data.ingest import CLIP_COLUMNS, read_clip_table
from saganet.data.masks import (
    Instance,
    MaskStrategy,
    choose_instances,
    mask_paths,
    read_mask_meta,
    write_mask,
)
from saganet.data.metadata import read_urmp_metadata
from saganet.data.verify import TABLE_NAME, VerifyConfig, config_from_overrides, read_table, verify
from saganet.errors import InputError
from saganet.io.masks import MaskSpec, read_mask
from saganet.io.writers import write_video


def _iou(a, b):
    return np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1)


def test_sms_masks_match_truth(sms_root, fake_world):
    for c in read_clip_table(sms_root):
        mp4, js = mask_paths(sms_root, c["id"])
        got = read_mask(MaskSpec(js), max_side=None).frames
        from_video = read_mask(MaskSpec(mp4), max_side=None).frames
        assert np.array_equal(got, from_video)  # the mp4 and the RLE hold the same mask
        ytid = c["id"].split("/")[1].split("_")[0]
        s0 = int(c["start_ms"]) * 25 // 1000
        truth = fake_world.truth[ytid][s0:s0 + got.shape[0]]
        assert _iou(got, truth) > 0.7, c["id"]  # small objects, 64 px, after h264
        meta = read_mask_meta(js)
        assert meta["consistency"] == 1.0 and meta["label"] == c["label"]


def test_urmp_masks_follow_each_player(urmp_root, fake_world):
    for r in read_urmp_metadata(urmp_root / "metadata.tsv"):
        got = read_mask(MaskSpec(urmp_root / f"{r.mask_id}.json"), max_side=None).frames
        s0 = r.start_ms * 25 // 1000
        mine = fake_world.truth[f"{r.piece}/{r.player}"][s0:s0 + len(got)]
        other = fake_world.truth[f"{r.piece}/{3 - r.player}"][s0:s0 + len(got)]
        assert _iou(got, mine) > 0.8 and _iou(got, other) < 0.05
        assert (urmp_root / f"{r.mask_id}.mp4").is_file()


def test_instance_rule_prefers_consistent_detections():
    T, H, W = 4, 32, 32
    small, big = np.zeros((T, H, W), bool), np.zeros((T, H, W), bool)
    small[:, 4:10, 4:10] = True
    big[:, 12:30, 12:30] = True
    solo = Instance(small, {0: 0.8, 10: 0.75, 20: 0.8})  # found on every key frame
    poster = Instance(big, {10: 0.9})  # bigger, higher score once, but found on one key frame only
    best, stats = choose_instances([poster, solo], 3, MaskStrategy())
    assert best == [1] and stats[1]["consistency"] == 1.0 and stats[0]["relative_size"] == 1.0
    # equal evidence: size breaks the tie
    best, _ = choose_instances([Instance(small, {0: 0.8}), Instance(big, {0: 0.8})], 3, MaskStrategy())
    assert best == [1]


def _plant(root, src_id, new_id, masks=None, silent=False, rows=None):
    """A copy of clip `src_id` as `new_id`, with replaced masks and/or silent audio."""
    src = root / f"{src_id}.mp4"
    dst = root / f"{new_id}.mp4"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if silent:
        from saganet.io.video import decode_video

        d = decode_video(src, keep_original=True, clip_size=16, sync_size=64, quiet=True)
        frames = d.original_frames.numpy()
        write_video(dst, frames, 25, audio=np.zeros(32000, np.float32), sample_rate=16000)
    else:
        shutil.copyfile(src, dst)
    mp4, js = mask_paths(root, src_id)
    good = read_mask(MaskSpec(js), max_side=None).frames
    m = good if masks is None else masks(good)
    nmp4, njs = mask_paths(root, new_id)
    write_mask(nmp4, njs, m, 25.0, {"grounding_score": 0.9, "consistency": 1.0, "label": new_id.split("/")[0]})
    rows.append({**next(r for r in read_clip_table(root) if r["id"] == src_id), "id": new_id})


def _drift(m):
    out = np.zeros_like(m)
    T, H, W = m.shape
    for t in range(T):  # slides from the object towards the far corner, 1 px per frame
        out[t] = np.roll(np.roll(m[t], t, axis=0), t, axis=1)
    return out


def _two(m):
    return m | np.roll(np.roll(m, m.shape[1] // 2, axis=1), m.shape[2] // 2, axis=2)


def test_verify_rejects_planted_bad_clips(sms_root, tmp_path):
    root = tmp_path / "sms"
    shutil.copytree(sms_root, root)
    good = [r["id"] for r in read_clip_table(root)]
    src = "reed/ytsol00_0_2000"
    rows = list(read_clip_table(root))
    _plant(root, src, "reed/empty_0_2000", masks=np.zeros_like, rows=rows)
    _plant(root, src, "reed/silent_0_2000", silent=True, rows=rows)
    _plant(root, src, "reed/drift_0_2000", masks=_drift, rows=rows)
    _plant(root, src, "reed/two_0_2000", masks=_two, rows=rows)
    with open(root / "clips.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CLIP_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    table = verify(root, quiet=True)
    for cid in good:
        assert table[cid]["decision"] == "accept", (cid, table[cid]["failed"])
    expect = {"reed/empty_0_2000": "area", "reed/silent_0_2000": "silent", "reed/drift_0_2000": "drift",
              "reed/two_0_2000": "single"}
    for cid, check in expect.items():
        row = table[cid]
        assert row["decision"] == "reject" and check in row["failed"].split(";"), (cid, row["failed"])
    assert table["reed/silent_0_2000"]["failed"] == "silent"
    assert table["reed/two_0_2000"]["failed"] == "single"
    # a human decision survives a re-run of the automatic checks
    from saganet.data.review import ReviewTable

    ReviewTable(root).decide("reed/two_0_2000", "accept", note="duet, fine")
    table = verify(root, quiet=True)
    assert table["reed/two_0_2000"]["auto"] == "reject" and table["reed/two_0_2000"]["decision"] == "accept"
    assert read_table(root / TABLE_NAME)["reed/two_0_2000"]["note"] == "duet, fine"


def test_verify_audio_checks_and_config():
    from saganet.data.verify import audio_stats, failed_checks, mask_stats

    cfg = VerifyConfig()
    clipped = np.clip(np.sin(np.linspace(0, 300, 16000)) * 3, -1, 1).astype(np.float32)
    assert audio_stats(clipped, cfg)["clipped_fraction"] > 0.1
    m = np.zeros((10, 20, 20), bool)
    m[:, :, :2] = True  # a strip along the left edge touching three edges: a frame border, not an object
    v = {**mask_stats(m, 25.0, cfg), **audio_stats(clipped, cfg), "grounding_score": 1.0, "consistency": 1.0,
         "duration": 2.0, "expected_duration": 2.0}
    assert set(failed_checks(v, cfg)) == {"border", "clipped"}
    assert config_from_overrides(["min_area=0.01"]).min_area == 0.01
    with pytest.raises(InputError):
        config_from_overrides(["nope=1"])
    with pytest.raises(InputError):
        VerifyConfig(min_area=float("nan"))


def test_read_audio_window_pads(sms_root):
    clip = sms_root / "reed/ytsol00_0_2000.mp4"
    a, sr = read_audio_window(clip, 1.5, 2.5)
    assert a.shape == (1, sr) and not a[:, int(0.6 * sr):].any()  # past the end: zeros


@pytest.mark.slow
def test_masks_with_tiny_sam2_plumbing(sms_root, tmp_path):
    """The learned path end to end with tiny random SAM 2 + Grounding DINO (real classes, no download):
    grounding on key frames -> box prompts -> propagation -> instance choice -> files. Random weights find
    random boxes, so only the plumbing is checked."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "segment"))
    import segment_tiny_models as tiny  # transformers is a dependency of the data extra

    from saganet.data.masks import make_masks
    from saganet.segment.grounding import Grounder
    from saganet.segment.sam2 import Sam2Segmenter

    root = tmp_path / "sms"
    shutil.copytree(sms_root, root)
    from transformers import GroundingDinoImageProcessor, GroundingDinoProcessor

    gd_model, gd_proc = tiny.tiny_grounding_dino(tmp_path)
    # square 64 px frames would shrink to 1x1 maps in the tiny Swin's last level (GroupNorm needs more)
    gd_proc = GroundingDinoProcessor(GroundingDinoImageProcessor(size={"shortest_edge": 96, "longest_edge": 128}),
                                     gd_proc.tokenizer)
    model, proc = tiny.tiny_sam2()
    seg = Sam2Segmenter(model, proc, name="sam2-tiny-random", grounder=Grounder(gd_model, gd_proc))
    cid = "drum/ytsol01_0_2000"
    res = make_masks(root, seg, strategy=MaskStrategy(key_frames=2, min_score=0.0, max_candidates=2),
                     overwrite=True, only=[cid], quiet=True)
    assert res == {cid: "done"}
    mp4, js = mask_paths(root, cid)
    meta = read_mask_meta(js)
    assert meta["segmenter"] == "sam2-tiny-random" and meta["candidates"] and 0 <= meta["grounding_score"] <= 1
    frames = read_mask(MaskSpec(js), max_side=None).frames
    assert frames.shape == (50, 64, 64) and np.array_equal(frames, read_mask(MaskSpec(mp4), max_side=None).frames)


def test_urmp_published_masks_are_kept(urmp_root, tmp_path, palette):
    from saganet.data.masks import make_masks

    root = tmp_path / "urmp"
    shutil.copytree(urmp_root, root)
    r = read_urmp_metadata(root / "metadata.tsv")[0]
    mp4, js = root / f"{r.mask_id}.mp4", root / f"{r.mask_id}.json"
    js.unlink()  # as if the published mask video had been copied in without our JSON
    before = mp4.read_bytes()
    (root / "masks_manifest.jsonl").unlink()
    make_masks(root, "color", palette=palette, quiet=True)
    assert mp4.read_bytes() == before and read_mask_meta(js)["source"] == "provided"
    with pytest.raises(InputError, match="URMP root"):
        verify(root, quiet=True)
