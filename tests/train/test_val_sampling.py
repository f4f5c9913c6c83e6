"""Periodic sampling on the validation split, scored by the evaluation suite (`train/val_sampling.py`).

The tiny model of the real classes trains a few steps on toy-world clips; every `sample_every` steps the
EMA weights generate validation clips that tiny random PANNs/VGGish networks score against the decoded
ground truth.
"""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from train_helpers import tiny_run, trainables

from saganet.errors import CheckpointError, InputError
from saganet.train.recipe import _Precomputed, build_training_model, sampling_codec_factory
from saganet.train.trainer import Trainer
from saganet.train.val_sampling import ValidationSampler, item_name

SAMPLING = ["sample_every=2", "sample_n=3", "sample_batch_size=2", "sample_metrics=panns,vggish",
            "sample_eval_weights=random", "sample_eval_size=tiny", "sample_steps=3"]


def _fit(out, overrides, **fields):
    cfg, model, train, val = tiny_run(out, overrides, **fields)
    trainer = Trainer(model, cfg, train, val)
    try:
        history = trainer.fit(quiet=True)
    finally:
        trainer.close()
    return model, history


def test_samples_are_written_scored_and_logged(tmp_path):
    out = tmp_path / "run"
    (out / "samples" / ".step_00000002.tmp" / "generated").mkdir(parents=True)  # left by a killed run
    _, history = _fit(out, SAMPLING)
    for step in (2, 4):
        folder = out / "samples" / f"step_{step:08d}"
        gen = sorted(p.name for p in (folder / "generated").glob("*.flac"))
        assert gen == ["00000.flac", "00001.flac", "00002.flac"]
        assert sorted(p.name for p in (folder / "reference").glob("*.flac")) == gen
        results = json.loads((folder / "metrics.json").read_text())
        assert results["n_items"] == 3 and set(results["families"]) == {"panns", "vggish"}
        assert (folder / "metrics.md").is_file()
        point = next(p for p in history if p["step"] == step)
        keys = [k for k in point if k.startswith("sample/")]
        assert "sample/n" in keys and len(keys) > 3
        for k in keys:
            assert np.isfinite(point[k]), k
            if k != "sample/n":
                assert point[k] == pytest.approx(results["metrics"][k.removeprefix("sample/")])
    assert not list((out / "samples").glob(".step_*"))  # the stale temporary folder is gone
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any("sample/n" in p for p in logged)
    # the references are the same clips each time: the second sampling reuses their embeddings
    second = json.loads((out / "samples" / "step_00000004" / "metrics.json").read_text())
    assert second["cache"]["hits"] > 0


def test_sampling_leaves_training_unchanged(tmp_path):
    """Sampling draws from its own generators and restores the online weights after the EMA swap."""
    a, _ = _fit(tmp_path / "a", SAMPLING)
    b, _ = _fit(tmp_path / "b", ["sample_every=0"])
    ta, tb = trainables(a), trainables(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k


def test_samples_do_not_depend_on_batching_or_sharding(tmp_path):
    """One noise draw per clip, seeded by its index: the files are the same whatever the batch size or
    the share of clips a rank generates."""
    cfg, model, _, val = tiny_run(tmp_path, SAMPLING)
    model.eval()
    outs = []
    for bs, shares in ((3, [[0, 1, 2]]), (1, [[0, 2], [1]])):
        cfg.sample_batch_size = bs
        sampler = ValidationSampler(cfg, tmp_path / f"bs{bs}")
        folder = tmp_path / f"bs{bs}" / "files"
        (folder / "generated").mkdir(parents=True)
        (folder / "reference").mkdir()
        for share in shares:
            sampler.generate(model, val, share, folder, torch.device("cpu"), contextlib.nullcontext)
        outs.append({p.name: sf.read(p)[0] for p in sorted((folder / "generated").glob("*.flac"))})
    assert outs[0].keys() == outs[1].keys() and len(outs[0]) == 3
    for k in outs[0]:
        np.testing.assert_allclose(outs[0][k], outs[1][k], atol=1e-5)
    first, second = outs[0]["00000.flac"], outs[0]["00001.flac"]
    assert not np.allclose(first, second)  # each clip its own noise and conditions


def test_item_names_keep_order_and_ids():
    assert item_name(7, {"id": "solo/violin 01"}) == "00007_solo_violin_01"
    assert item_name(3, {"latent_mean": torch.zeros(1)}) == "00003"


@pytest.mark.parametrize("override, message", [
    ("sample_metrics=nope", "unknown metric family"),
    ("sample_metrics=[]", "sample_metrics is empty"),
    ("sample_eval_size=huge", "full or tiny"),
    ("sample_cfg=nan", "sample_cfg"),
])
def test_bad_sampling_settings_fail_before_training(tmp_path, override, message):
    with pytest.raises(InputError, match=message):
        cfg, model, train, val = tiny_run(tmp_path, [*SAMPLING, override])
        Trainer(model, cfg, train, val)
    assert not (tmp_path / "ckpt_last.pt").exists()


def test_missing_evaluation_weights_fail_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGANET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("SAGANET_OFFLINE", "1")  # never a download at test time, however pytest is started
    cfg, model, train, val = tiny_run(tmp_path / "run", [*SAMPLING[:-3], "sample_steps=3"])
    assert cfg.sample_eval_weights == "official"
    with pytest.raises(CheckpointError, match=r"sample_metrics=panns,vggish: evaluation weights .* sample_every=0"):
        Trainer(model, cfg, train, val)


def test_sampling_is_off_when_it_cannot_happen(tmp_path):
    cfg, model, train, val = tiny_run(tmp_path, [*SAMPLING, "sample_every=100"])  # more than `steps`
    assert Trainer(model, cfg, train, val).val_sampler is None


def test_released_dits_decode_with_the_released_codec(tmp_path):
    """A SAGANet DiT trains without a codec (features come precomputed); sampling builds the released
    44.1 kHz codec, and without that factory the set-up is refused up front."""
    from saganet.train.config import load_config

    cfg = load_config("sms_encoder", [f"out_dir={tmp_path}", "init=random", "sample_every=1", "steps=1",
                                      "sample_eval_weights=random", "sample_eval_size=tiny",
                                      "sample_metrics=panns", "device=cpu"])
    assert sampling_codec_factory(cfg) is not None
    assert sampling_codec_factory(load_config("tiny_test")) is None
    model = build_training_model(load_config("tiny_test"))  # small stand-in: only its codec matters here
    model.codec = _Precomputed("codec")  # what the SAGANet DiTs train with
    with pytest.raises(InputError, match="no codec"):
        ValidationSampler(cfg, tmp_path).check(model)
    ValidationSampler(cfg, tmp_path, sampling_codec_factory(cfg)).check(model)  # accepted with the factory
