"""Trainer: loss goes down, resume is exact, trainable-part modes, and each defect of issue 16 (shared CLIP
save, noise generator device, trainables-only checkpoints, LR milestones after warm-up, bf16 on CPU)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from train_helpers import tiny_run, trainables

from saganet.models.toy import ToyModelConfig, build_toy_model
from saganet.toyworld.dataset import generate_arrays
from saganet.toyworld.training import ToyDataset, compute_features, set_latent_stats
from saganet.toyworld.world import WorldConfig
from saganet.train import Trainer, load_config
from saganet.train.state import load_state
from saganet.train.trainer import lr_factor, set_trainable_parts

WORLD = WorldConfig(duration=0.96, frame_size=64)
SMALL = dict(duration=0.96, hidden_dim=64, depth=2, fused_depth=1, num_heads=1,
             encoder=dict(embed_dim=24, depth=1, num_heads=2, cross_attn_heads=12))


def _toy(n: int = 8):
    torch.manual_seed(0)
    model = build_toy_model(ToyModelConfig(segaware=True, **SMALL))
    feats = compute_features(model, generate_arrays(n, seed=5, kind="solo", cfg=WORLD))
    set_latent_stats(model, feats.latent)
    return model, ToyDataset(feats)


def _toy_cfg(tmp_path, **kw):
    base = dict(out_dir=str(tmp_path), model="toy", init="random", use_lora=False, steps=4, batch_size=4, lr=2e-3,
                warmup_steps=0, lr_milestones=[], dit_mode="full", encoder_mode="all", null_video_p=0.0,
                null_text_p=0.0, val_every=1000, ckpt_every=1000, log_every=1, precision="fp32", device="cpu",
                num_workers=0, ema=False, tensorboard=False, seed=0)
    return load_config(None, **{**base, **kw})


def test_loss_decreases_on_fixed_data(tmp_path):
    model, data = _toy()
    trainer = Trainer(model, _toy_cfg(tmp_path, steps=25), data, data)
    before = trainer.validate()
    trainer.fit(quiet=True)
    after = trainer.validate()
    assert after < 0.8 * before, (before, after)
    assert (tmp_path / "ckpt_last.pt").is_file() and (tmp_path / "weights_last.pth").is_file()
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert len(lines) == 25


def test_trainable_modes():
    model, _ = _toy(n=2)
    n_dit = sum(p.numel() for p in model.dit.parameters())
    params = set_trainable_parts(model, "frozen", "additions")
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(("cross_attn_layers" in n) or ("patch_embed_3d_mask" in n) for n in names)
    assert any("cross_attn_layers" in n for n in names) and any("patch_embed_3d_mask" in n for n in names)
    assert [id(p) for p in params] == [id(p) for p in model.parameters() if p.requires_grad]
    params = set_trainable_parts(model, "full", "none")
    assert not any(p.requires_grad for p in model.sync_encoder.parameters())
    assert not model.dit.latent_mean.requires_grad and not model.dit.empty_string_feat.requires_grad
    stats = model.dit.latent_mean.numel() + model.dit.latent_std.numel() + model.dit.empty_string_feat.numel()
    assert sum(p.numel() for p in params) == n_dit - stats
    with pytest.raises(ValueError):
        set_trainable_parts(model, "bogus", "none")


def test_resume_continues_exactly(tmp_path):
    """Stop after 3 steps (mid-epoch: 8 clips, 2 per batch), rebuild everything, resume to 6 == straight to 6."""
    cfg, model, train, val = tiny_run(tmp_path / "a", steps=6, ckpt_every=3, val_every=3)
    Trainer(model, cfg, train, val).fit(quiet=True)
    cfg_b, model_b, train_b, val_b = tiny_run(tmp_path / "b", steps=3, ckpt_every=3, val_every=3)
    Trainer(model_b, cfg_b, train_b, val_b).fit(quiet=True)
    cfg_c, model_c, train_c, val_c = tiny_run(tmp_path / "b", steps=6, ckpt_every=3, val_every=3)
    resumed = Trainer(model_c, cfg_c, train_c, val_c)
    resumed.fit(quiet=True)
    assert resumed.step == 6 and resumed.epoch == 1
    a, c = trainables(model), trainables(model_c)
    for k in a:
        torch.testing.assert_close(a[k], c[k], rtol=0, atol=0, msg=k)
    sa, sc = load_state(tmp_path / "a" / "ckpt_last.pt"), load_state(tmp_path / "b" / "ckpt_last.pt")
    for k, v in sa["ema"].items():  # the EMA too
        torch.testing.assert_close(v, sc["ema"][k], rtol=0, atol=0, msg=k)
    # log points of the stopped run are kept, none doubled
    import json

    ha, hc = json.loads(sa["history"]), json.loads(sc["history"])
    assert [(p["step"], p["loss"], p.get("val_loss")) for p in ha] == [(p["step"], p["loss"], p.get("val_loss"))
                                                                        for p in hc]
    assert [json.loads(x)["step"] for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()] == list(range(1, 7))


def test_save_with_clip_as_frame_and_text_encoder(tmp_path):
    """Defect: the tiny/released models share one CLIP module as frame and text encoder; safetensors
    refuses the model's state dict, so saving the whole model failed. Checkpoints now hold trainables."""
    cfg, model, train, val = tiny_run(tmp_path, steps=1, ckpt_every=1, val_every=1000)
    assert model.frame_encoder is model.text_encoder
    with pytest.raises(RuntimeError, match="share memory"):  # the old save, for the record
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "x.safetensors"))
    trainer = Trainer(model, cfg, train, val)
    trainer.fit(quiet=True)
    state = load_state(tmp_path / "ckpt_last.pt")
    assert state["step"] == 1
    assert (tmp_path / "weights_last.pth").is_file()


