"""1-D mel VAE of MMAudio (RN-20, RN-38): EDM2 magnitude-preserving convolutions.

Layout (fixed by the reference): channel multipliers (1, 2, 4), two res-blocks per encoder level
(three per decoder level), one x2 temporal down/up-sampling after/before level 0, a mid block with
attention, activations clamped to +-256. Mel `(B, data_dim, L)` <-> latent `(B, embed_dim, L/2)`.

Checkpoints (`v1-16.pth`, `v1-44.pth`) hold the *raw* conv weights; `remove_weight_norm()` must be
called after loading (forward refuses to run before, as in the reference).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from saganet.models.layers import fused_sdpa
from saganet.models.state_dict import load_strict

CH_MULT = (1, 2, 4)
NUM_RES_BLOCKS = 2
DOWN_LAYERS = (0,)  # encoder levels followed by a x2 downsample
CLIP_ACT = 256.0
TIME_DOWNSAMPLE = 2 ** len(DOWN_LAYERS)  # mel frames per latent frame


@dataclass(frozen=True)
class VAEConfig:
    data_dim: int  # mel bins (80 or 128 in the released models)
    embed_dim: int  # latent channels
    hidden_dim: int  # base width


VAE_PRESETS: dict[str, VAEConfig] = {
    "16k": VAEConfig(data_dim=80, embed_dim=20, hidden_dim=384),
    "44k": VAEConfig(data_dim=128, embed_dim=40, hidden_dim=512),
}


def mp_normalize(x: torch.Tensor, dim: int | list[int] | None = None, eps: float = 1e-4) -> torch.Tensor:
    """EDM2 normalize: x / (eps + ||x|| * sqrt(n_dim / n_total)) over `dim` (default: all but dim 0)."""
    if dim is None:
        dim = list(range(1, x.ndim))
    norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True, dtype=torch.float32)
    norm = torch.add(eps, norm, alpha=math.sqrt(norm.numel() / x.numel()))
    return x / norm.to(x.dtype)


def mp_silu(x: torch.Tensor) -> torch.Tensor:
    return F.silu(x) / 0.596  # magnitude-preserving SiLU


def mp_sum(a: torch.Tensor, b: torch.Tensor, t: float = 0.3) -> torch.Tensor:
    return a.lerp(b, t) / math.sqrt((1 - t) ** 2 + t**2)


class MPConv1D(nn.Module):
    """Conv1d without bias, padding k//2, whose weight is normalised once by `remove_weight_norm()`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size))
        self.weight_norm_removed = False

    def forward(self, x: torch.Tensor, gain: torch.Tensor | float = 1.0) -> torch.Tensor:
        if not self.weight_norm_removed:
            raise RuntimeError("call remove_weight_norm() before running the VAE (RN-20)")
        w = self.weight * gain
        return F.conv1d(x, w, padding=w.shape[-1] // 2)

    @torch.no_grad()
    def remove_weight_norm(self) -> None:
        # RN-20: per output channel w <- w / (1e-4 + ||w|| / sqrt(n)) / sqrt(n), n = in * k
        w = mp_normalize(self.weight.float())
        w = w / math.sqrt(w[0].numel())
        self.weight.copy_(w.to(self.weight.dtype))
        self.weight_norm_removed = True


class ResnetBlock1D(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv1 = MPConv1D(in_dim, out_dim, kernel_size)
        self.conv2 = MPConv1D(out_dim, out_dim, kernel_size)
        self.nin_shortcut = MPConv1D(in_dim, out_dim, 1) if in_dim != out_dim else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = mp_normalize(x, dim=1)  # pixel norm over channels
        h = self.conv2(mp_silu(self.conv1(mp_silu(x))))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return mp_sum(x, h, t=0.3)


class AttnBlock1D(nn.Module):
    """Single-head self-attention over time with pixel-normalised q, k, v."""

    def __init__(self, channels: int, num_heads: int = 1) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = MPConv1D(channels, channels * 3, 1)
        self.proj_out = MPConv1D(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, L = x.shape
        y = self.qkv(x).reshape(B, self.num_heads, -1, 3, L)  # q/k/v index innermost (RN-1)
        q, k, v = mp_normalize(y, dim=2).unbind(3)  # each (B, h, c, L)
        h = fused_sdpa(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        h = h.transpose(-1, -2).reshape(B, -1, L)
        return mp_sum(x, self.proj_out(h), t=0.3)


class Downsample1D(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = MPConv1D(channels, channels, 1)
        self.conv2 = MPConv1D(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.avg_pool1d(self.conv1(x), kernel_size=2, stride=2))


class Upsample1D(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = MPConv1D(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest-exact"))


class _Mid(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.block_1 = ResnetBlock1D(ch, ch)
        self.attn_1 = AttnBlock1D(ch)
        self.block_2 = ResnetBlock1D(ch, ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x))).clamp(-CLIP_ACT, CLIP_ACT)


class _Level(nn.Module):
    """One resolution level; key names `block.<i>`, optional `downsample` / `upsample` as in the reference."""

    def __init__(self, blocks: list[ResnetBlock1D]) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)


class Encoder1D(nn.Module):
    """Normalised mel `(B, data_dim, L)` -> moments `(B, 2 * embed_dim, L / 2)`."""

    def __init__(self, data_dim: int, embed_dim: int, dim: int) -> None:
        super().__init__()
        self.conv_in = MPConv1D(data_dim, dim, 3)
        self.down = nn.ModuleList()
        block_in = dim
        for i, mult in enumerate(CH_MULT):
            block_out = dim * mult
            level = _Level(
                [ResnetBlock1D(block_in if j == 0 else block_out, block_out) for j in range(NUM_RES_BLOCKS)]
            )
            block_in = block_out
            if i in DOWN_LAYERS:
                level.downsample = Downsample1D(block_in)
            self.down.append(level)
        self.mid = _Mid(block_in)
        self.conv_out = MPConv1D(block_in, 2 * embed_dim, 3)
        self.learnable_gain = nn.Parameter(torch.zeros([]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.down:
            for block in level.block:
                h = block(h).clamp(-CLIP_ACT, CLIP_ACT)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        h = self.mid(h)
        return self.conv_out(mp_silu(h), gain=self.learnable_gain + 1)


class Decoder1D(nn.Module):
    """Latent `(B, embed_dim, N)` -> normalised mel `(B, data_dim, 2N)`."""

    def __init__(self, data_dim: int, embed_dim: int, dim: int) -> None:
        super().__init__()
        block_in = dim * CH_MULT[-1]
        self.conv_in = MPConv1D(embed_dim, block_in, 3)
        self.mid = _Mid(block_in)
        up_layers = {i + 1 for i in DOWN_LAYERS}  # the reference shifts the level index by one
        levels: list[_Level] = []
        for i in reversed(range(len(CH_MULT))):
            block_out = dim * CH_MULT[i]
            level = _Level(
                [
                    ResnetBlock1D(block_in if j == 0 else block_out, block_out)
                    for j in range(NUM_RES_BLOCKS + 1)
                ]
            )
            block_in = block_out
            if i in up_layers:
                level.upsample = Upsample1D(block_in)
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        self.conv_out = MPConv1D(block_in, data_dim, 3)
        self.learnable_gain = nn.Parameter(torch.zeros([]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            for block in level.block:
                h = block(h).clamp(-CLIP_ACT, CLIP_ACT)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(mp_silu(h), gain=self.learnable_gain + 1)


class DiagonalGaussian:
    """Diagonal Gaussian posterior. Built from encoder moments `(B, 2C, N)` (mean ‖ logvar on dim 1,
    logvar clamped to [-30, 20]); `channel_last()` gives the `(B, N, C)` view the DiT works with."""

    def __init__(self, moments: torch.Tensor, dim: int = 1) -> None:
        self.dim = dim
        self.mean, logvar = torch.chunk(moments, 2, dim=dim)
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)

    @classmethod
    def from_mean_std(cls, mean: torch.Tensor, std: torch.Tensor, dim: int = 1) -> DiagonalGaussian:
        post = cls.__new__(cls)
        post.dim, post.mean, post.std = dim, mean, std
        post.logvar = 2 * torch.log(std)
        return post

    @property
    def moments(self) -> torch.Tensor:
        return torch.cat([self.mean, self.logvar], dim=self.dim)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.empty_like(self.mean).normal_(generator=generator)
        return self.mean + self.std * noise

    def mode(self) -> torch.Tensor:
        return self.mean

    def channel_last(self) -> DiagonalGaussian:
        """`(B, C, N)` -> `(B, N, C)` (no-op when already channel-last)."""
        if self.dim != 1:
            return self
        post = DiagonalGaussian.from_mean_std(self.mean.transpose(1, 2), self.std.transpose(1, 2), dim=-1)
        post.logvar = self.logvar.transpose(1, 2)
        return post


class VAE(nn.Module):
    """Mel VAE. `encode(mel (B, data_dim, L))` -> posterior over `(B, embed_dim, L/2)`; `decode(z)` -> mel."""

    def __init__(self, data_dim: int, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.config = VAEConfig(data_dim, embed_dim, hidden_dim)
        self.embed_dim = embed_dim
        # The reference builds per-bin statistics tables (80 and 128 bins) as constants. They are
        # persistent buffers and stored in every checkpoint, so loading one restores them; we do not
        # ship the tables and start from the identity standardisation (mean 0, std 1) instead.
        self.register_buffer("data_mean", torch.zeros(1, data_dim, 1))
        self.register_buffer("data_std", torch.ones(1, data_dim, 1))
        self.encoder: Encoder1D | None = Encoder1D(data_dim, embed_dim, hidden_dim)
        self.decoder = Decoder1D(data_dim, embed_dim, hidden_dim)

    @classmethod
    def from_preset(cls, name: str) -> VAE:
        if name not in VAE_PRESETS:
            raise ValueError(f"unknown VAE preset {name!r} (known: {sorted(VAE_PRESETS)})")
        c = VAE_PRESETS[name]
        return cls(c.data_dim, c.embed_dim, c.hidden_dim)

    def remove_weight_norm(self) -> VAE:
        for m in self.modules():
            if isinstance(m, MPConv1D) and not m.weight_norm_removed:
                m.remove_weight_norm()
        return self

    def drop_encoder(self) -> VAE:
        """Delete the encoder (reference `need_vae_encoder=False`): decoding only, ~half the memory."""
        self.encoder = None
        return self

    def normalize(self, mel: torch.Tensor) -> torch.Tensor:
        return (mel - self.data_mean) / self.data_std

    def unnormalize(self, mel: torch.Tensor) -> torch.Tensor:
        return mel * self.data_std + self.data_mean

    def encode(self, mel: torch.Tensor, normalize: bool = True) -> DiagonalGaussian:
        if self.encoder is None:
            raise RuntimeError("this VAE was built without its encoder (decode only)")
        if normalize:
            mel = self.normalize(mel)
        return DiagonalGaussian(self.encoder(mel))

    def decode(self, z: torch.Tensor, unnormalize: bool = True) -> torch.Tensor:
        mel = self.decoder(z)
        return self.unnormalize(mel) if unnormalize else mel

    def forward(
        self, mel: torch.Tensor, sample_posterior: bool = True, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, DiagonalGaussian]:
        posterior = self.encode(mel)
        z = posterior.sample(generator) if sample_posterior else posterior.mode()
        return self.decode(z), posterior


def load_vae_state_dict(vae: VAE, state_dict: Mapping[str, torch.Tensor], need_encoder: bool = True) -> VAE:
    """Load a raw `v1-16.pth` / `v1-44.pth` state dict strictly, normalise the weights, optionally drop the encoder."""
    load_strict(vae, state_dict, what=f"VAE {vae.config}")
    vae.remove_weight_norm()
    if not need_encoder:
        vae.drop_encoder()
    return vae
