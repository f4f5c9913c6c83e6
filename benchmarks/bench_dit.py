"""Time condition preprocessing + N Euler CFG steps of the MM-DiT on CPU with random weights.

    .venv/bin/python benchmarks/bench_dit.py --variant small_44k_sa --steps 3
    .venv/bin/python benchmarks/bench_dit.py --variant tiny --steps 10

Reports seconds for preprocessing, seconds per Euler step with CFG as two network calls and as one
batched (2B) call, and the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import time

import torch

from memory import peak_rss_mib  # benchmarks/memory.py (scripts run from benchmarks/ on sys.path)
from saganet.configs import dit_config
from saganet.models.dit import MMDiT
from saganet.sampling import guided_velocity, sample


@torch.no_grad()
def bench(variant: str, steps: int, duration: float | None, batch: int, cfg_strength: float) -> None:
    cfg = dit_config(variant, duration)
    torch.manual_seed(0)
    net = MMDiT(cfg, latent_mean=torch.zeros(cfg.latent_dim), latent_std=torch.ones(cfg.latent_dim)).eval()
    n_params = sum(p.numel() for p in net.parameters())
    clip_f = torch.randn(batch, cfg.clip_seq_len, cfg.clip_dim)
    sync_f = torch.randn(batch, cfg.sync_seq_len, cfg.sync_dim)
    text_f = torch.randn(batch, cfg.text_seq_len, cfg.text_dim)
    x0 = torch.randn(batch, cfg.latent_seq_len, cfg.latent_dim)

    t0 = time.perf_counter()
    conds = net.preprocess_conditions(clip_f, sync_f, text_f)
    empty = net.get_empty_conditions(batch)
    t_pre = time.perf_counter() - t0
    print(f"{variant}: {n_params / 1e6:.2f} M params, latent/clip/sync/text = {cfg.latent_seq_len}/"
          f"{cfg.clip_seq_len}/{cfg.sync_seq_len}/{cfg.text_seq_len}, batch {batch}, "
          f"threads {torch.get_num_threads()}")
    print(f"  preprocess (cond + empty): {t_pre:.3f} s")
    fns = {b: guided_velocity(net, conds, empty, cfg_strength, batched=b) for b in (False, True)}
    for fn in fns.values():  # warm-up: allocator and kernel selection are not timed
        sample(fn, x0, 1, "euler")
    for batched, fn in fns.items():
        t0 = time.perf_counter()
        sample(fn, x0, steps, "euler")
        dt = (time.perf_counter() - t0) / steps
        mode = "1 batched call (2B)" if batched else "2 calls"
        print(f"  Euler step with CFG, {mode}: {dt:.3f} s/step")
    print(f"  peak RSS: {peak_rss_mib():.0f} MB")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="small_44k_sa")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--duration", type=float, default=None, help="seconds (default: the variant's)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--cfg", type=float, default=4.5)
    args = p.parse_args(argv)
    bench(args.variant, args.steps, args.duration, args.batch, args.cfg)


if __name__ == "__main__":
    main()
