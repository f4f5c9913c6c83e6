"""ingest -> masks -> verify -> focal -> extract -> datasets, end to end on the fake world, into the trainer."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from saganet.data.datasets import SegmentedMusicSolos, URMPTest
from saganet.data.detail import FocalOptions, compute_detail, detail_paths, load_sync, make_focal, to_uint8
from saganet.data.extract import FeatureStore, extract, load_model
from saganet.data.ingest import read_clip_table
from saganet.data.masks import mask_paths
from saganet.data.verify import verify

REPO = Path(__file__).resolve().parents[2]
FOCAL = FocalOptions(mode="reference", size=64, min_size=16)  # the tiny model's 64 px sync frames


@pytest.fixture(scope="module")
def built(sms_root, tmp_path_factory):
    """A copy of the masked SMS root, verified, with focal prompts and tiny-model features."""
    root = tmp_path_factory.mktemp("e2e") / "sms"
    shutil.copytree(sms_root, root)
    table = verify(root, quiet=True)
    assert all(r["decision"] == "accept" for r in table.values())
    res = make_focal(root, FOCAL, quiet=True)
    assert set(res.values()) == {"done"}
    feats = root.parent / "feats"
    index = extract(root, feats, variant="tiny", quiet=True)
    return root, feats, index


def test_focal_files_and_index(built):
    root, feats, index = built
    clips = read_clip_table(root)
    for c in clips:
        dv, dm = detail_paths(root, c["id"])
        assert dv.is_file() and dm.is_file()
    assert index["train"]["count"] + index["val"]["count"] == len(clips)
    model = load_model("tiny")
    shapes = index["train"]["shapes"]
    assert shapes["latent_mean"] == [model.seq.latent_seq_len, model.codec.latent_dim]
    assert shapes["clip_f"][0] == model.seq.clip_seq_len
    assert shapes["text_f"] == list(model.encode_text(["x"]).shape[1:])


def test_extract_resumes_without_recomputing(built, tmp_path):
    root, feats, index = built
    out = tmp_path / "feats"
    shutil.copytree(feats, out)
    shards = sorted((out / "train").glob("*.safetensors"))
    mtimes = {p: p.stat().st_mtime_ns for p in shards}
    # drop one shard (a run killed before writing it) and leave a stale temporary behind
    shards[-1].unlink()
    (out / "train" / ".r00-00099.abcdefgh.safetensors").write_bytes(b"partial")
    index2 = extract(root, out, variant="tiny", quiet=True, shard_size=2)
    assert index2["train"]["items"].keys() == index["train"]["items"].keys()
    for p in shards[:-1]:
        assert p.stat().st_mtime_ns == mtimes[p]
    assert not list((out / "train").glob(".*"))
    a, b = FeatureStore(feats / "train"), FeatureStore(out / "train")
    for i in a.items:
        for k, v in a[i].items():
            torch.testing.assert_close(v, b[i][k])


def test_dataset_offline_online_and_features(built):
    root, feats, _ = built
    ds = SegmentedMusicSolos(root, "train", features=feats / "train", duration=2.0, size=64, focal="offline",
                             focal_opts=FOCAL)
    on = SegmentedMusicSolos(root, "train", features=feats / "train", duration=2.0, size=64, focal="online",
                             focal_opts=FOCAL)
    assert len(ds) == len(on) == sum(c["split"] == "train" for c in read_clip_table(root))
    assert len(SegmentedMusicSolos(root, "val", features=feats / "val", duration=2.0, size=64)) == 2
    item, item_on = ds[0], on[0]
    assert item["sync_frames"].shape == (50, 3, 64, 64) and item["masks"].shape == (50, 1, 64, 64)
    assert item["detail_frames"].shape == (50, 3, 64, 64) and item["detail_masks"].shape == (50, 1, 64, 64)
    store = FeatureStore(feats / "train")
    for k, v in store[item["id"]].items():
        assert torch.equal(item[k], v)
    # on the fly == the offline writer's crops before encoding, exactly
    video = root / f"{item['id']}.mp4"
    frames, masks = load_sync(video, mask_paths(root, item["id"])[0], 64, 2.0)
    d, dm = compute_detail(to_uint8(frames), masks, FOCAL)
    assert torch.equal(item_on["detail_frames"], d.float() / 127.5 - 1) and torch.equal(item_on["detail_masks"], dm)
    # ... and the offline files hold the same crops up to h264 (frames) and exactly (binary masks)
    assert (item["detail_frames"] - item_on["detail_frames"]).abs().mean() < 0.05
    assert ((item["detail_masks"] >= 0.5) == (item_on["detail_masks"] >= 0.5)).float().mean() > 0.99


def test_trainer_reads_a_batch(built):
    from saganet.train.trainer import FlowTrainModule, TrainConfig

    root, feats, _ = built
    ds = SegmentedMusicSolos(root, "train", features=feats / "train", duration=2.0, size=64, focal_opts=FOCAL)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=0)))
    model = load_model("tiny")
    loss = FlowTrainModule(model)(batch, TrainConfig(out_dir="unused"), torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and math.isfinite(loss.item())


def test_urmp_test_set(urmp_root, fake_world):
    ds = URMPTest(urmp_root, duration=2.0, size=64, sample_rate=16000, clip_size=32, focal_opts=FOCAL)
    assert len(ds) == len(fake_world.urmp_rows)
    item = ds[1]
    r = fake_world.urmp_rows[1]
    assert item["id"] == r.audio_id and item["label"] == r.label
    assert item["masks"].shape == (50, 1, 64, 64) and item["masks"].sum() > 0
    assert item["target"].shape == (32000,) and item["clip_frames"].shape == (16, 3, 32, 32)
    import soundfile as sf

    stem, _ = sf.read(urmp_root / f"{r.audio_id}.wav", dtype="float32")
    torch.testing.assert_close(item["target"], torch.from_numpy(stem), atol=1e-4, rtol=0)
    # features of the test set are keyed by the player's stem
    feats = urmp_root.parent / "feats"
    index = extract(urmp_root, feats, variant="tiny", quiet=True)
    assert set(index["test"]["items"]) == {x.audio_id for x in fake_world.urmp_rows}


@pytest.mark.slow
def test_torchrun_two_ranks_equal_one(built, tmp_path):
    root, feats, _ = built
    out = tmp_path / "feats2"
    code = ("import torch; torch.set_num_threads(1); from saganet.data.extract import extract; "
            f"extract({str(root)!r}, {str(out)!r}, variant='tiny', shard_size=2, quiet=True)")
    script = tmp_path / "run.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:  # a hung rank: end the whole group we started
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    ranks = {p.name.split("-")[0] for p in (out / "train").glob("*.safetensors")}
    assert ranks == {"r00", "r01"}  # each rank wrote its own shards
    a, b = FeatureStore(feats / "train"), FeatureStore(out / "train")
    assert a.items.keys() == b.items.keys()
    for i in a.items:
        for k, v in a[i].items():
            torch.testing.assert_close(v, b[i][k], atol=1e-5, rtol=1e-5)
