"""Segmentation-aware MotionFormer (SAGANet's `SynchformerWithContext`), RN-2, RN-3, RN-4, RN-35.

Per 16-frame segment there are two streams through the *same* frozen backbone:

1. context pass: full frame + object mask, no gradients, result = final block tokens (CLS included,
   before the final norm) `ctx (N, L, D)`;
2. focal pass: focal crop + cropped mask; after every block i a gated layer mixes in the same `ctx`.

The focal stream is then aggregated exactly like the plain MotionFormer -> `(N, t, D)`.
Additions (trainable in the reference): `patch_embed_3d_mask` and `cross_attn_layers.*`.
"""

from __future__ import annotations

import torch
from torch import nn

from saganet.models.layers import fused_sdpa
from saganet.models.motionformer import (
    GatedAttentionMode,
    Mlp,
    MotionFormer,
    MotionFormerConfig,
    PatchEmbed3D,
    _to_segments,
)

ADDITION_PREFIXES = ("patch_embed_3d_mask", "cross_attn_layers")


def is_addition(name: str) -> bool:
    """True for parameters the segmentation-aware model adds to the plain backbone (reference rule:
    the name contains `cross_attn_layers` or `patch_embed_3d_mask`)."""
    return any(p in name for p in ADDITION_PREFIXES)


