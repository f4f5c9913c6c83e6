"""Configs (shipped set-ups, reference hyperparameters, overrides, bad keys) and the run folder's safety:
bad/malicious/truncated checkpoints are one-line errors, temp files of killed saves never block a run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import tiny_run

from saganet.errors import CheckpointError, InputError
from saganet.train import Trainer, load_config
from saganet.train.config import parse_override, shipped_config

PUBLISHED = ("sms_encoder", "sms_lora", "sms_medium_encoder", "sms_medium_lora", "sms_full")


@pytest.mark.parametrize("name", [*PUBLISHED, "finetune_lora", "toyworld", "tiny_test", "reference"])
def test_shipped_configs_load(name):
    cfg = load_config(name)
    assert shipped_config(f"{name}.toml").is_file()
    assert cfg.dit_mode in ("frozen", "lora", "full")


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_setups_use_reference_hyperparameters(name):
    c = load_config(name)
    assert (c.batch_size, c.lr, c.warmup_steps, c.lr_milestones, c.lr_gamma) == (4, 1e-5, 2500, [60000, 65000], 0.1)
    assert (c.clip_grad_norm, c.weight_decay, c.betas, c.adam_eps) == (1.0, 1e-6, (0.9, 0.95), 1e-6)
    assert (c.null_text_p, c.null_video_p, c.steps, c.init, c.encoder_mode) == (0.5, 0.1, 70000, "mmaudio", "additions")
    expected = {"sms_encoder": ("small_44k_sa", "frozen"), "sms_lora": ("small_44k_sa", "lora"),
                "sms_medium_encoder": ("medium_44k_sa", "frozen"), "sms_medium_lora": ("medium_44k_sa", "lora"),
                "sms_full": ("small_44k_sa", "full")}
    assert (c.model, c.dit_mode) == expected[name]
    assert load_config(name, ["precision=fp32"]).adam_eps == 1e-8


def test_overrides():
    cfg = load_config("sms_lora", ["lr=3e-4", "betas=[0.9, 0.99]", "dit_mode=full", "max_minutes=5",
                                   "lr_milestones=[10, 20]", "out_dir=runs/x y"])
    assert (cfg.lr, cfg.betas, cfg.dit_mode, cfg.max_minutes) == (3e-4, (0.9, 0.99), "full", 5.0)
    assert cfg.lr_milestones == [10, 20] and cfg.out_dir == "runs/x y"
    assert parse_override("max_minutes=none") == ("max_minutes", None)


@pytest.mark.parametrize("item, match", [
    ("lr", "KEY=VALUE"), ("bogus=1", "unknown key 'bogus'"), ("lr=fast", "needs a number"),
    ("lr=nan", "finite"), ("steps=0", "steps must be >= 1"), ("dit_mode=half", "choose one of"),
    ("null_text_p=1.5", r"\[0, 1\]"), ("steps=1.5", "wrong type"), ("lr_milestones=[5, 2]", "increasing"),
    ("max_minutes=inf", "positive"), ("sample_every=-1", "sample_every must be >= 0"),
    ("sample_n=-5", "sample_n must be >= 0"), ("sample_steps=0", "sample_steps"), ("sample_batch_size=0", "sample_batch"),
    ("sample_cfg=inf", "sample_cfg"), ("sample_cfg=-1", "sample_cfg"), ("sample_metrics=[1, 2]", "wrong type"),
    ("sample_metrics=[]", "sample_metrics is empty"), ("sample_eval_size=huge", "full or tiny"),
    ("sample_eval_weights=/no/such.pth", "official, random or a checkpoint file"),
    ("sample_eval_size=tiny", "needs sample_eval_weights=random"),
])
def test_bad_overrides_are_one_line_input_errors(item, match):
    with pytest.raises(InputError, match=match) as e:
        load_config("sms_encoder", [item])
    assert "\n" not in str(e.value)


def test_bad_config_files(tmp_path):
    (tmp_path / "a.toml").write_text('base = "sms_lora.toml"\nlr = 2e-5\n')
    assert load_config(tmp_path / "a.toml").lr == 2e-5 and load_config(tmp_path / "a.toml").dit_mode == "lora"
    (tmp_path / "b.toml").write_text("lr = [1\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_config(tmp_path / "b.toml")
    (tmp_path / "c.toml").write_text('typo_key = 1\n')
    with pytest.raises(InputError, match="unknown key 'typo_key'"):
        load_config(tmp_path / "c.toml")
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "d.toml").write_text('base = "d.toml"\n')
    with pytest.raises(InputError, match="includes itself"):
        load_config(tmp_path / "d.toml")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize("kind", ["garbage", "truncated", "malicious", "not_a_state", "other_model"])
def test_bad_checkpoint_in_out_dir_is_one_line(tmp_path, kind):
    cfg, model, train, val = tiny_run(tmp_path / "run", steps=1, ckpt_every=1, val_every=100)
    ckpt = tmp_path / "run" / "ckpt_last.pt"
    ckpt.parent.mkdir(parents=True)
    if kind in ("truncated", "other_model"):
        Trainer(model, cfg, train, val).fit(quiet=True)
        if kind == "truncated":
            data = ckpt.read_bytes()
            ckpt.write_bytes(data[: len(data) // 2])
        cfg, model, train, val = tiny_run(tmp_path / "run", dit_mode="full" if kind == "other_model" else "lora")
    elif kind == "garbage":
        ckpt.write_bytes(b"\x00garbage" * 100)
    elif kind == "malicious":
        torch.save({"x": _Evil()}, ckpt)
    else:
        torch.save({"model": torch.zeros(2)}, ckpt)
    trainer = Trainer(model, cfg, train, val)
    with pytest.raises(CheckpointError) as e:
        trainer.fit(quiet=True)
    msg = str(e.value)
    assert "\n" not in msg and "ckpt_last.pt" in msg and ("delete" in msg)
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_cli_bad_checkpoint_one_line_exit_2(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    torch.save({"x": _Evil()}, out / "ckpt_last.pt")
    r = subprocess.run([sys.executable, "-m", "saganet.train", "tiny_test", f"out_dir={out}", "toy_n_train=2",
                        "toy_n_val=1", "-q"], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 2, r.stderr[-2000:]
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("saganet: error:")]
    assert len(err) == 1 and "Traceback" not in r.stderr and "ckpt_last.pt" in err[0]
    assert not (tmp_path / "pwned").exists()


def test_stale_temp_of_a_killed_first_save_is_cleaned(tmp_path):
    """A kill during the first save leaves an empty hidden temp (atomic write); it blocks nothing and goes."""
    out = tmp_path / "run"
    out.mkdir()
    (out / ".ckpt_last.k1ll3d.pt").write_bytes(b"")
    (out / ".weights_last.abc.pth").write_bytes(b"")
    cfg, model, train, val = tiny_run(out, steps=1, ckpt_every=1, val_every=100)
    Trainer(model, cfg, train, val).fit(quiet=True)
    assert not list(out.glob(".*"))
    assert (out / "ckpt_last.pt").stat().st_size > 0


def test_top_k_by_validation_loss(tmp_path):
    cfg, model, train, val = tiny_run(tmp_path, steps=4, val_every=1, ckpt_every=4, keep_top_k=2)
    trainer = Trainer(model, cfg, train, val)
    trainer.fit(quiet=True)
    vals = {p["step"]: p["val_loss"] for p in trainer.history if "val_loss" in p}
    best = sorted(vals, key=vals.get)[:2]
    assert sorted(e["step"] for e in trainer.top_k) == sorted(best)
    kept = sorted(p.name for p in tmp_path.glob("ckpt_step*.pt"))
    assert kept == sorted(f"ckpt_step{s:08d}.pt" for s in best)
    assert (tmp_path / "weights_best.pth").is_file()


@pytest.mark.parametrize("item, match", [
    ("sample_cfg=nan", "sample_cfg"), ("sample_metrics=nope", "unknown metric family"),
    ("sample_eval_weights=missing.pth", "official, random or a checkpoint file"),
])
def test_cli_bad_sampling_setting_one_line_exit_2_nothing_written(tmp_path, item, match):
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "saganet.train", "tiny_test", f"out_dir={out}", "toy_n_train=2",
                        "toy_n_val=1", "sample_every=2", "sample_eval_weights=random", "sample_eval_size=tiny",
                        item, "-q"], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 2, r.stderr[-2000:]
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("saganet: error:")]
    assert len(err) == 1 and "Traceback" not in r.stderr and match.split()[0] in err[0], r.stderr[-1000:]
    assert not out.exists()