def test_checkpoint_holds_only_trainables(tmp_path):
    """Defect: checkpoints stored the frozen CLIP, VAE and vocoder with the trainables."""
    cfg, model, train, val = tiny_run(tmp_path, steps=1, ckpt_every=1, val_every=1000)
    trainer = Trainer(model, cfg, train, val)
    trainer.fit(quiet=True)
    state = load_state(tmp_path / "ckpt_last.pt")
    names = set(state["trainables"])
    assert names == {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith(("frame_encoder", "text_encoder", "codec")) for n in names)
    # LoRA mode + encoder additions: the LoRA tensors, qkv biases, mask embedding and gated layers only
    assert all(("lora_" in n or n.endswith("qkv.bias") or "cross_attn_layers" in n or "patch_embed_3d_mask" in n)
               for n in names), sorted(names)[:5]
    n_saved = sum(v.numel() for v in state["trainables"].values())
    assert n_saved < 0.5 * sum(p.numel() for p in model.parameters())


def test_noise_generator_on_model_device(tmp_path):
    """Defect: a CPU generator drove noise for device tensors (a crash on GPUs)."""
    cfg, model, train, val = tiny_run(tmp_path)
    trainer = Trainer(model, cfg, train, val)
    assert trainer.rng.device == trainer.device == next(model.dit.parameters()).device


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a CUDA GPU (issue 16: CUDA training is checked on machines that have one)")
def test_cuda_bf16_steps(tmp_path):
    cfg, model, train, val = tiny_run(tmp_path, device="cuda", precision="bf16", steps=2)
    trainer = Trainer(model, cfg, train, val)
    trainer.fit(quiet=True)
    assert trainer.rng.device.type == "cuda" and trainer.opt.defaults.get("fused")
    assert all(torch.isfinite(torch.tensor(p["loss"])) for p in trainer.history)


def test_lr_milestones_count_after_warmup():
    """Defect: milestones counted from step 0. The reference's SequentialLR restarts MultiStepLR's counter
    at the end of the warm-up: x0.1 at global steps 62,500 and 67,500 for milestones [60000, 65000]."""
    cfg = load_config("sms_encoder")
    f = lambda s: lr_factor(s, cfg.warmup_steps, cfg.lr_milestones, cfg.lr_gamma)  # noqa: E731
    assert f(0) == pytest.approx(1 / 2501) and f(2499) == pytest.approx(2500 / 2501)
    assert f(2500) == 1.0 and f(60_000) == 1.0 and f(62_499) == 1.0
    assert f(62_500) == pytest.approx(0.1) and f(67_499) == pytest.approx(0.1) and f(67_500) == pytest.approx(0.01)


def test_scheduler_follows_lr_factor(tmp_path):
    cfg, model, train, val = tiny_run(tmp_path, steps=5, warmup_steps=2, lr_milestones=[1], lr=1.0,
                                      ckpt_every=100, val_every=100)
    trainer = Trainer(model, cfg, train, val)
    trainer.fit(quiet=True)
    lrs = [p["lr"] for p in trainer.history]  # lr after each step = factor(step)
    assert lrs == pytest.approx([2 / 3, 1.0, 0.1, 0.1, 0.1])


def test_bf16_autocast_steps_on_cpu(tmp_path):
    cfg, model, train, val = tiny_run(tmp_path, precision="bf16", steps=2, val_every=2, ckpt_every=2)
    trainer = Trainer(model, cfg, train, val)
    before = trainables(model)
    assert trainer.opt.defaults["eps"] == 1e-6  # the reference's eps with mixed precision
    trainer.fit(quiet=True)
    after = trainables(model)
    assert all(torch.isfinite(torch.tensor(p["loss"])) for p in trainer.history)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(v.dtype == torch.float32 for v in after.values())  # weights stay fp32 under autocast


def test_fp32_eps(tmp_path):
    cfg, model, train, val = tiny_run(tmp_path, precision="fp32")
    assert Trainer(model, cfg, train, val).opt.defaults["eps"] == 1e-8
