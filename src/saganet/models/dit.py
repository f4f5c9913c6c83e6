"""The MM-DiT flow network of MMAudio / SAGANet with optional LoRA (RN-1, RN-5 to RN-13).

Three token streams (audio latent, CLIP frames, text) go through `depth - fused_depth` joint blocks
(one joint attention over [latent, clip, text]), then the latent alone goes through `fused_depth`
single-stream blocks. Time and the global (clip + text) condition modulate every block (adaLN);
the Synchformer (sync) features, upsampled to the latent length, are added to that modulation per
latent frame; this is the only path by which sync / segmentation features enter the network.

Class and key names follow the reference (`MMAudio` = `MMDiT`), so checkpoints load unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from saganet.configs import DiTConfig
from saganet.errors import CheckpointError, InputError
from saganet.models.layers import (
    MLP,
    ChannelLastConv1d,
    ConvMLP,
    TimestepEmbedder,
    apply_rope,
    attention,
    compute_rope_rotations,
    modulate,
)
from saganet.models.lora import LoRAMergedLinear, lora_layers, mark_lora_merged, sync_lora_to_mode
from saganet.models.state_dict import load_strict

log = logging.getLogger(__name__)

__all__ = [
    "PreprocessedConditions",
    "SelfAttention",
    "MMDitSingleBlock",
    "JointBlock",
    "FinalBlock",
    "MMDiT",
    "MMAudio",
    "load_dit_state_dict",
    "adapt_dit_state_dict",
    "NON_PERSISTENT_KEYS",
]

# Buffers the module computes itself; old checkpoints may still carry them (reference load_weights).
NON_PERSISTENT_KEYS = ("t_embed.freqs", "latent_rot", "clip_rot")


@dataclass
class PreprocessedConditions:
    """Conditions after the input projections; computed once per generation, reused at every ODE step.

    clip_f (B, clip_seq_len, h), sync_f (B, latent_seq_len, h) (already upsampled), text_f
    (B, text_seq_len, h), clip_f_c / text_f_c (B, h) (pooled, projected).
    """

    clip_f: torch.Tensor
    sync_f: torch.Tensor
    text_f: torch.Tensor
    clip_f_c: torch.Tensor
    text_f_c: torch.Tensor

    def expand(self, bs: int) -> PreprocessedConditions:
        """Broadcast batch-1 (or batch-bs) conditions to batch `bs` (views, no copy)."""
        return PreprocessedConditions(**{
            f.name: getattr(self, f.name).expand(bs, *getattr(self, f.name).shape[1:]) for f in fields(self)
        })

    @staticmethod
    def cat(items: list[PreprocessedConditions]) -> PreprocessedConditions:
        """Concatenate along the batch axis (e.g. cond + uncond for one batched CFG call)."""
        return PreprocessedConditions(**{
            f.name: torch.cat([getattr(c, f.name) for c in items], dim=0) for f in fields(PreprocessedConditions)
        })


class SelfAttention(nn.Module):
    """qkv projection + per-head RMSNorm of q, k + RoPE; the attention itself is done by the caller.

    Interleaved qkv (RN-1): the 3·dim output channels are split as (heads, head_dim, 3) with q/k/v
    innermost: channel `3*(h*head_dim + i) + j` is head h, channel i, and q/k/v for j = 0/1/2.
    """

    def __init__(self, dim: int, num_heads: int, use_lora: bool = False, lora_r: int = 16,
                 lora_alpha: int = 32) -> None:
        super().__init__()
        self.dim, self.num_heads, self.head_dim = dim, num_heads, dim // num_heads
        if use_lora:
            # RN-6: loralib MergedLinear(enable_lora=[True, False, True]) on contiguous thirds.
            self.qkv: nn.Linear = LoRAMergedLinear(dim, 3 * dim, r=lora_r, lora_alpha=lora_alpha,
                                                   enable_lora=(True, False, True), bias=True)
        else:
            self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        # RMSNorm with PyTorch's default eps (eps=None -> finfo(dtype).eps), not 1e-6.
        self.q_norm = nn.RMSNorm(self.head_dim)
        self.k_norm = nn.RMSNorm(self.head_dim)

    def pre_attention(self, x: torch.Tensor, rot: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, N, dim) -> q, k, v each (B, H, N, head_dim)."""
        b, n, _ = x.shape
        qkv = self.qkv(x).view(b, n, self.num_heads, self.head_dim, 3)  # j innermost (RN-1)
        qkv = qkv.permute(4, 0, 2, 1, 3)  # (3, B, H, N, d)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q, k = self.q_norm(q), self.k_norm(k)
        if rot is not None:  # RoPE after the q/k RMSNorm, never on v (RN-10)
            q, k = apply_rope(q, rot), apply_rope(k, rot)
        return q, k, v


