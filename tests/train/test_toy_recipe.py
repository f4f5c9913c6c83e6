"""The toy world's recipe runs on the same trainer and config format, writes a loadable toy checkpoint, and a
bad checkpoint in its output folder is one line (issue 17)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from saganet.app.cli import main
from saganet.builders import load_toy_file
from saganet.models.toy import ToyModelConfig
from saganet.toyworld.training import train_toy_model
from saganet.toyworld.world import WorldConfig
from saganet.train import load_config


def test_toyworld_config_is_the_shipped_recipe():
    from saganet.toyworld.training import RECIPE_N_TRAIN, RECIPE_STEPS

    cfg = load_config("toyworld")
    assert (cfg.steps, cfg.toy_n_train, cfg.batch_size, cfg.lr, cfg.warmup_steps) == (RECIPE_STEPS, RECIPE_N_TRAIN,
                                                                                      16, 5e-4, 100)
    # the old loop's milestone was step 1,360 counted from 0; now counted after the 100 warm-up steps
    assert cfg.warmup_steps + cfg.lr_milestones[0] == int(0.8 * RECIPE_STEPS)
    assert cfg.data == "saganet.toyworld.training:toy_datasets" and cfg.dit_mode == "full"


def test_train_toy_model_writes_a_loadable_checkpoint(tmp_path):
    world = WorldConfig(duration=0.96, frame_size=64)
    model, history = train_toy_model(tmp_path, segaware=True, n_train=4, n_val=2, steps=2, batch_size=2,
                                     world=world, quiet=True, command="test")
    assert history[-1]["step"] == 2 and "val_loss" in history[-1]  # log_every = 50: the last step only
    path = tmp_path / "saganet_tiny.safetensors"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["steps_done"] == 2 and meta["train_config"]["model"] == "toy"
    loaded = load_toy_file(path, ToyModelConfig.from_dict(meta["model"]))
    for k, v in loaded.state_dict().items():  # float16 on disk
        torch.testing.assert_close(v, model.state_dict()[k].to(v.dtype), atol=2e-3, rtol=2e-3, msg=k)
    assert (tmp_path / "ckpt_last.pt").is_file()


@pytest.mark.slow
def test_toyworld_train_bad_checkpoint_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    (out / "saganet").mkdir(parents=True)
    (out / "saganet" / "ckpt_last.pt").write_bytes(os.urandom(300))
    rc = main(["toyworld", "train", "-o", str(out), "--steps", "1", "--n-train", "16", "--sequential"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("saganet: error:")]
    assert rc == 2 and len(lines) == 1 and "ckpt_last.pt" in lines[0] and "Traceback" not in err
