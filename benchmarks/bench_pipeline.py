"""The whole pipeline at full size (random weights, released architectures of saganet_small) on a 5 s clip:
per-stage seconds (decode, CLIP, text, sync encoder, DiT, VAE, vocoder) and peak RSS for 1, 2 and 3 objects,
against running each object as an independent process (what users of the reference do), in one run.

    .venv/bin/python benchmarks/bench_pipeline.py [--duration 5] [--steps 25] [--objects 1 2 3] [--threads N]

Runs: (A) a fresh subprocess loads the model and generates one object: the cost of one independent run,
T1; (B) one process loads the model once and generates n objects of one clip together, from a cold cache:
T(n), compared with n * T1; (C) in that process, one more object on the clip already processed (decoded
frames, CLIP and text features reused): the cost of an added object, compared with T1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from memory import peak_rss_mib  # benchmarks/memory.py (scripts run from benchmarks/ on sys.path)

STAGES = ("load", "decode", "clip", "text", "sync", "dit", "vae", "vocoder")


def build_full_size_random(seed: int = 0):
    """saganet_small's modules at full size with random weights (no files needed)."""
    import open_clip

    from saganet.codec import MelVAECodec
    from saganet.configs import dit_config, sequence_config_for
    from saganet.models import clip as clip_models
    from saganet.models.bigvgan import BIGVGAN_V2_44K, BigVGAN
    from saganet.models.dit import MMDiT
    from saganet.models.generator import AudioGenerator
    from saganet.models.mel import MelConverter
    from saganet.models.motionformer import MotionFormerConfig
    from saganet.models.segaware import SynchformerWithContext
    from saganet.models.sync_encoder import SegAwareSyncEncoder
    from saganet.models.vae import VAE

    torch.manual_seed(seed)
    cfg = open_clip.get_model_config("ViT-H-14-378-quickgelu")
    cfg["vision_cfg"]["image_size"] = 384  # DFN5B-CLIP-ViT-H-14-384
    clip = clip_models.from_config(cfg, tokenizer=clip_models.DEFAULT_TOKENIZER)
    dit = MMDiT(dit_config("small_44k_sa"), latent_mean=torch.zeros(40), latent_std=torch.ones(40))
    sync = SegAwareSyncEncoder(SynchformerWithContext(MotionFormerConfig.full()))
    vae = VAE.from_preset("44k").drop_encoder().remove_weight_norm()
    codec = MelVAECodec(MelConverter.from_preset("44k"), vae, BigVGAN(BIGVGAN_V2_44K, version=2).remove_weight_norm())
    return AudioGenerator(dit, sync, clip, clip, codec, sequence_config_for("small_44k_sa"), clip_size=384,
                          sync_size=224, focal_mode="reference").eval()


def write_clip(path: Path, duration: float) -> None:
    from saganet.io.writers import write_video

    rng = np.random.default_rng(0)
    n = int(round(duration * 25))
    frames = np.repeat(rng.integers(0, 255, (n, 36, 64, 3), dtype=np.uint8), 10, axis=1).repeat(10, axis=2)
    write_video(path, frames, 25)


def object_masks(video, n: int):
    """n boxes side by side: each object its own region of the frame."""
    from saganet.io.masks import ObjectMask

    T, _, S, _ = video.sync_frames.shape
    out = []
    for k in range(n):
        m = torch.zeros(T, 1, S, S)
        w = S // (n + 1)
        m[..., S // 4: 3 * S // 4, k * w + w // 2: k * w + w // 2 + w] = 1
        out.append(ObjectMask(f"object{k + 1}", m))
    return out


def run(pipe, clip: Path, n: int, steps: int, timings: dict) -> dict[str, float]:
    from saganet.pipeline import GenerationOptions

    t0 = time.perf_counter()
    video = pipe.load_video(clip, quiet=True)
    decode = time.perf_counter() - t0
    res = pipe.generate(video, object_masks(video, n), GenerationOptions(steps=steps, progress=False))
    out = {"decode": decode, **res.timings}
    timings.update(out)
    return out


def single_process(args) -> None:
    """Run (A): one independent process, one object; prints its per-stage JSON on the last line."""
    from saganet.pipeline import SAGANetPipeline

    t0 = time.perf_counter()
    pipe = SAGANetPipeline(build_full_size_random(), "saganet_small")
    load = time.perf_counter() - t0
    t = run(pipe, Path(args.clip), 1, args.steps, {})
    print(json.dumps({"load": load, **t, "peak_rss_mib": peak_rss_mib()}))


def fmt(t: dict) -> str:
    return " ".join(f"{k} {t.get(k, 0.0):6.1f}" for k in STAGES) + f"  total {sum(t.get(k, 0.0) for k in STAGES):7.1f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--objects", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--clip", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.single:
        single_process(args)
        return
    import tempfile

    from saganet.pipeline import SAGANetPipeline

    tmp = Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    clip = tmp / "clip.mp4"
    write_clip(clip, args.duration)
    print(f"{args.duration:g} s clip, {args.steps} Euler steps with CFG, threads {torch.get_num_threads()}, "
          f"full-size random weights (saganet_small architecture)", flush=True)

    # (A) one independent process per object
    cmd = [sys.executable, __file__, "--single", "--clip", str(clip), "--steps", str(args.steps)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=Path(__file__).parent)
    single = json.loads(out.stdout.strip().splitlines()[-1])
    t1 = sum(single.get(k, 0.0) for k in STAGES)
    print(f"independent process, 1 object: {fmt(single)}  peak RSS {single['peak_rss_mib']:.0f} MiB", flush=True)

    # (B) one process, n objects together, cold cache each time
    t0 = time.perf_counter()
    pipe = SAGANetPipeline(build_full_size_random(), "saganet_small")
    load = time.perf_counter() - t0
    rows = []
    for n in args.objects:
        pipe.cache.clear_memory()
        t = {"load": load}
        run(pipe, clip, n, args.steps, t)
        total = sum(t.get(k, 0.0) for k in STAGES)
        rows.append((n, total, total / (n * t1)))
        print(f"one process, {n} object(s): {fmt(t)}  = {total / (n * t1):.2f} x {n} independent runs", flush=True)

    # (C) one more object on the clip just processed (cache warm)
    t = {}
    run(pipe, clip, 1, args.steps, t)
    added = sum(t.get(k, 0.0) for k in STAGES)
    print(f"added object on a processed clip: {fmt(t)}  = {added / t1:.2f} x the first object's run", flush=True)
    print(f"peak RSS (one process, up to {max(args.objects)} objects): {peak_rss_mib():.0f} MiB")
    print("\n| objects | one process (s) | n independent runs (s) | ratio |\n|---|---|---|---|")
    for n, total, ratio in rows:
        print(f"| {n} | {total:.0f} | {n * t1:.0f} | {ratio:.2f} |")
    print(f"| +1 on a processed clip | {added:.0f} | {t1:.0f} | {added / t1:.2f} |")


if __name__ == "__main__":
    main()
