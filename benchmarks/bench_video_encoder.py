"""Benchmark: segmentation-aware sync encoder, FULL-size config, random weights, CPU.

Encodes a 5 s clip (125 frames at 25 fps -> 14 segments -> 112 features) and prints the wall time
and the peak resident memory. Usage:

    .venv/bin/python benchmarks/bench_video_encoder.py [--chunk-size 14] [--frames 125] [--plain]
"""

from __future__ import annotations

import argparse
import time

import torch

from memory import peak_rss_mib  # benchmarks/memory.py (scripts run from benchmarks/ on sys.path)
from saganet.focal import focal_crop
from saganet.models.motionformer import MotionFormerConfig, Synchformer
from saganet.models.segaware import SynchformerWithContext
from saganet.models.sync_encoder import SegAwareSyncEncoder, SyncEncoder, num_segments


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunk-size", type=int, default=14, help="segments per forward call")
    ap.add_argument("--frames", type=int, default=125)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave default)")
    ap.add_argument("--plain", action="store_true", help="MMAudio baseline (no masks, one pass)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = MotionFormerConfig.full()
    t0 = time.perf_counter()
    if args.plain:
        enc = SyncEncoder(Synchformer(cfg), chunk_size=args.chunk_size).eval()
    else:
        enc = SegAwareSyncEncoder(SynchformerWithContext(cfg), chunk_size=args.chunk_size).eval()
    n_params = sum(p.numel() for p in enc.parameters())
    t_build = time.perf_counter() - t0

    T, S = args.frames, num_segments(args.frames)
    frames = torch.rand(1, T, 3, 224, 224) * 2 - 1
    masks = torch.zeros(1, T, 1, 224, 224)
    masks[..., 60:150, 80:170] = 1.0
    rss_before = peak_rss_mib()
    with torch.inference_mode():
        t0 = time.perf_counter()
        if args.plain:
            feats = enc(frames)
            t_crop = 0.0
        else:
            dx, dm, _ = focal_crop(frames, masks)
            t_crop = time.perf_counter() - t0
            feats = enc(frames, masks, dx, dm)
        t_enc = time.perf_counter() - t0
    print(f"model: {'plain Synchformer' if args.plain else 'SynchformerWithContext'} "
          f"{n_params / 1e6:.1f} M params (built in {t_build:.1f} s), threads {torch.get_num_threads()}")
    print(f"clip: {T} frames -> {S} segments, chunk size {args.chunk_size} -> features {tuple(feats.shape)}")
    print(f"wall time: {t_enc:.1f} s ({t_enc / S:.2f} s/segment; focal crop {t_crop:.2f} s)")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB (after building the model: {rss_before:.0f} MiB)")


if __name__ == "__main__":
    main()
