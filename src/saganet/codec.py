"""Audio codec used by the pipeline: waveform <-> VAE latents, and latents -> waveform.

`MelVAECodec` = mel converter + mel VAE + BigVGAN vocoder (RN-38):
16k = mel 16k + VAE 16k + BigVGAN v1 (`best_netG.pt`); 44k = mel 44k + VAE 44k + BigVGAN v2 (hub).
Latents are channel-last `(B, N, C)` as the DiT wants them; one latent frame covers `hop_length`
samples (mel hop x 2), so a clip of L samples has ceil(L / hop_length) latent frames
(`latent_seq_len = ceil(duration * sr / mel_hop / 2)`) and decodes to N * hop_length samples.

The file loaders of the VAE and vocoders live here (models/ holds only the modules).
"""

from __future__ import annotations

import json
import logging
import math
import os
from abc import ABC, abstractmethod
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from saganet.checkpoint import read_checkpoint, strip_prefix
from saganet.errors import CheckpointError
from saganet.models.bigvgan import (
    BIGVGAN_V1_16K,
    BIGVGAN_V2_44K,
    BigVGAN,
    BigVGANConfig,
    load_bigvgan_state_dict,
)
from saganet.models.mel import MEL_PRESETS, MelConfig, MelConverter
from saganet.models.vae import (
    TIME_DOWNSAMPLE,
    VAE,
    VAE_PRESETS,
    DiagonalGaussian,
    VAEConfig,
    load_vae_state_dict,
)

log = logging.getLogger(__name__)

BIGVGAN_V2_HUB_ID = "nvidia/bigvgan_v2_44khz_128band_512x"


