"""`ingest folder`: your own clips (labelled by sub-folder, with or without a mask beside them) into the SMS
layout, then masks -> verify -> the dataset, as a fine-tuning set."""

from __future__ import annotations

import shutil

import pytest

from saganet.data.datasets import SegmentedMusicSolos
from saganet.data.detail import FocalOptions
from saganet.data.ingest import ingest, read_clip_table
from saganet.data.masks import make_masks, mask_paths, read_mask_meta
from saganet.data.verify import verify
from saganet.errors import InputError


def test_folder_of_own_clips(sms_root, tmp_path, palette):
    mine = tmp_path / "mine"
    (mine / "pluck").mkdir(parents=True)
    (mine / "drum").mkdir()
    shutil.copyfile(sms_root / "pluck/ytmus00_0_2000.mp4", mine / "pluck" / "take1.mp4")
    shutil.copyfile(mask_paths(sms_root, "pluck/ytmus00_0_2000")[0], mine / "pluck" / "take1_mask.mp4")
    shutil.copyfile(sms_root / "drum/ytsol01_0_2000.mp4", mine / "drum" / "take2.mp4")  # no mask: segmented
    (mine / "drum" / "notes.txt").write_text("not a video")
    root = tmp_path / "root"
    rep = ingest("folder", mine, root, {}, workers=1, quiet=True, val_fraction=0.0)
    assert sorted(rep.done) == ["drum/take2", "pluck/take1"] and not rep.failed
    clips = {c["id"]: c for c in read_clip_table(root)}
    assert clips["pluck/take1"]["label"] == "pluck" and clips["pluck/take1"]["duration"] == "2.000"
    provided = mask_paths(root, "pluck/take1")[0]
    assert provided.read_bytes() == (mine / "pluck" / "take1_mask.mp4").read_bytes()
    res = make_masks(root, "color", palette=palette, quiet=True)
    assert res == {"drum/take2": "done", "pluck/take1": "done"}
    assert provided.read_bytes() == (mine / "pluck" / "take1_mask.mp4").read_bytes()  # kept as given
    assert read_mask_meta(mask_paths(root, "pluck/take1")[1])["source"] == "provided"
    assert read_mask_meta(mask_paths(root, "drum/take2")[1])["segmenter"] == "color"
    table = verify(root, quiet=True)
    assert {r["decision"] for r in table.values()} == {"accept"}
    ds = SegmentedMusicSolos(root, "train", duration=2.0, size=64, focal="online",
                             focal_opts=FocalOptions("reference", 64, 16), sample_rate=16000, clip_size=32)
    item = ds[0]
    assert len(ds) == 2 and item["masks"].shape == (50, 1, 64, 64) and item["wav"].shape == (32000,)


def test_folder_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        ingest("folder", tmp_path / "nope", tmp_path / "r", {}, quiet=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no videos"):
        ingest("folder", tmp_path / "empty", tmp_path / "r", {}, quiet=True)
