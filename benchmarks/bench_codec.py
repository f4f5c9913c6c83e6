"""Decode 5 s at 44.1 kHz on CPU with full-size random weights: latent (1, 216, 40) -> VAE 44k decode ->
BigVGAN v2 (44 kHz, 128 bands, 512x) -> waveform (1, 221184). Prints wall times and peak RSS.

    .venv/bin/python benchmarks/bench_codec.py [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse
import time

import torch

from memory import peak_rss_mib  # benchmarks/memory.py (scripts run from benchmarks/ on sys.path)
from saganet.codec import MelVAECodec
from saganet.models.bigvgan import BIGVGAN_V2_44K, BigVGAN
from saganet.models.mel import MelConverter
from saganet.models.vae import VAE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    t0 = time.perf_counter()
    vae = VAE.from_preset("44k").drop_encoder().remove_weight_norm()
    voc = BigVGAN(BIGVGAN_V2_44K, version=2).remove_weight_norm()
    codec = MelVAECodec(MelConverter.from_preset("44k"), vae, voc)
    print(
        f"build: {time.perf_counter() - t0:.1f} s, peak RSS {peak_rss_mib():.0f} MiB, "
        f"threads {torch.get_num_threads()}"
    )

    latent = torch.randn(1, 216, 40)
    for r in range(args.repeats):
        t0 = time.perf_counter()
        mel = codec.decode(latent)
        t1 = time.perf_counter()
        wav = codec.vocode(mel)
        t2 = time.perf_counter()
        assert mel.shape == (1, 128, 432) and wav.shape == (1, 221184), (mel.shape, wav.shape)
        print(
            f"run {r}: VAE decode {t1 - t0:.2f} s, BigVGAN v2 {t2 - t1:.2f} s, total {t2 - t0:.2f} s "
            f"(real-time factor {(t2 - t0) / 5.0:.2f})"
        )
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
