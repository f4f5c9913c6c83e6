"""Seconds per training step and peak memory of SAGANet small (`small_44k_sa`, random weights, full size).

    .venv/bin/python benchmarks/bench_train.py --steps 2 [--device cpu] [--modes encoder,lora] [--precisions fp32,bf16]

Batch 1, 5 s clips (125 sync frames at 224², precomputed CLIP/text/latents as `saganet data extract` gives
them), through the real `Trainer` (sync encoder forward with its additions trainable, DiT flow loss, AdamW,
EMA). Each (mode, precision) runs in its own process so that the peak RSS (CPU) or peak CUDA memory is its
own. Modes: `encoder` = the reference default (mask embedding + gated layers), `lora` = + DiT LoRA.
The projection to the reference's 70,000 steps (global batch 4) is `4 x s/step x 70,000` on one such
device with no data-loading stalls: PROJECTED, not measured. bf16 autocast on a CPU without native bf16
support is much slower than fp32 (emulated); measure few steps there.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE_STEPS, REFERENCE_BATCH = 70_000, 4


def one(mode: str, precision: str, steps: int, device: str, duration: float, warmup: int) -> dict:
    import torch
    from torch.utils.data import Dataset

    from memory import peak_rss_mib  # benchmarks/memory.py
    from saganet.train import Trainer, load_config
    from saganet.train.recipe import build_training_model

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config("sms_encoder" if mode == "encoder" else "sms_lora", [
            f"out_dir={out}", "init=random", f"precision={precision}", f"device={device}", "batch_size=1",
            f"steps={steps + 1}", "num_workers=0", "ckpt_every=1000000", "val_every=1000000", "log_every=1",
            "warmup_steps=0", "tensorboard=false"])
        model = build_training_model(cfg)
        seq, d, S = model.seq_for(duration), model.dit.cfg, model.sync_size
        T = int(seq.duration * seq.sync_frame_rate + 1e-6)
        g = torch.Generator().manual_seed(0)
        masks = torch.zeros(T, 1, S, S)
        masks[:, :, 60:160, 50:150] = 1
        item = {"latent_mean": torch.randn(seq.latent_seq_len, d.latent_dim, generator=g),
                "latent_std": torch.rand(seq.latent_seq_len, d.latent_dim, generator=g) * 0.1,
                "clip_f": torch.randn(seq.clip_seq_len, d.clip_dim, generator=g),
                "text_f": torch.randn(d.text_seq_len, d.text_dim, generator=g),
                "sync_frames": torch.rand(T, 3, S, S, generator=g) * 2 - 1, "masks": masks,
                "detail_frames": torch.rand(T, 3, S, S, generator=g) * 2 - 1, "detail_masks": masks.clone()}
        with torch.no_grad():
            model.dit.latent_mean.zero_()
            model.dit.latent_std.fill_(1.0)

        class Repeat(Dataset):
            def __len__(self) -> int:
                return 2

            def __getitem__(self, i: int) -> dict:
                return item

        trainer = Trainer(model, cfg, Repeat())
        n_train = sum(p.numel() for p in trainer.params)
        trainer.model.train()
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(warmup):
            trainer.train_step()  # warm-up (allocations, oneDNN/cuDNN kernel choice)
        warm = time.perf_counter() - t0
        times = []
        for _ in range(steps):
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            trainer.train_step()
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        mem = (torch.cuda.max_memory_allocated() / 2**20 if trainer.device.type == "cuda" else peak_rss_mib())
        return {"mode": mode, "precision": precision, "duration": duration, "segments": seq.num_sync_segments, "device": str(trainer.device), "trainable": n_train,
                "warmup_s": warm, "warmup_steps": warmup, "s_per_step": sum(times) / len(times), "steps": steps, "peak_mib": mem,
                "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    p.add_argument("--bf16-steps", type=int, default=None, help="timed steps with bf16 (default: --steps)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (0: the timed step is the first)")
    p.add_argument("--duration", type=float, default=5.0,
                   help="clip seconds (5 = the reference; shorter to fit a small machine's memory)")
    p.add_argument("--modes", default="encoder,lora")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per configuration")
    p.add_argument("--one", nargs=2, metavar=("MODE", "PRECISION"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.steps, args.device, args.duration, args.warmup)))
        return
    rows = []
    for precision in args.precisions.split(","):
        for mode in args.modes.split(","):
            steps = args.bf16_steps if precision == "bf16" and args.bf16_steps else args.steps
            cmd = [sys.executable, __file__, "--one", mode, precision, "--steps", str(steps), "--device", args.device,
                   "--duration", str(args.duration), "--warmup", str(args.warmup)]
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                                   cwd=Path(__file__).parent)
            except subprocess.TimeoutExpired:
                print(f"{mode} {precision}: over {args.timeout:.0f} s, skipped")
                continue
            if r.returncode:
                why = "killed (out of memory?)" if r.returncode in (-9, 137) else r.stderr.strip().splitlines()[-1:]
                print(f"{mode} {precision} ({args.duration:g} s): failed with code {r.returncode}: {why}")
                continue
            rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nclip {args.duration:g} s")
    print("\n| mode | precision | device | trainable params | s/step (batch 1, measured) | peak memory MiB "
          "(measured) | 70k steps at global batch 4 (PROJECTED) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        proj_h = r["s_per_step"] * REFERENCE_BATCH * REFERENCE_STEPS / 3600
        print(f"| {r['mode']} | {r['precision']} | {r['device']} ({r['threads']} threads) | {r['trainable'] / 1e6:.2f} M "
              f"| {r['s_per_step']:.1f} (mean of {r['steps']} after {r['warmup_steps']} warm-up) | {r['peak_mib']:.0f} "
              f"| {proj_h:.0f} h = {proj_h / 24:.1f} days |")


if __name__ == "__main__":
    main()
