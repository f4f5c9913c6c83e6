"""Low-level MM-DiT layers: channel-last convs, SwiGLU MLPs, adaLN modulation, RoPE, attention, t-embedding.

See RN-9, RN-10, RN-11. Module and parameter names follow MMAudio so that checkpoints load as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ChannelLastConv1d",
    "MLP",
    "ConvMLP",
    "swiglu_hidden_dim",
    "modulate",
    "compute_rope_rotations",
    "apply_rope",
    "attention",
    "TimestepEmbedder",
]


class ChannelLastConv1d(nn.Conv1d):
    """`nn.Conv1d` on channel-last input: (B, L, C_in) -> (B, L, C_out). Weight (C_out, C_in, k)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 1)).permute(0, 2, 1)


def swiglu_hidden_dim(hidden_dim: int, multiple_of: int = 256) -> int:
    """Width rule (RN-11): `int(2 * hidden / 3)` rounded UP to a multiple of 256 (so tiny models get 256)."""
    hidden_dim = int(2 * hidden_dim / 3)
    return multiple_of * ((hidden_dim + multiple_of - 1) // multiple_of)


class MLP(nn.Module):
    """SwiGLU feed-forward: `w2(silu(w1 x) * w3 x)`, no biases. (..., dim) -> (..., dim)."""

    def __init__(self, dim: int, hidden_dim: int, multiple_of: int = 256) -> None:
        super().__init__()
        hidden_dim = swiglu_hidden_dim(hidden_dim, multiple_of)
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class ConvMLP(nn.Module):
    """SwiGLU with channel-last 1-D convolutions instead of linears. (B, L, dim) -> (B, L, dim)."""

    def __init__(self, dim: int, hidden_dim: int, multiple_of: int = 256, kernel_size: int = 3,
                 padding: int = 1) -> None:
        super().__init__()
        hidden_dim = swiglu_hidden_dim(hidden_dim, multiple_of)
        self.w1 = ChannelLastConv1d(dim, hidden_dim, kernel_size, padding=padding, bias=False)
        self.w2 = ChannelLastConv1d(hidden_dim, dim, kernel_size, padding=padding, bias=False)
        self.w3 = ChannelLastConv1d(dim, hidden_dim, kernel_size, padding=padding, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: `x * (1 + scale) + shift`; shift/scale (B, 1, D) (global) or (B, N, D) (per token)."""
    return x * (1 + scale) + shift


def compute_rope_rotations(length: int, dim: int, theta: float = 10000.0, *, freq_scaling: float = 1.0,
                           device: torch.device | str | None = None) -> torch.Tensor:
    """RoPE rotation matrices, always float32: (1, length, dim/2, 2, 2) holding [[cos, -sin], [sin, cos]].

    `freq_scaling` stretches positions onto another time axis (RN-10: CLIP tokens use
    latent_seq_len / clip_seq_len so that they live on the latent time axis).
    """
    assert dim % 2 == 0, "RoPE needs an even head width"
    # Element-wise float32 ops only, so autocast (which only touches matmul-like ops) cannot lower them.
    pos = torch.arange(length, dtype=torch.float32, device=device)
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim))
    freqs = freqs * freq_scaling
    angle = pos[:, None] * freqs[None, :]  # (length, dim/2)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([cos, -sin, sin, cos], dim=-1)  # (length, dim/2, 4)
    return rot.view(1, length, dim // 2, 2, 2)


def apply_rope(x: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Rotate ADJACENT channel pairs (2i, 2i+1) of x (B, H, N, d) by rot (1, N, d/2, 2, 2), in float32.

    GPT-J/flux style pairs, not the half-split "rotate_half" layout (RN-10).
    """
    xf = x.float().view(*x.shape[:-1], -1, 1, 2)  # (B, H, N, d/2, 1, 2)
    out = rot[..., 0] * xf[..., 0] + rot[..., 1] * xf[..., 1]  # (B, H, N, d/2, 2)
    return out.reshape(x.shape).to(x.dtype)


def fused_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """`F.scaled_dot_product_attention` on contiguous q, k, v `(B, H, N, d)` -> `(B, H, N, d)`.

    On CPU, PyTorch takes its fused (flash) kernel only for contiguous inputs; a strided view (a permuted
    qkv split, a transposed channel axis) silently falls back to the unfused math kernel, ~4x slower for the
    MotionFormer's sequence lengths. Every attention of the package goes through here
    (tests/models/test_fused_attention.py checks which kernel runs).
    """
    return F.scaled_dot_product_attention(q.contiguous(), k.contiguous(), v.contiguous(), scale=scale)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Plain SDPA (scale 1/sqrt(d), no mask): q, k, v (B, H, N, d) -> (B, N, H*d)."""
    out = fused_sdpa(q, k, v)
    b, h, n, d = out.shape
    return out.transpose(1, 2).reshape(b, n, h * d)


class TimestepEmbedder(nn.Module):
    """Sinusoidal embedding of t in [0, 1] (not multiplied by 1000) followed by an MLP. (B,) -> (B, dim).

    RN-9: the embedding is [cos, sin] (cosine first) of `t * freqs` with
    `freqs_i = (10000 / max_period) / 10000^(2i / frequency_embedding_size)`.
    v1: 256 frequencies, max_period 10000; v2: `dim` frequencies, max_period 1 (all freqs x 10000).
    """

    def __init__(self, dim: int, frequency_embedding_size: int = 256, max_period: float = 10000) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(frequency_embedding_size, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.frequency_embedding_size = frequency_embedding_size
        self.max_period = max_period
        self.register_buffer("freqs", self.compute_freqs(), persistent=False)

    def compute_freqs(self, device: torch.device | str | None = None) -> torch.Tensor:
        n = self.frequency_embedding_size
        freqs = 1.0 / (10000 ** (torch.arange(0, n, 2, dtype=torch.float32, device=device) / n))
        return (10000 / self.max_period) * freqs

    def timestep_embedding(self, t: torch.Tensor) -> torch.Tensor:
        args = t[:, None].float() * self.freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.timestep_embedding(t).to(t.dtype))
