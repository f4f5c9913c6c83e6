"""Seconds per clip for each metric family of `saganet evaluate` on CPU, real-size models with random
weights: 5 s clips (generated + reference files, 44.1 kHz FLAC), 5 s 224² videos at 25 fps for DeSync.
Per clip = one generated file and its reference through the family's models (loading, resampling,
embedding; for DeSync / IB-score also the video features), after one untimed warm-up call; "set
metrics" = a run with every embedding cached (FD's sqrtm of a D x D matrix etc., paid once per
evaluation, whatever the number of clips); model build time printed separately. Prints peak RSS. The machine may be
shared: besides wall seconds it prints CPU seconds per clip (process time, all threads), which a busy
machine inflates much less; on an idle machine wall ~ CPU / threads.

    .venv/bin/python benchmarks/bench_eval.py [--threads 2] [--clips 3] [--families panns,passt,...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from memory import peak_rss_mib  # benchmarks/memory.py (scripts run from benchmarks/ on sys.path)
from saganet.eval import EvalOptions, discover_items, make_family
from saganet.eval.runner import EvalContext

EMBEDDER = {"panns": "panns", "passt": "passt", "vggish": "vggish", "clap": "clap", "desync": "synchformer",
            "imagebind": "imagebind", "target_distractor": "panns", "toy": None}


def make_clips(root: Path, n: int, video: bool) -> None:
    from saganet.io.writers import write_video

    rng = np.random.default_rng(0)
    sr, L = 44100, 44100 * 5
    t = np.arange(L) / sr
    for d in ("gen", "ref", "videos"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        for d in ("gen", "ref"):
            x = 0.3 * np.sin(2 * np.pi * (220 + 40 * i) * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
            sf.write(str(root / d / f"c{i}.flac"), (x + 0.01 * rng.normal(size=L)).astype(np.float32), sr)
        if video:
            write_video(root / "videos" / f"c{i}.mp4", rng.integers(0, 255, (125, 224, 224, 3), dtype=np.uint8), 25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--families", default="panns,passt,vggish,clap,desync,imagebind,target_distractor,toy")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    fams = [f.strip() for f in args.families.split(",")]
    if "toy" in fams:
        import saganet.toyworld.eval_family  # noqa: F401  (registers the toy family)
    print(f"threads {torch.get_num_threads()}, {args.clips} clips of 5 s (+ references), random full-size weights, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| family | build (s) | wall s per clip | CPU s per clip | set metrics (s, once) | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_clips(root, args.clips, video=bool({"desync", "imagebind"} & set(fams)))
        items, _ = discover_items(root / "gen", root / "ref", root / "videos")
        for it in items:
            it.scene = "one_scene"  # all clips as the objects of one scene (target vs distractor)
            it.prompt = "a violin playing"
        for fam_name in fams:
            opts = EvalOptions(families=(fam_name,), weights="random", size="full", progress=False)
            ctx = EvalContext(opts, cache_dir=root / f"cache_{fam_name}")
            t0 = time.perf_counter()
            if EMBEDDER[fam_name]:
                ctx.embedder(EMBEDDER[fam_name])
            if fam_name == "toy":
                from saganet.toyworld.eval_family import _templates

                _templates()
            build = time.perf_counter() - t0
            if EMBEDDER[fam_name] and fam_name != "desync":  # one untimed call: first-call allocations
                ctx.embedder(EMBEDDER[fam_name]).embed(ctx.audio(items[0].gen, ctx.embedder(EMBEDDER[fam_name]).sample_rate))
            fam = make_family(fam_name)
            n = len(items)
            t0, c0 = time.perf_counter(), time.process_time()
            for it in items:  # audio embeddings of every generated file and its reference (cold cache)
                for kind in fam.needs:
                    ctx.embed(kind, it.gen)
                    ctx.embed(kind, it.ref)
            t1, c1 = time.perf_counter(), time.process_time()
            res = fam.compute(items, ctx)  # + video features (DeSync, IB) + the set metrics
            t2, c2 = time.perf_counter(), time.process_time()
            assert res.metrics, f"{fam_name}: no metric computed ({res.skipped or res.notes})"
            fam.compute(items, ctx)  # everything cached: the set metrics alone (FD's sqrtm, ...)
            t3, c3 = time.perf_counter(), time.process_time()
            video, video_cpu = max(0.0, (t2 - t1) - (t3 - t2)), max(0.0, (c2 - c1) - (c3 - c2))
            print(f"| {fam_name} | {build:.1f} | {((t1 - t0) + video) / n:.2f} | {((c1 - c0) + video_cpu) / n:.2f} | "
                  f"{t3 - t2:.2f} | {peak_rss_mib():.0f} |", flush=True)


if __name__ == "__main__":
    main()
