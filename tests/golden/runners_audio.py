"""Golden runners for the audio path: mel converter, VAE, BigVGAN v1 / v2 (RN-41)."""

from __future__ import annotations

import torch

from golden.framework import GoldenCase, runner
from saganet.models.bigvgan import BigVGAN, BigVGANConfig, load_bigvgan_state_dict
from saganet.models.mel import MelConverter
from saganet.models.vae import VAE, load_vae_state_dict


@runner("mel_converter")
def run_mel(case: GoldenCase) -> dict[str, torch.Tensor]:
    # Our own filterbank and window are used (not the stored buffers): the golden also checks them.
    mc = MelConverter(**case.config)
    wav = case.inputs["waveform"]
    with torch.no_grad():
        return {"mel": mc(wav), "debug.magnitude": mc.magnitude(wav)}


@runner("vae_encode_decode")
def run_vae(case: GoldenCase) -> dict[str, torch.Tensor]:
    vae = load_vae_state_dict(VAE(**case.config), case.weights).eval()
    mel, z = case.inputs["mel"], case.inputs["z"]
    with torch.no_grad():
        post = vae.encode(mel)
        out = {
            "encode.moments": post.moments,
            "encode.mean": post.mean,
            "encode.logvar": post.logvar,
            "encode.std": post.std,
            "decode": vae.decode(z),
            "decode_no_unnormalize": vae.decode(z, unnormalize=False),
            "reconstruct_mode": vae(mel, sample_posterior=False)[0],
        }
    sd = vae.state_dict()
    out.update({f"wn.{k}": sd[k] for k in sd if k.endswith(".weight")})
    return out


def _run_bigvgan(case: GoldenCase, version: int) -> dict[str, torch.Tensor]:
    model = BigVGAN(BigVGANConfig.from_dict(case.config), version=version)
    load_bigvgan_state_dict(model, case.weights).eval()
    with torch.no_grad():
        out = {"waveform": model(case.inputs["mel"])}
    sd = model.state_dict()
    out.update({f"wn_removed.{k}": sd[k] for k in sd if k.endswith(".weight")})
    return out


@runner("bigvgan_v1_forward")
def run_bigvgan_v1(case: GoldenCase) -> dict[str, torch.Tensor]:
    return _run_bigvgan(case, 1)


@runner("bigvgan_v2_forward")
def run_bigvgan_v2(case: GoldenCase) -> dict[str, torch.Tensor]:
    return _run_bigvgan(case, 2)
