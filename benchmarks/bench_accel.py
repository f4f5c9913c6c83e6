"""Opt-in faster networks at full size with random weights (issue 12, item 4): int8 dynamic quantisation of
the encoders and `torch.compile` of the DiT and the sync encoder, against the exact float32 eager path.

Sections (each prints its figures; ratios are measured within one run, since machines and load differ; the
two paths run in alternating turns and the fastest turn of each counts):

* `clip`: the DFN5B ViT-H-14 image tower at 384² (the released config: `ViT-H-14-378-quickgelu` at 384),
  `--frames` random frames: seconds per frame in fp32 and with int8 linears, and the cosine between the
  fp32 and int8 frame features (mean and minimum over frames).
* `sync`: the segmentation-aware Synchformer (`MotionFormerConfig.full()`), `--segments` segments of 16
  frames with a box mask: seconds per segment fp32 / int8 and the feature cosine (per output token).
* `dit`: `small_44k_sa`, one Euler step with CFG (one batched 2B call of `predict_flow`) eager and under
  `torch.compile` (the first call's extra time is the compile time, reported apart; the inductor cache
  of an earlier run shortens it), max |difference|.
* `sync-compile`: the same segment through the compiled sync backbone (slow to compile on 2 cores).

Random weights are not trained weights: int8's deviation on the released checkpoints may differ (trained
weights have outliers that dynamic per-tensor int8 handles less well); the toy-world end-to-end check is
`bench_samplers.py --int8`.

    .venv/bin/python benchmarks/bench_accel.py --sections clip sync dit --frames 4 --segments 1
"""

from __future__ import annotations

import argparse
import copy
import gc
import time

import torch
import torch.nn.functional as F

from memory import peak_rss_mib  # benchmarks/memory.py (scripts run from benchmarks/ on sys.path)
from saganet.acceleration import quantize_linear_layers
from saganet.models.clip import CLIP_MEAN, CLIP_STD, sdpa_attention

ROUNDS = 2  # turns of (reference, faster); set by --rounds


def _timed(fn, repeats: int = 1):
    """(output of the last call, mean seconds per call)."""
    t0 = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    return out, (time.perf_counter() - t0) / repeats


def _alternate(fa, fb, rounds: int):
    """Run `fa` and `fb` in turns `rounds` times each -> (out_a, out_b, min s of a, min s of b).

    Turns and minima keep a load that drifts during the run (shared machines) out of the ratio."""
    ta, tb = [], []
    for _ in range(rounds):
        out_a, t = _timed(fa)
        ta.append(t)
        out_b, t = _timed(fb)
        tb.append(t)
    return out_a, out_b, min(ta), min(tb)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """Mean and minimum cosine between matching rows (last dim = features)."""
    c = F.cosine_similarity(a.flatten(0, -2).double(), b.flatten(0, -2).double(), dim=-1)
    return float(c.mean()), float(c.min())


def _report_int8(name: str, unit: str, n: int, t32: float, t8: float, cos: tuple[float, float]) -> None:
    print(f"{name}: fp32 {t32 / n:.2f} s/{unit}, int8 {t8 / n:.2f} s/{unit}, speed-up x{t32 / t8:.2f}; "
          f"feature cosine int8 vs fp32: mean {cos[0]:.5f}, min {cos[1]:.5f}; peak RSS {peak_rss_mib():.0f} MiB")


