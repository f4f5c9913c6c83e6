"""MotionFormer: the Synchformer visual branch that MMAudio and SAGANet use for synchronisation features.

See RN-14, RN-15, RN-16. A 16-frame segment `(N, 3, 16, H, W)` in
[-1, 1] becomes `t = 16 / patch_size_temp = 8` feature vectors of width D:

    tubelets (Conv3d 2x16x16) -> + CLS -> + "separate" position/time embeddings
    -> depth x divided space-time block (time attention, space attention, MLP)
    -> drop CLS -> final LayerNorm -> per time step: spatial CLS aggregation (TransformerEncoderLayer)

State-dict keys follow the released checkpoints (`vfeat_extractor.` prefix on `Synchformer`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from saganet.models.layers import fused_sdpa

GatedAttentionMode = Literal["reference", "cross"]


@dataclass(frozen=True)
class MotionFormerConfig:
    """Architecture of the (segmentation-aware) MotionFormer. `full()` is the released size."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: int = 4
    img_size: int = 224
    patch_size: int = 16
    patch_size_temp: int = 2
    frames_per_segment: int = 16
    in_chans: int = 3
    qkv_bias: bool = True
    # Segmentation-aware additions (RN-35): one gated layer per block, always 12 heads in the release.
    cross_attn_heads: int = 12
    cross_attn_intermediate: int | None = None  # None -> 4 * embed_dim
    layer_norm_eps: float = 1e-6
    # "reference": the released computation (RN-2), "cross": a true cross-attention (new training).
    gated_attention: GatedAttentionMode = "reference"

    def __post_init__(self) -> None:
        if self.cross_attn_intermediate is None:
            object.__setattr__(self, "cross_attn_intermediate", 4 * self.embed_dim)
        if self.embed_dim % self.num_heads or self.embed_dim % self.cross_attn_heads:
            raise ValueError(
                f"embed_dim {self.embed_dim} must be divisible by num_heads {self.num_heads} "
                f"and cross_attn_heads {self.cross_attn_heads}"
            )
        if self.img_size % self.patch_size or self.frames_per_segment % self.patch_size_temp:
            raise ValueError("img_size / frames_per_segment must be multiples of the patch sizes")
        if self.gated_attention not in ("reference", "cross"):
            raise ValueError(f"gated_attention must be 'reference' or 'cross', got {self.gated_attention!r}")

    @property
    def grid(self) -> int:
        """Patches per side (14 for 224 / 16)."""
        return self.img_size // self.patch_size

    @property
    def patches_per_frame(self) -> int:
        return self.grid**2

    @property
    def temporal_resolution(self) -> int:
        """Tokens along time per segment (8 = 16 frames / tubelet depth 2)."""
        return self.frames_per_segment // self.patch_size_temp

    @property
    def num_tokens(self) -> int:
        """Token sequence length including CLS (1569 for the full model)."""
        return 1 + self.temporal_resolution * self.patches_per_frame

    @classmethod
    def full(cls, **overrides) -> MotionFormerConfig:
        return cls(**overrides)

    @classmethod
    def tiny(cls, **overrides) -> MotionFormerConfig:
        """CPU-sized: 64x64 frames, width 48, 2 blocks (cross-attention keeps its 12 heads of 4)."""
        base = dict(embed_dim=48, depth=2, num_heads=4, img_size=64)
        return cls(**{**base, **overrides})

    @classmethod
    def from_effective(cls, eff: dict, **overrides) -> MotionFormerConfig:
        """Build from a golden case's `config.effective` dict (unknown keys are ignored)."""
        names = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in eff.items() if k in names}
        if "temporal_resolution" in eff and "frames_per_segment" not in eff:
            kw["frames_per_segment"] = eff["temporal_resolution"] * eff.get("patch_size_temp", 2)
        return cls(**{**kw, **overrides})

    def to_dict(self) -> dict:
        return asdict(self)

    def with_(self, **changes) -> MotionFormerConfig:
        return replace(self, **changes)


class PatchEmbed2D(nn.Module):
    """RN-15: the 2-D patch embedding is never applied; it only exists so that checkpoints load strictly."""

    def __init__(self, cfg: MotionFormerConfig):
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, cfg.patch_size, cfg.patch_size)


