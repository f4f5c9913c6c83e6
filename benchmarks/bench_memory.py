"""Peak memory of one generation with saganet_small from released-format files (full size, random weights):
all networks resident (the default) against `low_memory=True` (each network read when its stage starts and
freed after), on a 5 s clip, one object. Each run is a fresh process; its peak RSS is the kernel's figure,
and each stage's own peak is read from VmHWM as the stage ends (then reset through /proc/self/clear_refs).

    .venv/bin/python benchmarks/bench_memory.py [--duration 5] [--steps 25] [--dir FOLDER] [--modes resident low]

The files (~7 GB: saganet.pth, v1-44.pth, the DFN5B CLIP folder, the BigVGAN v2 folder) are written once
into FOLDER (default: a temporary folder, removed at the end).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

CHILD = r"""
import json, sys, time, resource, torch
from saganet.io.masks import ObjectMask
from saganet.pipeline import GenerationOptions, SAGANetPipeline
folder, clip, steps, low = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
t0 = time.perf_counter()
pipe = SAGANetPipeline.from_variant("saganet_small", model_dirs={"all": folder}, low_memory=low)
load = time.perf_counter() - t0
video = pipe.load_video(clip, quiet=True)
m = torch.zeros(video.sync_frames.shape[0], 1, *video.sync_frames.shape[-2:])
m[..., 56:168, 56:168] = 1
stage_peaks, names = {}, iter(["clip+text", "sync", "dit", "codec"])
end_stage = pipe._end_stage


def hwm_mib():  # the peak RSS since the last reset (VmHWM); resetting it needs Linux >= 4.0
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024


def measured_end_stage(*parts):  # each stage's own peak: read VmHWM as the stage ends, then reset it
    stage_peaks[next(names)] = hwm_mib()
    end_stage(*parts)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


pipe._end_stage = measured_end_stage
res = pipe.generate(video, [ObjectMask("object", m)], GenerationOptions(steps=steps, progress=False))
# resetting VmHWM resets ru_maxrss too: the run's peak is the largest of the stages' peaks
peak = max([*stage_peaks.values(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024])
print(json.dumps({"load": load, **res.timings, "stage_peak_mib": stage_peaks, "peak_rss_mib": peak}))
"""


def write_released_files(folder: Path) -> None:
    """saganet.pth, v1-44.pth, DFN5B-CLIP-ViT-H-14-384/ and bigvgan_v2_44khz_128band_512x/ (random weights)."""
    import open_clip

    from saganet.configs import dit_config
    from saganet.models import clip as clip_models
    from saganet.models.bigvgan import BIGVGAN_V2_44K, BigVGAN
    from saganet.models.dit import MMDiT
    from saganet.models.motionformer import MotionFormerConfig
    from saganet.models.segaware import SynchformerWithContext
    from saganet.models.vae import VAE

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if not (folder / "saganet.pth").is_file():
        dit = MMDiT(dit_config("small_44k_sa"), latent_mean=torch.zeros(40), latent_std=torch.ones(40))
        net = dit.eval().state_dict()
        enc = SynchformerWithContext(MotionFormerConfig.full()).state_dict()
        torch.save({"network": net, "synchformer": enc, "lora": {k: v for k, v in net.items() if ".lora_" in k}},
                   folder / "saganet.pth")
        del dit, net, enc
    if not (folder / "v1-44.pth").is_file():
        torch.save(VAE.from_preset("44k").state_dict(), folder / "v1-44.pth")
    big = folder / "bigvgan_v2_44khz_128band_512x"
    if not (big / "bigvgan_generator.pt").is_file():
        big.mkdir(exist_ok=True)
        (big / "config.json").write_text(json.dumps({**BIGVGAN_V2_44K.to_dict(), "sampling_rate": 44100}))
        torch.save({"generator": BigVGAN(BIGVGAN_V2_44K, version=2).state_dict()}, big / "bigvgan_generator.pt")
    cl = folder / "DFN5B-CLIP-ViT-H-14-384"
    if not (cl / "open_clip_pytorch_model.bin").is_file():
        cl.mkdir(exist_ok=True)
        cfg = open_clip.get_model_config("ViT-H-14-378-quickgelu")
        cfg["vision_cfg"]["image_size"] = 384
        (cl / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
        torch.save(clip_models.build_clip_model(cfg).state_dict(), cl / "open_clip_pytorch_model.bin")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--dir", default=None, help="folder for the released-format files (kept)")
    ap.add_argument("--modes", nargs="+", choices=["resident", "low"], default=["resident", "low"])
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_memory_"))
    folder = Path(args.dir) if args.dir else tmp / "weights"
    t0 = time.perf_counter()
    write_released_files(folder)
    print(f"released-format files in {folder} ({sum(p.stat().st_size for p in folder.rglob('*') if p.is_file()) / 1e9:.1f}"
          f" GB, {time.perf_counter() - t0:.0f} s)", flush=True)
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_pipeline import write_clip

    clip = tmp / "clip.mp4"
    write_clip(clip, args.duration)
    rows = []
    for low in [m == "low" for m in args.modes]:
        out = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(clip), str(args.steps), str(int(low))],
                             capture_output=True, text=True)
        if out.returncode:
            print(f"low_memory={low}: failed ({out.returncode}): {out.stderr.strip().splitlines()[-1:]}")
            continue
        res = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append((low, res))
        secs = {k: v for k, v in res.items() if isinstance(v, float) and k != "peak_rss_mib"}
        peaks = ", ".join(f"{k} {v / 1024:.2f}" for k, v in res["stage_peak_mib"].items())
        print(f"low_memory={low}: peak RSS {res['peak_rss_mib'] / 1024:.2f} GiB (per stage, GiB: {peaks}), "
              f"{sum(secs.values()):.0f} s ({', '.join(f'{k} {v:.1f}' for k, v in secs.items())})", flush=True)
    stages = ["clip+text", "sync", "dit", "codec"]
    print("\n| mode | peak RSS (GiB) | " + " | ".join(f"{s} stage" for s in stages) + " | seconds |")
    print("|---" * (len(stages) + 3) + "|")
    for low, res in rows:
        total = sum(v for k, v in res.items() if isinstance(v, float) and k != "peak_rss_mib")
        per = " | ".join(f"{res['stage_peak_mib'].get(s, 0) / 1024:.2f}" for s in stages)
        print(f"| {'--low-memory' if low else 'default (all resident)'} | {res['peak_rss_mib'] / 1024:.2f} | {per} "
              f"| {total:.0f} |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