class MMDitSingleBlock(nn.Module):
    """One adaLN transformer stream. `pre_only` blocks only produce q/k/v (no post-attention parameters).

    kernel_size 1 uses linears for `linear1` and the FFN; otherwise channel-last convolutions.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, pre_only: bool = False,
                 kernel_size: int = 7, padding: int = 3, use_lora: bool = False, lora_r: int = 16,
                 lora_alpha: int = 32) -> None:
        super().__init__()
        self.pre_only = pre_only
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.attn = SelfAttention(dim, num_heads, use_lora=use_lora, lora_r=lora_r, lora_alpha=lora_alpha)
        if pre_only:
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        else:
            if kernel_size == 1:
                self.linear1: nn.Module = nn.Linear(dim, dim)
                self.ffn: nn.Module = MLP(dim, int(dim * mlp_ratio))
            else:
                self.linear1 = ChannelLastConv1d(dim, dim, kernel_size, padding=padding)
                self.ffn = ConvMLP(dim, int(dim * mlp_ratio), kernel_size=kernel_size, padding=padding)
            self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def pre_attention(self, x: torch.Tensor, c: torch.Tensor, rot: torch.Tensor | None):
        """x (B, N, D), c (B, 1, D) or (B, N, D) -> ((q, k, v), post-attention modulation terms)."""
        mod = self.adaLN_modulation(c)
        if self.pre_only:
            shift_msa, scale_msa = mod.chunk(2, dim=-1)
            rest = None
        else:
            shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod.chunk(6, dim=-1)
            rest = (gate_msa, shift_mlp, scale_mlp, gate_mlp)
        qkv = self.attn.pre_attention(modulate(self.norm1(x), shift_msa, scale_msa), rot)
        return qkv, rest

    def post_attention(self, x: torch.Tensor, attn_out: torch.Tensor, rest) -> torch.Tensor:
        """Gated residual attention projection, then the gated residual FFN. (B, N, D) -> (B, N, D)."""
        if self.pre_only:
            return x
        gate_msa, shift_mlp, scale_mlp, gate_mlp = rest
        x = x + self.linear1(attn_out) * gate_msa
        return x + self.ffn(modulate(self.norm2(x), shift_mlp, scale_mlp)) * gate_mlp

    def forward(self, x: torch.Tensor, c: torch.Tensor, rot: torch.Tensor | None) -> torch.Tensor:
        qkv, rest = self.pre_attention(x, c, rot)
        return self.post_attention(x, attention(*qkv), rest)


class JointBlock(nn.Module):
    """Latent, clip and text streams with one joint attention over [latent, clip, text] tokens (RN-10)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, pre_only: bool = False,
                 use_lora: bool = False, lora_r: int = 16, lora_alpha: int = 32) -> None:
        super().__init__()
        self.pre_only = pre_only
        # LoRA only ever on the latent stream (clip/text qkv stay plain linears).
        self.latent_block = MMDitSingleBlock(dim, num_heads, mlp_ratio, pre_only=False, kernel_size=3, padding=1,
                                             use_lora=use_lora, lora_r=lora_r, lora_alpha=lora_alpha)
        self.clip_block = MMDitSingleBlock(dim, num_heads, mlp_ratio, pre_only=pre_only, kernel_size=3, padding=1)
        self.text_block = MMDitSingleBlock(dim, num_heads, mlp_ratio, pre_only=pre_only, kernel_size=1)

    def forward(self, latent: torch.Tensor, clip_f: torch.Tensor, text_f: torch.Tensor, global_c: torch.Tensor,
                extended_c: torch.Tensor, latent_rot: torch.Tensor, clip_rot: torch.Tensor):
        """latent (B, N, D), clip_f (B, Nc, D), text_f (B, Nt, D) -> the same three (clip/text unchanged if pre_only)."""
        x_qkv, x_rest = self.latent_block.pre_attention(latent, extended_c, latent_rot)
        c_qkv, c_rest = self.clip_block.pre_attention(clip_f, global_c, clip_rot)
        t_qkv, t_rest = self.text_block.pre_attention(text_f, global_c, None)  # text: no RoPE
        n_x, n_c = latent.shape[1], clip_f.shape[1]
        out = attention(*(torch.cat([x_qkv[i], c_qkv[i], t_qkv[i]], dim=2) for i in range(3)))
        latent = self.latent_block.post_attention(latent, out[:, :n_x], x_rest)
        if not self.pre_only:
            clip_f = self.clip_block.post_attention(clip_f, out[:, n_x:n_x + n_c], c_rest)
            text_f = self.text_block.post_attention(text_f, out[:, n_x + n_c:], t_rest)
        return latent, clip_f, text_f


