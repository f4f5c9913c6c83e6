"""SAM 2.1 Hiera-T (the CPU default, real architecture, random weights) on a 25 fps clip at the processor's
resolution (1024²): seconds per frame for prompting + propagation, and peak RSS. Then the cost of
`propagate_fps` (segment fewer frames, interpolate the rest) in IoU on toy-world scenes with the colour
segmenter against the world's true masks.

    .venv/bin/python benchmarks/bench_segment.py [--frames 125] [--threads N] [--toy-scenes 6]

`--frames` bounds the SAM run (a 5 s clip has 125); with fewer frames the per-frame time is extrapolated to 5 s
(propagation cost per frame is flat once the 7-frame memory is full; the printout says which figures are
measured and which projected).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from memory import peak_rss_mib  # benchmarks/memory.py (scripts run from benchmarks/ on sys.path)


def synthetic_clip(n: int, size: int = 1024) -> np.ndarray:
    """(n, size, size, 3) uint8: a smooth background and a square moving across it."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    bg = np.stack([60 + 40 * xx, 60 + 40 * yy, 80 + 20 * xx * yy], -1)
    out = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        f = bg.copy()
        x0 = int(size * (0.2 + 0.4 * t / max(n - 1, 1)))
        f[size // 3: size // 3 + size // 5, x0: x0 + size // 5] = (230, 60, 40)
        out[t] = f.astype(np.uint8)
    return out


def bench_sam(frames: int) -> None:
    from transformers import Sam2VideoConfig, Sam2VideoModel, Sam2VideoProcessor
    from transformers.models.sam2.image_processing_sam2 import Sam2ImageProcessor
    from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

    from saganet.segment import segment_video
    from saganet.segment.sam2 import Sam2Segmenter

    t0 = time.perf_counter()
    model = Sam2VideoModel(Sam2VideoConfig()).eval()  # the defaults are the SAM 2.1 Hiera-T architecture
    proc = Sam2VideoProcessor(Sam2ImageProcessor(), Sam2VideoVideoProcessor())
    n_params = sum(p.numel() for p in model.parameters())
    print(f"build: {time.perf_counter() - t0:.1f} s, {n_params / 1e6:.1f} M parameters, "
          f"input {proc.target_size}², threads {torch.get_num_threads()}, peak RSS {peak_rss_mib():.0f} MiB")
    seg = Sam2Segmenter(model, proc, "sam2.1-tiny", "random-weights")
    clip = synthetic_clip(frames)
    rss0 = peak_rss_mib()
    t0 = time.perf_counter()
    res = segment_video(clip, [("object", "square"), ("point", "300,440")], seg, fps=25.0)
    wall = time.perf_counter() - t0
    per = res.timings["segment"] / frames
    load = os.getloadavg()[0]
    print(f"SAM 2.1 tiny, {frames} frames of 1024² (measured): total {wall:.1f} s, segment "
          f"{res.timings['segment']:.1f} s = {per:.2f} s/frame, peak RSS {peak_rss_mib():.0f} MiB "
          f"(before the clip {rss0:.0f} MiB), load average {load:.1f} on {os.cpu_count()} CPUs")
    if frames < 125:
        print(f"projected for a 5 s 25 fps clip (125 frames): {per * 125:.0f} s (per-frame time x 125); "
              f"memory grows by the decoded clip and its masks only (the session preprocesses frames lazily)")


def bench_propagate_fps(n_scenes: int) -> None:
    from saganet.segment import segment_video
    from saganet.toyworld.world import WorldConfig, render_scene, sample_multi_different

    cfg = WorldConfig()
    rows = {}
    for seed in range(n_scenes):
        rng = np.random.default_rng(1000 + seed)
        sc = render_scene(sample_multi_different(rng, cfg), cfg, rng)
        prompts = []
        for i, m in enumerate(sc.masks):
            ys, xs = np.nonzero(m[0])
            k = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))
            prompts += [("object", f"o{i}"), ("point", f"{xs[k] + 0.5},{ys[k] + 0.5}")]
        for rate in (None, 12.5, 5.0, 2.5):
            t0 = time.perf_counter()
            res = segment_video(sc.video, prompts, "color", fps=cfg.fps, propagate_fps=rate)
            dt = time.perf_counter() - t0
            for o, gt in zip(res.objects, sc.masks):
                inter, union = (o.masks & gt).sum((1, 2)), (o.masks | gt).sum((1, 2))
                iou = float(np.where(union > 0, inter / np.maximum(union, 1), 1.0).mean())
                rows.setdefault(rate, []).append((iou, dt))
    print(f"propagate_fps on {n_scenes} toy scenes (25 fps, 96², colour segmenter vs true masks, measured):")
    for rate, vals in rows.items():
        ious = np.array([v[0] for v in vals])
        print(f"  {'all frames' if rate is None else f'{rate:g} fps':>10}: mean IoU {ious.mean():.4f}, "
              f"min {ious.min():.4f}, {np.mean([v[1] for v in vals]):.2f} s per scene")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=125, help="frames of the SAM run (125 = 5 s at 25 fps)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    ap.add_argument("--toy-scenes", type=int, default=6, help="toy scenes for the propagate_fps IoU cost")
    ap.add_argument("--skip-sam", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if not args.skip_sam:
        bench_sam(args.frames)
    if args.toy_scenes:
        bench_propagate_fps(args.toy_scenes)


if __name__ == "__main__":
    main()