class AudioCodec(ABC):
    """What the pipeline needs from an audio codec."""

    sample_rate: int
    hop_length: int  # waveform samples per latent frame
    latent_dim: int

    @abstractmethod
    def encode(self, wav: torch.Tensor) -> DiagonalGaussian:
        """Waveform `(B, L)` -> posterior with channel-last mean/std `(B, ceil(L / hop_length), latent_dim)`."""

    @abstractmethod
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent `(B, N, latent_dim)` (un-normalised, i.e. VAE space) -> mel `(B, num_mels, 2N)`."""

    @abstractmethod
    def vocode(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel `(B, num_mels, frames)` -> waveform `(B, frames * mel_hop)`."""

    def latent_length(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop_length)

    def latents_to_wav(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent `(B, N, C)` -> waveform `(B, N * hop_length)`."""
        return self.vocode(self.decode(latent))


class MelVAECodec(nn.Module, AudioCodec):
    """Mel + VAE + BigVGAN codec. All three parts must agree on mel bins and hop."""

    def __init__(self, mel: MelConverter, vae: VAE, vocoder: BigVGAN) -> None:
        super().__init__()
        if not (mel.num_mels == vae.config.data_dim == vocoder.cfg.num_mels):
            raise ValueError(
                f"mel bins disagree: mel {mel.num_mels}, VAE {vae.config.data_dim}, vocoder {vocoder.cfg.num_mels}"
            )
        if mel.hop_size != vocoder.hop_length:
            raise ValueError(f"mel hop {mel.hop_size} != vocoder upsampling {vocoder.hop_length}")
        self.mel, self.vae, self.vocoder = mel, vae, vocoder
        self.sample_rate = mel.sampling_rate
        self.hop_length = mel.hop_size * TIME_DOWNSAMPLE
        self.latent_dim = vae.config.embed_dim
        self.eval().requires_grad_(False)

    # -- codec API
    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> DiagonalGaussian:
        n = self.latent_length(wav.shape[-1])
        wav = F.pad(wav, (0, n * self.hop_length - wav.shape[-1]))  # zero-pad to whole latent frames
        return self.vae.encode(self.mel(wav)).channel_last()

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latent.transpose(1, 2))

    @torch.no_grad()
    def vocode(self, mel: torch.Tensor) -> torch.Tensor:
        return self.vocoder(mel).squeeze(1)

    # -- builders
    @classmethod
    def from_configs(
        cls, mel: MelConfig, vae: VAEConfig, vocoder: BigVGANConfig, vocoder_version: int
    ) -> MelVAECodec:
        """Random-weight codec (weight norm already removed), e.g. for tiny test models."""
        v = VAE(**asdict(vae)).remove_weight_norm()
        voc = BigVGAN(vocoder, version=vocoder_version).remove_weight_norm()
        return cls(MelConverter(**asdict(mel)), v, voc)

    @classmethod
    def tiny(
        cls, mode: str = "44k", latent_dim: int | None = None, hidden_dim: int = 8, seed: int = 0
    ) -> MelVAECodec:
        """Tiny random codec with the real sample rate, mel front end, hop and (default) latent size of
        `mode`, but a few-channel VAE and vocoder. Seeded so that tests are reproducible."""
        mel = MEL_PRESETS[mode]
        real = VAE_PRESETS[mode]
        rates = _factor_hop(mel.hop_size)
        voc = BigVGANConfig(
            num_mels=mel.num_mels,
            upsample_rates=rates,
            upsample_kernel_sizes=[2 * r for r in rates],
            upsample_initial_channel=2 ** len(rates) * 2,
            resblock_kernel_sizes=[3],
            resblock_dilation_sizes=[[1, 3]],
            use_tanh_at_final=mode == "16k",
            use_bias_at_final=mode == "16k",
        )
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return cls.from_configs(
                mel,
                VAEConfig(mel.num_mels, latent_dim or real.embed_dim, hidden_dim),
                voc,
                1 if mode == "16k" else 2,
            )

    @classmethod
    def from_files(
        cls,
        mode: str,
        vae_path: str | os.PathLike,
        vocoder: str | os.PathLike | None = None,
        need_encoder: bool = True,
        vae_config: VAEConfig | None = None,
        vocoder_v1_config: BigVGANConfig = BIGVGAN_V1_16K,
    ) -> MelVAECodec:
        """Released weights. 16k: `vae_path`=v1-16.pth, `vocoder`=best_netG.pt (required).
        44k: `vae_path`=v1-44.pth, `vocoder`=hub id (default nvidia/bigvgan_v2_44khz_128band_512x) or a
        folder with `config.json` + `bigvgan_generator.pt`. `vae_config` / `vocoder_v1_config` default to
        the released architectures (the files hold only tensors; tests pass tiny ones)."""
        if mode not in ("16k", "44k"):
            raise ValueError(f"codec mode must be '16k' or '44k', got {mode!r}")
        if mode == "16k" and vocoder is None:
            raise CheckpointError("the 16k codec needs the BigVGAN v1 checkpoint best_netG.pt (vocoder=...)")
        vae = load_vae(vae_path, vae_config or VAE_PRESETS[mode], need_encoder=need_encoder)
        if mode == "16k":
            voc = load_bigvgan_v1(vocoder, vocoder_v1_config)
        else:
            voc = load_bigvgan_v2(vocoder or BIGVGAN_V2_HUB_ID)
        return cls(MelConverter.from_preset(mode), vae, voc)


def _factor_hop(hop: int) -> list[int]:
    rates = []
    while hop > 1:
        r = 8 if hop % 8 == 0 else (4 if hop % 4 == 0 else (2 if hop % 2 == 0 else hop))
        rates.append(r)
        hop //= r
    return rates


# ----------------------------------------------------------------------------- file loaders


def load_vae(path: str | os.PathLike, config: VAEConfig, need_encoder: bool = True) -> VAE:
    """`v1-16.pth` / `v1-44.pth` (a bare state dict of raw weights) -> VAE with weight norm removed."""
    sd = read_checkpoint(path)
    return load_vae_state_dict(VAE(**asdict(config)), sd, need_encoder=need_encoder)


def _generator_state(ckpt: dict, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    if "generator" not in ckpt:
        raise CheckpointError(
            f"{path} has no 'generator' entry (keys: {sorted(ckpt)[:5]}); not a BigVGAN checkpoint"
        )
    sd = dict(ckpt["generator"])
    if any(k.startswith("vocoder.") for k in sd):  # a state dict of MMAudio's 16k wrapper
        sd = strip_prefix(sd, "vocoder.")
    return sd


def load_bigvgan_v1(path: str | os.PathLike, config: BigVGANConfig = BIGVGAN_V1_16K) -> BigVGAN:
    """MMAudio's 16 kHz vocoder `best_netG.pt` (entry 'generator'; config = `bigvgan_vocoder.yml`)."""
    sd = _generator_state(read_checkpoint(path), path)
    return load_bigvgan_state_dict(BigVGAN(config, version=1), sd)


def load_bigvgan_v2(source: str | os.PathLike = BIGVGAN_V2_HUB_ID) -> BigVGAN:
    """BigVGAN v2 from a local folder (`config.json` + `bigvgan_generator.pt`) or a HF hub id."""
    folder = Path(source)
    if folder.is_dir():
        cfg_file, ckpt_file = folder / "config.json", folder / "bigvgan_generator.pt"
        if not cfg_file.is_file():
            raise CheckpointError(f"{folder} has no config.json (expected a BigVGAN v2 folder)")
    else:  # a hub id: through saganet.weights (user-given folders, the HF cache, download unless offline)
        from saganet import weights

        hub = weights.HUB_MODELS["bigvgan_v2"]
        if str(source) != hub.repo_id:
            hub = weights.HubModel(f"bigvgan:{source}", str(source), hub.files)
        try:
            folder = weights.resolve_hub(hub)
        except CheckpointError as e:
            raise CheckpointError(f"cannot get BigVGAN v2 '{source}' from the HF hub ({e}); "
                                  "pass a local folder with config.json and bigvgan_generator.pt") from e
        cfg_file, ckpt_file = folder / "config.json", folder / "bigvgan_generator.pt"
    try:
        cfg = BigVGANConfig.from_dict(json.loads(cfg_file.read_text()))
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"bad BigVGAN config {cfg_file}: {e}".splitlines()[0]) from e
    sd = _generator_state(read_checkpoint(ckpt_file), ckpt_file)
    log.info("BigVGAN v2 from %s (%d mels, hop %d)", source, cfg.num_mels, cfg.hop_length)
    return load_bigvgan_state_dict(BigVGAN(cfg, version=2), sd)


__all__ = [
    "AudioCodec",
    "MelVAECodec",
    "BIGVGAN_V2_HUB_ID",
    "BIGVGAN_V2_44K",
    "load_vae",
    "load_bigvgan_v1",
    "load_bigvgan_v2",
]
