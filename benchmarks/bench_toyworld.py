"""Render speed of the synthetic world: one 3-object scene (default WorldConfig: video, masks, stems, mix).
Prints the mean wall time per scene (the toy dataset renders thousands of them). A figure, not a test.

    .venv/bin/python benchmarks/bench_toyworld.py [--repeats R]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from saganet.toyworld import WorldConfig, render_scene, sample_multi_different


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    cfg = WorldConfig()
    rng = np.random.default_rng(0)
    objs = sample_multi_different(rng, cfg, n=3)
    render_scene(objs, cfg, rng)  # warm-up
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        render_scene(objs, cfg, rng)
    dt = (time.perf_counter() - t0) / args.repeats
    print(f"render_scene, 3 objects, {cfg.n_frames} frames of {cfg.frame_size}^2, {cfg.n_samples} samples: "
          f"{dt * 1000:.0f} ms per scene (mean of {args.repeats})")


if __name__ == "__main__":
    main()