class PatchEmbed3D(nn.Module):
    """Tubelet embedding: `(N, C, T, H, W)` -> `(N, t*h*w, D)`, frame-major token order (`f*hw + n`)."""

    def __init__(self, cfg: MotionFormerConfig, in_chans: int | None = None):
        super().__init__()
        k = (cfg.patch_size_temp, cfg.patch_size, cfg.patch_size)
        self.proj = nn.Conv3d(cfg.in_chans if in_chans is None else in_chans, cfg.embed_dim, k, stride=k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, approximate: str = "none"):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate=self.approximate))


class DividedAttention(nn.Module):
    """Attention within time groups or space groups, with a CLS token that sees everything (RN-14).

    Patch tokens `(N, 1 + f*n, D)` are grouped either per spatial location over the f frames ("time")
    or per frame over the n patches ("space"). Every group also attends to the CLS key/value; the CLS
    query attends to all tokens. qkv is split in contiguous q|k|v thirds (unlike the DiT's, RN-1).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, axis: Literal["time", "space"], frames: int) -> torch.Tensor:
        N, L, D = x.shape
        H, hd = self.num_heads, D // self.num_heads
        n = (L - 1) // frames
        q, k, v = self.qkv(x).view(N, L, 3, H, hd).permute(2, 0, 3, 1, 4).unbind(0)  # (N, H, L, hd)
        q = q * self.scale  # the reference scales q explicitly, then uses a plain softmax(q k^T)

        cls_out = fused_sdpa(q[:, :, :1], k, v, scale=1.0)  # (N, H, 1, hd)

        def groups(t: torch.Tensor) -> torch.Tensor:  # (N, H, f*n, hd) -> (N, H*G, len, hd)
            t = t[:, :, 1:].reshape(N, H, frames, n, hd)
            if axis == "time":
                t = t.transpose(2, 3)  # (N, H, n, f, hd): each location over its frames
            return t.reshape(N, H * t.shape[2], t.shape[3], hd)

        qg, kg, vg = groups(q), groups(k), groups(v)
        G = qg.shape[1] // H
        cls_k = k[:, :, :1].expand(N, H, G, hd).reshape(N, H * G, 1, hd)
        cls_v = v[:, :, :1].expand(N, H, G, hd).reshape(N, H * G, 1, hd)
        out = fused_sdpa(qg, torch.cat([cls_k, kg], dim=2), torch.cat([cls_v, vg], dim=2), scale=1.0)
        out = out.view(N, H, G, -1, hd)
        if axis == "time":
            out = out.transpose(2, 3)  # back to (N, H, f, n, hd)
        out = torch.cat([cls_out, out.reshape(N, H, L - 1, hd)], dim=2)  # (N, H, L, hd)
        return self.proj(out.transpose(1, 2).reshape(N, L, D))


class DividedSpaceTimeBlock(nn.Module):
    """RN-14: time attention (norm3) -> space attention (norm1) -> MLP (norm2), all pre-norm residuals."""

    def __init__(self, cfg: MotionFormerConfig):
        super().__init__()
        D, eps = cfg.embed_dim, cfg.layer_norm_eps
        # Registration order = the released state-dict order.
        self.norm1 = nn.LayerNorm(D, eps=eps)
        self.attn = DividedAttention(D, cfg.num_heads, cfg.qkv_bias)
        self.timeattn = DividedAttention(D, cfg.num_heads, cfg.qkv_bias)
        self.norm2 = nn.LayerNorm(D, eps=eps)
        self.mlp = Mlp(D, cfg.mlp_ratio * D)
        self.norm3 = nn.LayerNorm(D, eps=eps)
        self.frames = cfg.temporal_resolution

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.timeattn(self.norm3(x), "time", self.frames)
        x = x + self.attn(self.norm1(x), "space", self.frames)
        return x + self.mlp(self.norm2(x))


class SpatialAggregation(nn.TransformerEncoderLayer):
    """RN-16: per time step, prepend a learned CLS to the h*w patch tokens, run one pre-norm encoder
    layer (exact GELU, eps 1e-6) and keep the CLS output. `(N, t*h*w, D)` -> `(N, t, D)`.
    In eval/no-grad PyTorch may take its fused fast path (differences ~1e-6)."""

    def __init__(self, cfg: MotionFormerConfig):
        D = cfg.embed_dim
        super().__init__(
            d_model=D, nhead=cfg.num_heads, dim_feedforward=cfg.mlp_ratio * D, dropout=0.0,
            activation=nn.GELU(), batch_first=True, norm_first=True, layer_norm_eps=cfg.layer_norm_eps,
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.frames = cfg.temporal_resolution

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:  # type: ignore[override]
        N, L, D = x.shape
        x = x.reshape(N * self.frames, L // self.frames, D)
        x = torch.cat([self.cls_token.expand(x.shape[0], 1, D), x], dim=1)
        return super().forward(x)[:, 0].reshape(N, self.frames, D)


class MotionFormer(nn.Module):
    """The plain backbone + spatial aggregation. Segments `(N, C, T, H, W)` -> features `(N, t, D)`."""

    def __init__(self, cfg: MotionFormerConfig):
        super().__init__()
        self.cfg = cfg
        D = cfg.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.patches_per_frame + 1, D))
        self.temp_embed = nn.Parameter(torch.zeros(1, cfg.temporal_resolution, D))
        self.patch_embed = PatchEmbed2D(cfg)
        self.patch_embed_3d = PatchEmbed3D(cfg)
        self.blocks = nn.ModuleList(DividedSpaceTimeBlock(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(D, eps=cfg.layer_norm_eps)
        self.spatial_attn_agg = SpatialAggregation(cfg)
        self.patch_embed.requires_grad_(False)  # unused (RN-15); frozen as in the reference
        self._init_weights()

    def _init_weights(self) -> None:
        """Fresh-model init (MotionFormer style). Submodules added by subclasses keep PyTorch defaults."""
        for t in (self.cls_token, self.pos_embed, self.temp_embed, self.spatial_attn_agg.cls_token):
            nn.init.trunc_normal_(t, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def embed(self, x: torch.Tensor, extra_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """`(N, C, T, H, W)` -> tokens `(N, 1 + t*h*w, D)` with CLS and "separate" embeddings (RN-14)."""
        tok = self.patch_embed_3d(x)
        if extra_tokens is not None:
            tok = tok + extra_tokens
        N, _, D = tok.shape
        tok = torch.cat([self.cls_token.expand(N, 1, D), tok], dim=1)
        t, hw = self.cfg.temporal_resolution, self.cfg.patches_per_frame
        patch_pos = self.pos_embed[:, 1:].repeat(1, t, 1) + self.temp_embed.repeat_interleave(hw, dim=1)
        return tok + torch.cat([self.pos_embed[:, :1], patch_pos], dim=1)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens after the last block, CLS first, before the final norm: `(N, 1 + t*h*w, D)`."""
        x = self.embed(x)
        for blk in self.blocks:
            x = blk(x)
        return x

    def aggregate(self, tokens: torch.Tensor) -> torch.Tensor:
        """Drop CLS, final norm, spatial CLS aggregation: `(N, 1 + t*h*w, D)` -> `(N, t, D)`."""
        return self.spatial_attn_agg(self.norm(tokens[:, 1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.aggregate(self.forward_tokens(x))


def _to_segments(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """`(B, S, T, C, H, W)` -> `(B*S, C, T, H, W)` plus (B, S)."""
    B, S = x.shape[:2]
    return x.flatten(0, 1).transpose(1, 2), (B, S)


class Synchformer(nn.Module):
    """MMAudio's `Synchformer` (visual branch only): `(B, S, T, C, H, W)` -> `(B, S, t, D)`."""

    def __init__(self, cfg: MotionFormerConfig | None = None):
        super().__init__()
        self.cfg = cfg or MotionFormerConfig.full()
        self.vfeat_extractor = MotionFormer(self.cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seg, (B, S) = _to_segments(x)
        out = self.vfeat_extractor(seg)
        return out.view(B, S, *out.shape[1:])