@torch.inference_mode()
def bench_clip(frames: int) -> None:
    import open_clip

    cfg = open_clip.get_model_config("ViT-H-14-378-quickgelu")
    vision = dict(cfg["vision_cfg"], image_size=384)
    # The image tower only: a one-layer stand-in text tower keeps 1.4 GB of unused text weights out of memory.
    torch.manual_seed(0)
    model = open_clip.CLIP(embed_dim=cfg["embed_dim"], vision_cfg=vision, quick_gelu=True,
                           text_cfg={"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1})
    visual = model.visual.eval()
    del model
    n_params = sum(p.numel() for p in visual.parameters())
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    x = (torch.rand(frames, 3, 384, 384, generator=torch.Generator().manual_seed(1)) - mean) / std

    def run() -> torch.Tensor:
        with sdpa_attention():  # as ClipEncoder.encode_frames runs it
            return F.normalize(visual(x), dim=-1)

    print(f"CLIP image tower: {n_params / 1e6:.0f} M params, {frames} frames at 384², threads {torch.get_num_threads()}")
    with sdpa_attention():
        visual(x[:1])  # warm-up (allocator, kernel choice)
    qvisual = quantize_linear_layers(copy.deepcopy(visual))

    def run_q() -> torch.Tensor:
        with sdpa_attention():
            return F.normalize(qvisual(x), dim=-1)

    run_q()  # warm-up
    f32, f8, t32, t8 = _alternate(run, run_q, ROUNDS)
    _report_int8("CLIP image features", "frame", frames, t32, t8, _cosine(f32, f8))


@torch.inference_mode()
def bench_sync(segments: int) -> None:
    frames, masks, dx, dm = _sync_inputs(segments)
    enc = _sync_encoder()
    n_params = sum(p.numel() for p in enc.parameters())
    print(f"seg-aware Synchformer: {n_params / 1e6:.0f} M params, {segments} segment(s) of 16 frames at 224², "
          f"threads {torch.get_num_threads()}")
    qenc = quantize_linear_layers(copy.deepcopy(enc))
    f32, f8, t32, t8 = _alternate(lambda: enc(frames, masks, dx, dm), lambda: qenc(frames, masks, dx, dm), ROUNDS)
    _report_int8("seg-aware sync features", "segment", segments, t32, t8, _cosine(f32, f8))


def _sync_encoder():
    from saganet.models.motionformer import MotionFormerConfig
    from saganet.models.segaware import SynchformerWithContext
    from saganet.models.sync_encoder import SegAwareSyncEncoder

    torch.manual_seed(0)
    return SegAwareSyncEncoder(SynchformerWithContext(MotionFormerConfig.full())).eval()


def _sync_inputs(segments: int):
    """Frames `(1, T, 3, 224, 224)` in [-1, 1], a box mask and its focal crops, T giving `segments` segments."""
    from saganet.focal import focal_crop

    T = 16 + 8 * (segments - 1)  # segments of 16 frames with stride 8
    g = torch.Generator().manual_seed(2)
    frames = torch.rand(1, T, 3, 224, 224, generator=g) * 2 - 1
    masks = torch.zeros(1, T, 1, 224, 224)
    masks[..., 60:150, 80:170] = 1.0
    dx, dm, _ = focal_crop(frames, masks)
    return frames, masks, dx, dm


@torch.inference_mode()
def bench_dit(steps: int, variant: str = "small_44k_sa") -> None:
    from saganet.configs import dit_config
    from saganet.models.dit import MMDiT
    from saganet.sampling import guided_velocity, sample

    cfg = dit_config(variant)
    torch.manual_seed(0)
    net = MMDiT(cfg, latent_mean=torch.zeros(cfg.latent_dim), latent_std=torch.ones(cfg.latent_dim)).eval()
    g = torch.Generator().manual_seed(3)
    clip_f = torch.randn(1, cfg.clip_seq_len, cfg.clip_dim, generator=g)
    sync_f = torch.randn(1, cfg.sync_seq_len, cfg.sync_dim, generator=g)
    text_f = torch.randn(1, cfg.text_seq_len, cfg.text_dim, generator=g)
    x0 = torch.randn(1, cfg.latent_seq_len, cfg.latent_dim, generator=g)
    conds = net.preprocess_conditions(clip_f, sync_f, text_f)
    empty = net.get_empty_conditions(1)
    fn = guided_velocity(net, conds, empty, 4.5)
    print(f"DiT {variant}: {sum(p.numel() for p in net.parameters()) / 1e6:.0f} M params, latent "
          f"{cfg.latent_seq_len} x {cfg.latent_dim}, threads {torch.get_num_threads()}")
    sample(fn, x0, 1)  # warm-up
    compiled = torch.compile(net.predict_flow)  # as saganet.acceleration.compile_networks does
    net.predict_flow = compiled
    _, t_first = _timed(lambda: sample(fn, x0, 1))

    def run(use_compiled: bool) -> torch.Tensor:
        if use_compiled:
            net.predict_flow = compiled
        else:
            del net.predict_flow  # back to the class's eager method
        return sample(fn, x0, steps)

    eager, comp, t_eager, t_comp = _alternate(lambda: run(False), lambda: run(True), ROUNDS)
    diff = float((comp - eager).abs().max())
    print(f"DiT Euler step with CFG (1 batched call): eager {t_eager / steps:.3f} s/step, compiled "
          f"{t_comp / steps:.3f} s/step, speed-up x{t_eager / t_comp:.2f}; compile (first call minus a step) "
          f"{t_first - t_comp / steps:.0f} s; max |compiled - eager| after {steps} steps {diff:.2e}; "
          f"peak RSS {peak_rss_mib():.0f} MiB")


@torch.inference_mode()
def bench_sync_compile(segments: int) -> None:
    frames, masks, dx, dm = _sync_inputs(segments)
    enc = _sync_encoder()
    backbone = enc.model
    compiled = torch.compile(backbone)  # as saganet.acceleration.compile_networks does

    def run(use_compiled: bool) -> torch.Tensor:
        enc.model = compiled if use_compiled else backbone
        return enc(frames, masks, dx, dm)

    _, t_first = _timed(lambda: run(True))
    eager, comp, t_eager, t_comp = _alternate(lambda: run(False), lambda: run(True), ROUNDS)
    diff = float((comp - eager).abs().max())
    print(f"seg-aware Synchformer: eager {t_eager / segments:.2f} s/segment, compiled {t_comp / segments:.2f} "
          f"s/segment, speed-up x{t_eager / t_comp:.2f}; compile {t_first - t_comp:.0f} s; max |compiled - eager| "
          f"{diff:.2e}; peak RSS {peak_rss_mib():.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", nargs="+", default=["clip", "sync", "dit"],
                    choices=["clip", "sync", "dit", "sync-compile"])
    ap.add_argument("--frames", type=int, default=4, help="CLIP frames")
    ap.add_argument("--segments", type=int, default=1, help="sync segments")
    ap.add_argument("--steps", type=int, default=3, help="timed DiT steps")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave default)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating timed turns of each path (min is kept)")
    args = ap.parse_args()
    global ROUNDS
    ROUNDS = args.rounds
    if args.threads:
        torch.set_num_threads(args.threads)
    for section in args.sections:
        t0 = time.perf_counter()
        {"clip": lambda: bench_clip(args.frames), "sync": lambda: bench_sync(args.segments),
         "dit": lambda: bench_dit(args.steps), "sync-compile": lambda: bench_sync_compile(args.segments)}[section]()
        print(f"  ({section}: {time.perf_counter() - t0:.0f} s)", flush=True)
        gc.collect()


if __name__ == "__main__":
    main()
