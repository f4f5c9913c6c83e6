"""Throughput of the `saganet data` stages on CPU, in clips per minute, and the projected cost of the full SMS.

Settings (fake raw sources made from the toy world, as in tests/data):
- `toy`:  64 px, 2 s clips (the test suite's size), tiny random model for `extract`.
- `224`:  224 px, 5 s clips (the reference's clip length and sync size), tiny random model for `extract`.
Stages: ingest (PyAV cut, 1 worker and `--workers`), masks (colour segmenter, 3 key frames), verify,
focal (at the clip's size), extract (tiny model). With `--real-models`, the extract cost of the released
model's encoders is measured with random weights at full size: the 44k mel + VAE encoder on 5 s of audio and
the CLIP ViT-H-14 image tower at 384² on `--clip-frames` frames (extrapolated to the 40 frames of a 5 s
clip; the printout marks it). With `--real-clip`, ingest of the shipped 1080p URMP clip (a 5 s cut).

    .venv/bin/python benchmarks/bench_data.py [--n 6] [--settings toy,224] [--workers 2] [--real-models]

The projection for the full SMS (6,805 clips) multiplies measured per-clip times; it is labelled projected.
SAM 2 + Grounding DINO masks are not measured here (see benchmarks/bench_segment.py for SAM 2's seconds per
frame); the projection takes that figure as an input (`--sam2-s-per-frame`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from memory import peak_rss_mib  # benchmarks/memory.py (scripts run from benchmarks/ on sys.path)

REPO = Path(__file__).resolve().parents[1]
SMS_CLIPS = 6805


def build_raw(base: Path, n: int, size: int, clip_s: float) -> Path:
    """`n` clips' worth of long toy videos (two windows each) under a MUSIC21-like folder + metadata.csv."""
    from saganet.data.metadata import SMSRow, write_sms_metadata
    from saganet.io.writers import write_video
    from saganet.toyworld.world import CLASS_NAMES, WorldConfig, render_scene, sample_solo

    cfg = WorldConfig(frame_size=size, fps=25, sample_rate=16000, duration=2 * clip_s)
    rows = []
    for i in range((n + 1) // 2):
        cls = CLASS_NAMES[i % len(CLASS_NAMES)]
        rng = np.random.default_rng(i)
        scene = render_scene(sample_solo(rng, cfg, cls=cls), cfg, rng)
        write_video(base / "raw" / cls / f"vid{i:03d}.mp4", scene.video, 25, audio=scene.mix, sample_rate=16000)
        ms = int(clip_s * 1000)
        for w in range(2):
            if len(rows) < n:
                rows.append(SMSRow("music21", f"vid{i:03d}", "", cls, w * ms, (w + 1) * ms, "train"))
    write_sms_metadata(base / "metadata.csv", rows)
    return base


def timed(what: str, fn, n: int, results: dict) -> None:
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    results[what] = dt / n
    print(f"  {what:<22} {dt:7.1f} s for {n} clips = {60 * n / dt:8.1f} clips/min ({dt / n:6.2f} s/clip)",
          flush=True)


def run_setting(name: str, n: int, size: int, clip_s: float, workers: int) -> dict:
    from saganet.data.detail import FocalOptions, make_focal
    from saganet.data.extract import extract, load_model
    from saganet.data.ingest import ingest
    from saganet.data.masks import make_masks
    from saganet.data.verify import verify
    from saganet.toyworld.world import CLASSES

    palette = {c.name: c.colour for c in CLASSES}
    print(f"\n[{name}] {n} clips, {size} px, {clip_s:g} s (measured)", flush=True)
    res: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = build_raw(Path(tmp), n, size, clip_s)
        src = {"music21": base / "raw"}
        timed("ingest (1 worker)", lambda: ingest("sms", base / "metadata.csv", base / "sms1", src, workers=1,
                                                 quiet=True), n, res)
        if workers > 1:
            timed(f"ingest ({workers} workers)", lambda: ingest("sms", base / "metadata.csv", base / "sms", src,
                                                               workers=workers, quiet=True), n, res)
        else:
            os.rename(base / "sms1", base / "sms")
        root = base / "sms"
        timed("masks (colour)", lambda: make_masks(root, "color", palette=palette, quiet=True), n, res)
        timed("verify", lambda: verify(root, quiet=True), n, res)
        timed("focal", lambda: make_focal(root, FocalOptions("reference", size, max(1, size // 4)), quiet=True),
              n, res)
        model = load_model("tiny")
        timed("extract (tiny model)", lambda: extract(root, base / "feats", variant="tiny", model=model,
                                                      duration=clip_s, quiet=True), n, res)
    return res


def real_clip_ingest(results: dict) -> None:
    from saganet.data.cut import CutOptions, cut_clip

    clip = REPO.parent / "shared" / "media" / "urmp_09_jesus_tpt_vn" / "Vid_09_Jesus_tpt_vn_159092_164092.mp4"
    if not clip.is_file():
        print("\n[real clip] skipped: shipped URMP clip not found")
        return
    print("\n[real clip] 5 s cut of the shipped 1080p URMP clip (measured)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        timed("ingest 1080p (keep size)", lambda: cut_clip(clip, Path(tmp) / "a.mp4", 0.0, 5.0), 1, results)
        timed("ingest 1080p -> 360p", lambda: cut_clip(clip, Path(tmp) / "b.mp4", 0.0, 5.0,
                                                      CutOptions(max_side=640)), 1, results)


def real_model_extract(clip_frames: int, results: dict) -> None:
    """Full-size random encoders of the released model: VAE 44k encoder + mel, CLIP ViT-H-14 at 384²."""
    import open_clip

    from saganet.models.mel import MelConverter
    from saganet.models.vae import VAE

    print(f"\n[released encoders, random weights, full size] (VAE measured; CLIP measured on {clip_frames} "
          "frame(s), extrapolated to 40)", flush=True)
    mel, vae = MelConverter.from_preset("44k"), VAE.from_preset("44k").remove_weight_norm().eval()
    wav = torch.randn(1, 221184) * 0.1
    with torch.no_grad():
        vae.encode(mel(wav))
        t0 = time.perf_counter()
        vae.encode(mel(wav))
    results["vae_encode_s"] = time.perf_counter() - t0
    print(f"  VAE 44k encode, 5 s audio  {results['vae_encode_s']:.2f} s", flush=True)
    t0 = time.perf_counter()
    model = open_clip.create_model("ViT-H-14-378-quickgelu", pretrained=None).visual.eval()
    print(f"  build CLIP ViT-H-14 visual: {time.perf_counter() - t0:.1f} s, peak RSS {peak_rss_mib():.0f} MiB",
          flush=True)
    x = torch.randn(clip_frames, 3, 378, 378)
    with torch.no_grad():
        t0 = time.perf_counter()
        model(x)
    per = (time.perf_counter() - t0) / clip_frames
    results["clip_s_per_frame"] = per
    print(f"  CLIP image tower           {per:.2f} s/frame -> {40 * per:.1f} s per 5 s clip (40 frames, "
          "projected)", flush=True)


def project(results: dict, sam2_s_per_frame: float | None) -> None:
    print(f"\n[projection: full SMS, {SMS_CLIPS} clips of 5 s, 2 CPU cores] (projected from the figures above)")
    r224 = results.get("224", {})
    rows = []
    if "real" in results and "ingest 1080p -> 360p" in results["real"]:
        rows.append(("ingest (1080p source, 1 worker)", results["real"]["ingest 1080p -> 360p"]))
    elif "ingest (1 worker)" in r224:
        rows.append(("ingest (224 px source, 1 worker)", r224["ingest (1 worker)"]))
    if sam2_s_per_frame:
        # one SAM 2 session for every candidate: a forward and a backward pass over the 125 frames at most
        rows.append((f"masks SAM 2 Hiera-T ({sam2_s_per_frame:g} s/frame x 2 x 125 frames)",
                     2 * 125 * sam2_s_per_frame))
    for k in ("verify", "focal"):
        if k in r224:
            rows.append((k, r224[k]))
    if "clip_s_per_frame" in results.get("real_models", {}):
        rm = results["real_models"]
        rows.append(("extract (CLIP ViT-H 40 frames + VAE 44k)", 40 * rm["clip_s_per_frame"] + rm["vae_encode_s"]))
    total = 0.0
    for what, s in rows:
        total += s
        print(f"  {what:<58} {s:8.2f} s/clip -> {s * SMS_CLIPS / 3600:8.1f} h")
    print(f"  {'total':<58} {total:8.2f} s/clip -> {total * SMS_CLIPS / 3600:8.1f} h")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=6, help="clips per setting")
    ap.add_argument("--settings", default="toy,224")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: like the test workers)")
    ap.add_argument("--real-clip", action="store_true", help="also cut the shipped 1080p URMP clip")
    ap.add_argument("--real-models", action="store_true", help="also time the released encoders (random, full)")
    ap.add_argument("--clip-frames", type=int, default=2)
    ap.add_argument("--sam2-s-per-frame", type=float, default=None,
                    help="SAM 2 Hiera-T seconds per frame from bench_segment.py, for the projection")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    print(f"CPU: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, load average "
          f"{os.getloadavg()[0]:.1f} at start (other jobs on the machine slow every figure down)")
    results: dict = {}
    settings = {"toy": (64, 2.0), "224": (224, 5.0)}
    for s in args.settings.split(","):
        size, clip_s = settings[s]
        results[s] = run_setting(s, args.n, size, clip_s, args.workers)
    if args.real_clip:
        results["real"] = {}
        real_clip_ingest(results["real"])
    if args.real_models:
        results["real_models"] = {}
        real_model_extract(args.clip_frames, results["real_models"])
    project(results, args.sam2_s_per_frame)
    print(f"\npeak RSS {peak_rss_mib():.0f} MiB; load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    main()
