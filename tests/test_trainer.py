"""Trainer: loss goes down on a tiny toy model, checkpoints resume exactly, trainable-part modes, DDP."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from saganet.models.toy import ToyModelConfig, build_toy_model
from saganet.toyworld.dataset import generate_arrays
from saganet.toyworld.training import compute_features, set_latent_stats
from saganet.toyworld.world import WorldConfig
from saganet.train import TrainConfig, Trainer
from saganet.train.trainer import set_trainable_parts

WORLD = WorldConfig(duration=0.96, frame_size=64)
SMALL = dict(duration=0.96, hidden_dim=64, depth=2, fused_depth=1, num_heads=1,
             encoder=dict(embed_dim=24, depth=1, num_heads=2, cross_attn_heads=12))


def _setup(segaware: bool = True, n: int = 8):
    torch.manual_seed(0)
    model = build_toy_model(ToyModelConfig(segaware=segaware, **SMALL))
    feats = compute_features(model, generate_arrays(n, seed=5, kind="solo", cfg=WORLD))
    set_latent_stats(model, feats.latent)

    def sample_batch(bs, g):
        return feats.batch(torch.randint(len(feats), (bs,), generator=g))

    return model, feats, sample_batch


def _cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(out_dir=str(tmp_path), steps=4, batch_size=4, lr=2e-3, warmup_steps=0, dit_mode="full",
                encoder_mode="all", null_video_p=0.0, null_text_p=0.0, val_every=1000, ckpt_every=1000, log_every=1)
    return TrainConfig(**{**base, **kw})


def test_loss_decreases_on_fixed_batches(tmp_path):
    model, feats, sample_batch = _setup()
    val = [feats.batch(torch.arange(len(feats)))]
    trainer = Trainer(model, sample_batch, _cfg(tmp_path, steps=25), val)
    before = trainer.validate()
    trainer.fit(quiet=True)
    after = trainer.validate()
    assert after < 0.8 * before, (before, after)
    assert (tmp_path / "ckpt_last.pt").is_file() and (tmp_path / "weights_last.safetensors").is_file()


def test_resume_continues_exactly(tmp_path):
    model_a, _, batches_a = _setup()
    Trainer(model_a, batches_a, _cfg(tmp_path / "a", steps=4)).fit(quiet=True)

    model_b, _, batches_b = _setup()
    Trainer(model_b, batches_b, _cfg(tmp_path / "b", steps=2)).fit(quiet=True)
    model_c, _, batches_c = _setup()  # a fresh process would rebuild the model like this
    resumed = Trainer(model_c, batches_c, _cfg(tmp_path / "b", steps=4))
    resumed.fit(quiet=True)
    assert resumed.step == 4
    for (k, a), (_, c) in zip(model_a.state_dict().items(), model_c.state_dict().items()):
        torch.testing.assert_close(a, c, msg=k)


def test_trainable_modes():
    model, _, _ = _setup(n=2)
    n_dit = sum(p.numel() for p in model.dit.parameters())
    params = set_trainable_parts(model, "frozen", "additions")
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(("cross_attn_layers" in n) or ("patch_embed_3d_mask" in n) for n in names)
    assert any("cross_attn_layers" in n for n in names) and any("patch_embed_3d_mask" in n for n in names)
    # the returned list is exactly the parameters left trainable
    assert [id(p) for p in params] == [id(p) for p in model.parameters() if p.requires_grad]
    params = set_trainable_parts(model, "full", "none")
    assert not any(p.requires_grad for p in model.sync_encoder.parameters())
    assert not model.dit.latent_mean.requires_grad and not model.dit.empty_string_feat.requires_grad
    stats = model.dit.latent_mean.numel() + model.dit.latent_std.numel() + model.dit.empty_string_feat.numel()
    # full DiT: every DiT weight but the three data statistics, nothing else
    assert sum(p.numel() for p in params) == n_dit - stats
    assert {id(p) for p in params} <= {id(p) for p in model.dit.parameters()}
    with pytest.raises(ValueError):
        set_trainable_parts(model, "bogus", "none")


def test_ddp_two_processes(tmp_path):
    """torchrun with 2 CPU processes (gloo): both ranks step, rank 0 writes the checkpoint."""
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        torch.set_num_threads(1)
        import torch.distributed as dist
        from saganet.train.trainer import init_distributed, shutdown_distributed
        from saganet.train import TrainConfig, Trainer
        from test_trainer import _setup
        rank, world = init_distributed()
        assert world == 2
        model, feats, batches = _setup(n=4)
        cfg = TrainConfig(out_dir={str(tmp_path / 'run')!r}, steps=2, batch_size=2, warmup_steps=0,
                          encoder_mode="all", log_every=1, ckpt_every=2)
        trainer = Trainer(model, batches, cfg)
        trainer.fit(quiet=True)
        # DDP keeps replicas identical: compare a parameter across ranks
        p = next(model.dit.parameters()).detach().clone()
        other = [torch.zeros_like(p) for _ in range(world)]
        dist.all_gather(other, p)
        assert torch.equal(other[0], other[1])
        trainer.close()
        shutdown_distributed()
        sys.stdout.write(f"rank {{rank}} ok\\n")  # one write per line: the two ranks share a pipe
        sys.stdout.flush()
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "rank 0 ok" in r.stdout and "rank 1 ok" in r.stdout
    assert (tmp_path / "run" / "ckpt_last.pt").is_file()