class FinalBlock(nn.Module):
    """adaLN (shift, scale) + LayerNorm + k=7 conv to the latent channels. (B, N, D) -> (B, N, latent_dim)."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.conv = ChannelLastConv1d(dim, out_dim, kernel_size=7, padding=3)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.conv(modulate(self.norm(x), shift, scale))


class MMDiT(nn.Module):
    """MM-DiT velocity network `v(x_t, t | clip, sync, text)` (reference class `MMAudio`).

    Shapes (B batch, N latent_seq_len, h hidden_dim): latent (B, N, latent_dim); clip_f
    (B, clip_seq_len, clip_dim); sync_f (B, sync_seq_len, sync_dim); text_f (B, text_seq_len, text_dim);
    t (B,) in [0, 1] (0 = noise, 1 = data).

    `latent_mean`, `latent_std` (1, 1, latent_dim) and `empty_string_feat` (text_seq_len, text_dim) are
    frozen parameters (so they are in checkpoints); `empty_clip_feat`, `empty_sync_feat` are learned
    unconditional features. RoPE tables and timestep frequencies are non-persistent buffers.
    """

    def __init__(self, cfg: DiTConfig, latent_mean: torch.Tensor | None = None,
                 latent_std: torch.Tensor | None = None, empty_string_feat: torch.Tensor | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden_dim
        self.v2 = cfg.v2
        self.use_lora = cfg.use_lora
        self.latent_dim = cfg.latent_dim
        self.hidden_dim = h
        self.num_heads = cfg.num_heads
        self._rot_cache: dict[tuple[int, int, str], tuple[torch.Tensor, torch.Tensor]] = {}

        # RN-12: v1 = SELU after the conv projections, no activation after the clip/text linears;
        # v2 = SiLU everywhere (which shifts the Sequential indices of the clip/text MLPs to 2).
        act = nn.SiLU if cfg.v2 else nn.SELU
        self.audio_input_proj = nn.Sequential(
            ChannelLastConv1d(cfg.latent_dim, h, kernel_size=7, padding=3), act(),
            ConvMLP(h, 4 * h, kernel_size=7, padding=3),
        )
        self.sync_input_proj = nn.Sequential(
            ChannelLastConv1d(cfg.sync_dim, h, kernel_size=7, padding=3), act(),
            ConvMLP(h, 4 * h, kernel_size=3, padding=1),
        )
        if cfg.v2:
            self.clip_input_proj = nn.Sequential(nn.Linear(cfg.clip_dim, h), nn.SiLU(),
                                                 ConvMLP(h, 4 * h, kernel_size=3, padding=1))
            self.text_input_proj = nn.Sequential(nn.Linear(cfg.text_dim, h), nn.SiLU(), MLP(h, 4 * h))
        else:
            self.clip_input_proj = nn.Sequential(nn.Linear(cfg.clip_dim, h), ConvMLP(h, 4 * h, kernel_size=3, padding=1))
            self.text_input_proj = nn.Sequential(nn.Linear(cfg.text_dim, h), MLP(h, 4 * h))

        self.clip_cond_proj = nn.Linear(h, h)
        self.text_cond_proj = nn.Linear(h, h)
        self.global_cond_mlp = MLP(h, 4 * h)
        # RN-8: one learned position per feature within an 8-feature Synchformer segment.
        self.sync_pos_emb = nn.Parameter(torch.zeros(1, 1, 8, cfg.sync_dim))

        self.final_layer = FinalBlock(h, cfg.latent_dim)
        if cfg.v2:  # RN-9
            self.t_embed = TimestepEmbedder(h, frequency_embedding_size=h, max_period=1)
        else:
            self.t_embed = TimestepEmbedder(h, frequency_embedding_size=256, max_period=10000)

        lora_kw = dict(use_lora=cfg.use_lora, lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha)
        n_joint = cfg.num_joint_blocks
        self.joint_blocks = nn.ModuleList([
            JointBlock(h, cfg.num_heads, cfg.mlp_ratio, pre_only=(i == n_joint - 1), **lora_kw)
            for i in range(n_joint)
        ])
        self.fused_blocks = nn.ModuleList([
            MMDitSingleBlock(h, cfg.num_heads, cfg.mlp_ratio, kernel_size=3, padding=1, **lora_kw)
            for _ in range(cfg.fused_depth)
        ])

        if latent_mean is None:
            # Placeholders (NaN) that a checkpoint is expected to overwrite.
            if latent_std is not None:
                raise ValueError("give both latent_mean and latent_std, or neither")
            latent_mean = torch.full((cfg.latent_dim,), float("nan"))
            latent_std = torch.full((cfg.latent_dim,), float("nan"))
        elif latent_std is None:
            raise ValueError("give both latent_mean and latent_std, or neither")
        if empty_string_feat is None:
            empty_string_feat = torch.zeros(cfg.text_seq_len, cfg.text_dim)
        self.latent_mean = nn.Parameter(latent_mean.reshape(1, 1, -1).clone(), requires_grad=False)
        self.latent_std = nn.Parameter(latent_std.reshape(1, 1, -1).clone(), requires_grad=False)
        self.empty_string_feat = nn.Parameter(empty_string_feat.clone(), requires_grad=False)
        self.empty_clip_feat = nn.Parameter(torch.zeros(1, cfg.clip_dim))
        self.empty_sync_feat = nn.Parameter(torch.zeros(1, cfg.sync_dim))

        self.initialize_weights()

    # ------------------------------------------------------------------ set-up
    def initialize_weights(self) -> None:
        """Fresh-module init (RN-17): xavier linears, zero adaLN / final layer / sync_pos_emb / empty feats."""
        for m in self.modules():
            if isinstance(m, nn.Linear):  # includes the LoRA base weight (loralib subclasses Linear too)
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.normal_(self.t_embed.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embed.mlp[2].weight, std=0.02)
        zero = [self.final_layer.adaLN_modulation[-1], self.final_layer.conv]
        for jb in self.joint_blocks:
            zero += [jb.latent_block.adaLN_modulation[-1], jb.clip_block.adaLN_modulation[-1],
                     jb.text_block.adaLN_modulation[-1]]
        zero += [fb.adaLN_modulation[-1] for fb in self.fused_blocks]
        for m in zero:
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        for p in (self.sync_pos_emb, self.empty_clip_feat, self.empty_sync_feat):
            nn.init.zeros_(p)

    def rotations(self, latent_seq_len: int, clip_seq_len: int, device: torch.device
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 RoPE tables for these lengths: latent `(1, N, d/2, 2, 2)`, clip `(1, Nc, d/2, 2, 2)`.

        Computed from the input's lengths (any duration, RN-50) and cached per (lengths, device); no module
        state changes between calls. Like the reference, `t_embed.freqs` is not touched.
        """
        key = (latent_seq_len, clip_seq_len, str(device))
        rot = self._rot_cache.get(key)
        if rot is None:
            hd = self.hidden_dim // self.num_heads
            latent_rot = compute_rope_rotations(latent_seq_len, hd, 10000, freq_scaling=1.0, device=device)
            # clip positions scaled onto the latent time axis (RN-10).
            clip_rot = compute_rope_rotations(clip_seq_len, hd, 10000,
                                              freq_scaling=latent_seq_len / clip_seq_len, device=device)
            rot = self._rot_cache[key] = (latent_rot, clip_rot)
        return rot

    @property
    def latent_seq_len(self) -> int:
        """The configured (trained) latent length; inputs of other lengths are accepted."""
        return self.cfg.latent_seq_len

    @property
    def clip_seq_len(self) -> int:
        return self.cfg.clip_seq_len

    @property
    def sync_seq_len(self) -> int:
        return self.cfg.sync_seq_len

    @property
    def text_seq_len(self) -> int:
        return self.cfg.text_seq_len

    @property
    def device(self) -> torch.device:
        return self.latent_mean.device

    # ------------------------------------------------------------------ latents
    def normalize(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """VAE latent -> network space: `(x - mean) / std`. The reference does this IN PLACE (RN-23);
        we return a new tensor unless `inplace=True`."""
        if inplace:
            return x.sub_(self.latent_mean).div_(self.latent_std)
        return (x - self.latent_mean) / self.latent_std

    def unnormalize(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """Network space -> VAE latent: `x * std + mean` (not in place unless asked, RN-23)."""
        if inplace:
            return x.mul_(self.latent_std).add_(self.latent_mean)
        return x * self.latent_std + self.latent_mean

    # ------------------------------------------------------------------ conditions
    @staticmethod
    def _check_shape(name: str, x: torch.Tensor, length: int | None = None) -> None:
        if x.ndim != 3 or (length is not None and x.shape[1] != length):
            want = f"(B, {length}, C)" if length is not None else "(B, N, C)"
            raise InputError(f"{name} has shape {tuple(x.shape)}, expected {want}")

    def default_latent_seq_len(self, clip_seq_len: int, sync_seq_len: int) -> int:
        """The latent length for condition lengths, when the caller gives none: the configured one if the
        inputs have the configured lengths, else it cannot be known (it depends on the sample rate)."""
        if (clip_seq_len, sync_seq_len) == (self.cfg.clip_seq_len, self.cfg.sync_seq_len):
            return self.cfg.latent_seq_len
        raise InputError(f"conditions of {clip_seq_len} CLIP / {sync_seq_len} sync tokens are not the configured "
                         "duration: pass latent_seq_len (SequenceConfig.with_duration(...).latent_seq_len)")

    def preprocess_conditions(self, clip_f: torch.Tensor, sync_f: torch.Tensor, text_f: torch.Tensor,
                              latent_seq_len: int | None = None) -> PreprocessedConditions:
        """Project the three condition streams; cache the result across ODE steps.

        clip_f `(B, Nc, clip_dim)`, sync_f `(B, Ns, sync_dim)` with Ns a multiple of 8, text_f
        `(B, text_seq_len, text_dim)`. Lengths come from the inputs; the sync stream is upsampled to
        `latent_seq_len` (default: the configured length, when the inputs have the configured lengths).
        """
        self._check_shape("clip_f", clip_f)
        self._check_shape("sync_f", sync_f)
        self._check_shape("text_f", text_f, self.cfg.text_seq_len)
        if sync_f.shape[1] % 8:
            raise InputError(f"sync_f has {sync_f.shape[1]} tokens: a multiple of 8 is needed (8 per segment)")
        if latent_seq_len is None:
            latent_seq_len = self.default_latent_seq_len(clip_f.shape[1], sync_f.shape[1])
        bs, n_sync = clip_f.shape[0], sync_f.shape[1]
        # (B, S*8, D) -> (B, S, 8, D) + per-position embedding (RN-8).
        sync_f = (sync_f.view(bs, n_sync // 8, 8, -1) + self.sync_pos_emb).flatten(1, 2)
        clip_f = self.clip_input_proj(clip_f)  # (B, Nc, h)
        sync_f = self.sync_input_proj(sync_f)  # (B, Ns, h)
        text_f = self.text_input_proj(text_f)  # (B, Nt, h)
        # RN-8: upsample to the latent length with nearest-EXACT (not "nearest").
        sync_f = F.interpolate(sync_f.transpose(1, 2), size=latent_seq_len, mode="nearest-exact").transpose(1, 2)
        clip_f_c = self.clip_cond_proj(clip_f.mean(dim=1))  # (B, h)
        text_f_c = self.text_cond_proj(text_f.mean(dim=1))  # (B, h), padding tokens included
        return PreprocessedConditions(clip_f, sync_f, text_f, clip_f_c, text_f_c)

    def get_empty_string_sequence(self, bs: int) -> torch.Tensor:
        return self.empty_string_feat.unsqueeze(0).expand(bs, -1, -1)

    def get_empty_clip_sequence(self, bs: int, length: int | None = None) -> torch.Tensor:
        """`(bs, length, clip_dim)`, length defaulting to the configured one."""
        return self.empty_clip_feat.unsqueeze(0).expand(bs, length or self.cfg.clip_seq_len, -1)

    def get_empty_sync_sequence(self, bs: int, length: int | None = None) -> torch.Tensor:
        return self.empty_sync_feat.unsqueeze(0).expand(bs, length or self.cfg.sync_seq_len, -1)

    def get_empty_conditions(self, bs: int, negative_text_features: torch.Tensor | None = None, *,
                             clip_seq_len: int | None = None, sync_seq_len: int | None = None,
                             latent_seq_len: int | None = None) -> PreprocessedConditions:
        """Unconditional branch for CFG (RN-13): empty clip + empty sync + (empty string or negative text).

        Computed at batch 1 and expanded; with `negative_text_features` (bs, Nt, text_dim) the text
        fields are computed per sample.
        """
        text = negative_text_features if negative_text_features is not None else self.get_empty_string_sequence(1)
        c = self.preprocess_conditions(self.get_empty_clip_sequence(1, clip_seq_len),
                                       self.get_empty_sync_sequence(1, sync_seq_len), text, latent_seq_len)
        c.clip_f = c.clip_f.expand(bs, -1, -1)
        c.sync_f = c.sync_f.expand(bs, -1, -1)
        c.clip_f_c = c.clip_f_c.expand(bs, -1)
        if negative_text_features is None:
            c.text_f = c.text_f.expand(bs, -1, -1)
            c.text_f_c = c.text_f_c.expand(bs, -1)
        return c

    # ------------------------------------------------------------------ flow
    def predict_flow(self, latent: torch.Tensor, t: torch.Tensor, conds: PreprocessedConditions) -> torch.Tensor:
        """latent (B, N, latent_dim), t (B,) or scalar -> velocity (B, N, latent_dim)."""
        self._check_shape("latent", latent, conds.sync_f.shape[1])
        latent_rot, clip_rot = self.rotations(latent.shape[1], conds.clip_f.shape[1], latent.device)
        if t.ndim == 0:
            t = t.expand(latent.shape[0])
        x = self.audio_input_proj(latent)  # (B, N, h)
        global_c = self.global_cond_mlp(conds.clip_f_c + conds.text_f_c)  # (B, h)
        global_c = self.t_embed(t).unsqueeze(1) + global_c.unsqueeze(1)  # (B, 1, h)
        extended_c = global_c + conds.sync_f  # (B, N, h): per-latent-frame modulation
        clip_f, text_f = conds.clip_f, conds.text_f
        for block in self.joint_blocks:
            x, clip_f, text_f = block(x, clip_f, text_f, global_c, extended_c, latent_rot, clip_rot)
        for block in self.fused_blocks:
            x = block(x, extended_c, latent_rot)
        # The final layer is modulated with global_c, not extended_c (MMAudio's slip, kept: RN-5).
        return self.final_layer(x, global_c)

    def forward(self, latent: torch.Tensor, clip_f: torch.Tensor, sync_f: torch.Tensor, text_f: torch.Tensor,
                t: torch.Tensor) -> torch.Tensor:
        return self.predict_flow(latent, t, self.preprocess_conditions(clip_f, sync_f, text_f, latent.shape[1]))


# Reference name.
MMAudio = MMDiT


def adapt_dit_state_dict(net: MMDiT, src: Mapping[str, torch.Tensor | Mapping]) -> dict[str, torch.Tensor]:
    """Turn a checkpoint into the state dict of `net` (pure; no loading, no strictness).

    * SAGANet training files `{"network": ..., "lora": ..., "synchformer": ...}`: "network" overlaid
      with "lora" (as the reference loads them); MMAudio runner files `{"weights": ...}`; bare dicts.
    * Drops the non-persistent `t_embed.freqs`, `latent_rot`, `clip_rot`.
    * For a net WITHOUT LoRA, drops `lora_A`/`lora_B` pairs whose ΔW is exactly zero (B or A all
      zero; what the reference no-LoRA training config saves, RN-30). Non-zero pairs are kept so
      the strict load reports them.
    """
    if "network" in src and isinstance(src["network"], Mapping):
        sd = dict(src["network"])
        sd.update(src.get("lora") or {})
    elif "weights" in src and isinstance(src["weights"], Mapping):
        sd = dict(src["weights"])
    else:
        sd = dict(src)
    for k in NON_PERSISTENT_KEYS:
        sd.pop(k, None)
    if not any(True for _ in lora_layers(net)):
        for ka in [k for k in sd if k.endswith(".lora_A")]:
            kb = ka[: -len("lora_A")] + "lora_B"
            a, b = sd[ka], sd.get(kb)
            if b is not None and (not torch.any(a) or not torch.any(b)):
                del sd[ka], sd[kb]
    return sd


def load_dit_state_dict(net: MMDiT, src: Mapping[str, torch.Tensor | Mapping], *, lora_merged: bool = True,
                        allow_missing_lora: bool = False) -> None:
    """Load a DiT checkpoint into `net` strictly (one `CheckpointError` naming every bad key).

    `lora_merged` (LoRA nets only) says whether the checkpoint's qkv weights ALREADY include
    `scaling·ΔW`. True for released SAGANet files (saved in eval mode, RN-7): the weight is used as is
    and ΔW is never added twice. False for a raw train-mode `state_dict()`. After loading, each LoRA
    layer is brought to the state its module mode implies (merged in eval, un-merged in train), so
    the function computed is the same in both modes.

    `allow_missing_lora`: accept a checkpoint without `lora_*` keys (e.g. MMAudio weights into a
    LoRA net for fine-tuning); the net keeps its current (fresh, B = 0) LoRA tensors.
    """
    sd = adapt_dit_state_dict(net, src)
    layers = dict(lora_layers(net))
    if allow_missing_lora and layers and not any(".lora_" in k for k in sd):
        for name, layer in layers.items():
            sd[f"{name}.lora_A"] = layer.lora_A.detach().clone()
            sd[f"{name}.lora_B"] = layer.lora_B.detach().clone()
        if any(torch.any(layer.lora_B) for layer in layers.values()):
            log.warning("checkpoint has no LoRA tensors; keeping the net's current non-zero LoRA tensors")
    if not layers:
        trained = sorted(k for k in sd if k.endswith((".lora_A", ".lora_B")))
        if trained:
            raise CheckpointError(
                f"checkpoint holds trained (non-zero) LoRA tensors [{', '.join(trained[:4])}…] but the net has "
                "no LoRA: use a LoRA variant (e.g. small_44k_sa)"
            )
    load_strict(net, sd, what=f"MM-DiT ({'LoRA' if layers else 'no LoRA'})")
    if layers:
        mark_lora_merged(net, lora_merged)
        sync_lora_to_mode(net)
