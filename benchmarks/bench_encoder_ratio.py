"""The segmentation-aware Synchformer against the plain one at full size (random weights), one segment each,
in alternating turns in one process: its cost in units of the plain encoder's, next to its cost in
floating-point operations (torch.utils.flop_counter). Two backbone passes (context + focal) plus 12 gated
layers, whose attention is joint over all 1,569 tokens of a segment (the backbone's is divided into space
and time), make the FLOP ratio; a time ratio equal to it means every part runs at the plain encoder's speed
per FLOP (the unfused attention fallback it had made the time ratio ~1.4x its FLOP ratio).

    .venv/bin/python benchmarks/bench_encoder_ratio.py [--rounds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import torch

from saganet.models.motionformer import MotionFormerConfig, Synchformer
from saganet.models.segaware import SynchformerWithContext


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = MotionFormerConfig.full()
    plain, seg = Synchformer(cfg).eval(), SynchformerWithContext(cfg).eval()
    x = torch.rand(1, 1, 16, 3, 224, 224) * 2 - 1
    m = (torch.rand(1, 1, 16, 1, 224, 224) > 0.5).float()
    # the gated layers' gates are 0 at init; give them values so their compute is not skipped by anything
    with torch.no_grad():
        for p in seg.parameters():
            if p.ndim == 0:
                p.fill_(0.1)
    from torch.utils.flop_counter import FlopCounterMode

    flops = {}
    with torch.no_grad():
        for name, fn in (("plain", lambda: plain(x)), ("segaware", lambda: seg(x, m, x, m))):
            with FlopCounterMode(display=False) as counter:
                fn()
            flops[name] = counter.get_total_flops()
    times = {"plain": [], "segaware": []}
    with torch.no_grad():
        plain(x)
        seg(x, m, x, m)  # warm-up
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            plain(x)
            times["plain"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            seg(x, m, x, m)
            times["segaware"].append(time.perf_counter() - t0)
    ratios = [s / p for s, p in zip(times["segaware"], times["plain"])]
    print(f"threads {torch.get_num_threads()}, {args.rounds} alternating rounds, one 16-frame segment at 224²")
    print("plain s/segment:     " + ", ".join(f"{t:.2f}" for t in times["plain"]))
    print("segaware s/segment:  " + ", ".join(f"{t:.2f}" for t in times["segaware"]))
    median = sorted(ratios)[len(ratios) // 2]
    flop_ratio = flops["segaware"] / flops["plain"]
    print(f"segaware / plain time: {', '.join(f'{r:.2f}' for r in ratios)} (median {median:.2f})")
    print(f"GFLOPs per segment: plain {flops['plain'] / 1e9:.0f}, segaware {flops['segaware'] / 1e9:.0f} "
          f"(ratio {flop_ratio:.2f})")
    print(f"time ratio / FLOP ratio: {median / flop_ratio:.2f} (1.00: the segmentation-aware encoder runs at the "
          "plain encoder's speed per FLOP)")


if __name__ == "__main__":
    main()