class GatedCrossAttention(nn.Module):
    """The attention of a gated layer: focal tokens `x (N, L, D)` read context tokens `ctx (N, Lc, D)`.

    Two computations share one parameter layout (`q (D->D)`, `kv (D->2D)`, per-head RMSNorms,
    `out_proj`), so both load the released keys strictly:

    * `mode="reference"` (default) reproduces the released SAGANet layer exactly, because the released
      weights were trained with it. RN-2: `cat(q(x), kv(ctx))` is split with the
      interleaved "(h d j)" pattern of RN-1, so heads 0..H/3-1 take q, k and v all from the focal `q`
      projection and the remaining heads take all three from the context `kv` projection. This is two
      groups of *self*-attention, not a cross-attention, and it needs `L == Lc`.
    * `mode="cross"` is the cross-attention the paper describes: queries from the focal stream,
      keys/values from the context (`kv` split in contiguous k|v halves). Use it for new training only;
      it gives different numbers with the released weights.

    In both modes q is multiplied by head_dim^-0.5 *before* its RMSNorm (RN-3, which only changes
    the influence of the RMSNorm eps, PyTorch default) and SDPA then applies its own scale.
    """

    def __init__(self, dim: int, num_heads: int, mode: GatedAttentionMode = "reference"):
        super().__init__()
        self.num_heads, self.head_dim, self.mode = num_heads, dim // num_heads, mode
        self.scale = self.head_dim**-0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.q_norm = nn.RMSNorm(self.head_dim)  # eps=None -> torch.finfo(dtype).eps, as in the release
        self.k_norm = nn.RMSNorm(self.head_dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        N, L, D = x.shape
        H, hd = self.num_heads, self.head_dim
        if self.mode == "reference":
            if ctx.shape[1] != L:
                raise ValueError(f"reference gated attention needs equal lengths, got {L} and {ctx.shape[1]}")
            # RN-1 interleaved split of the concatenation: channel c -> (head, dim, j) = (c//3hd, .., c%3)
            qkv = torch.cat([self.q(x), self.kv(ctx)], dim=-1).view(N, L, H, hd, 3)
            q, k, v = qkv.permute(4, 0, 2, 1, 3).unbind(0)  # (N, H, L, hd) each
        else:
            q = self.q(x).view(N, L, H, hd).transpose(1, 2)
            k, v = self.kv(ctx).view(N, ctx.shape[1], 2, H, hd).permute(2, 0, 3, 1, 4).unbind(0)
        q = self.q_norm(q * self.scale)  # scale before the norm (RN-3)
        k = self.k_norm(k)
        out = fused_sdpa(q, k, v)  # second (SDPA's own) 1/sqrt(hd) scale; v is a strided view: fused_sdpa
        return self.out_proj(out.transpose(1, 2).reshape(N, L, D))


class GatedCrossAttentionLayer(nn.Module):
    """`x + attn_factor * attn(ln1(x), ctx)`, then `x + mlp_factor * mlp(ln2(x))` (tanh-GELU MLP).

    The scalar gates start at 0 so a fresh layer is the identity. The context is not normalised.
    """

    def __init__(self, cfg: MotionFormerConfig):
        super().__init__()
        D = cfg.embed_dim
        self.attn_factor = nn.Parameter(torch.zeros(()))
        self.mlp_factor = nn.Parameter(torch.zeros(()))
        self.cross_attn = GatedCrossAttention(D, cfg.cross_attn_heads, cfg.gated_attention)
        self.layer_norm1 = nn.LayerNorm(D, eps=cfg.layer_norm_eps)
        self.mlp = Mlp(D, cfg.cross_attn_intermediate, approximate="tanh")  # "gelu_pytorch_tanh"
        self.layer_norm2 = nn.LayerNorm(D, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        x = x + self.attn_factor * self.cross_attn(self.layer_norm1(x), ctx)
        return x + self.mlp_factor * self.mlp(self.layer_norm2(x))


class MotionFormerWithContext(MotionFormer):
    """MotionFormer + mask tubelet embedding + one gated layer per block (RN-35)."""

    def __init__(self, cfg: MotionFormerConfig):
        super().__init__(cfg)  # backbone init runs first, so the additions keep PyTorch's default init
        self.patch_embed_3d_mask = PatchEmbed3D(cfg, in_chans=1)
        # Only the weight is zeroed; the bias keeps Conv3d's default init (RN-17).
        nn.init.zeros_(self.patch_embed_3d_mask.proj.weight)
        self.cross_attn_layers = nn.ModuleList(GatedCrossAttentionLayer(cfg) for _ in range(cfg.depth))

    def embed_masked(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`x (N, C, T, H, W)`, `mask (N, 1, T, H, W)` -> tokens `(N, L, D)`."""
        return self.embed(x, extra_tokens=self.patch_embed_3d_mask(mask))

    def context_tokens(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Full-frame pass, never differentiated (RN-4): final block tokens with CLS, before the norm."""
        with torch.no_grad():
            h = self.embed_masked(x, mask)
            for blk in self.blocks:
                h = blk(h)
        return h

    def focal_tokens(self, crop: torch.Tensor, crop_mask: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """Focal pass: block i then gated layer i, every layer reading the same final `ctx` (RN-4)."""
        h = self.embed_masked(crop, crop_mask)
        for blk, gated in zip(self.blocks, self.cross_attn_layers, strict=True):
            h = gated(blk(h), ctx)
        return h

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, mask: torch.Tensor, crop: torch.Tensor, crop_mask: torch.Tensor
    ) -> torch.Tensor:
        """Segments `(N, C, T, H, W)` (masks with C=1) -> features `(N, t, D)`."""
        ctx = self.context_tokens(x, mask)
        return self.aggregate(self.focal_tokens(crop, crop_mask, ctx))


class SynchformerWithContext(nn.Module):
    """Key-compatible with SAGANet's `SynchformerWithContext` (`vfeat_extractor.*`).

    `forward(x (B, S, T, C, H, W), mask (B, S, T, 1, H, W), detail_x, detail_mask) -> (B, S, t, D)`.
    The focal crop must be given (`saganet.focal.focal_crop`): the reference's internal fallback is
    broken (RN-27) and is not reproduced.
    """

    def __init__(self, cfg: MotionFormerConfig | None = None):
        super().__init__()
        self.cfg = cfg or MotionFormerConfig.full()
        self.vfeat_extractor = MotionFormerWithContext(self.cfg)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, detail_x: torch.Tensor, detail_mask: torch.Tensor
    ) -> torch.Tensor:
        seg, (B, S) = _to_segments(x)
        out = self.vfeat_extractor(
            seg, _to_segments(mask)[0], _to_segments(detail_x)[0], _to_segments(detail_mask)[0]
        )
        return out.view(B, S, *out.shape[1:])
