"""LoRA for the MM-DiT qkv projections, compatible with loralib's `MergedLinear` checkpoints (RN-6, RN-7).

Written here rather than depending on `loralib` because (a) we need ~60 lines of it, and (b) loralib
keeps its "merged" flag implicit: `.eval()` adds ΔW into `weight` in place, `.train()` subtracts it,
and a checkpoint loaded into an already-merged layer is silently treated as merged (RN-7). Released
SAGANet checkpoints were saved in eval mode, so their `qkv.weight` already contains ΔW; loading them
into an un-merged layer and merging again would add ΔW twice. Here the flag is explicit
(`merged`, `mark_merged()`), and `load_lora_state_dict` keeps the weight consistent with it.

Key names are loralib's: `weight`, `bias`, `lora_A` (r·G, in), `lora_B` (block·G, r), with G the
number of enabled blocks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from saganet.errors import CheckpointError

__all__ = [
    "LoRAMergedLinear",
    "lora_layers",
    "lora_state_dict",
    "load_lora_state_dict",
    "mark_only_lora_trainable",
    "merge_lora",
    "unmerge_lora",
    "mark_lora_merged",
    "sync_lora_to_mode",
]


class LoRAMergedLinear(nn.Linear):
    """`nn.Linear(in, out)` plus a low-rank update of some contiguous output blocks.

    loralib's row rule (RN-6): the `out` rows are cut into `len(enable_lora)` CONTIGUOUS blocks; group g
    (the g-th enabled block) gets `scaling * B_g @ A_g` with `A_g = lora_A[g*r:(g+1)*r]` and
    `B_g = lora_B[g*block:(g+1)*block]`. With MMAudio's interleaved qkv (RN-1) the blocks are NOT q/k/v.

    `merged` says whether `weight` currently includes the update. With `merge_on_eval` (loralib's
    default) `.eval()` merges and `.train()` un-merges, in place (RN-7).
    """

    def __init__(self, in_features: int, out_features: int, r: int = 16, lora_alpha: int = 32,
                 enable_lora: Sequence[bool] = (True, False, True), bias: bool = True,
                 merge_on_eval: bool = True, device=None, dtype=None) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        if out_features % len(enable_lora):
            raise ValueError(f"out_features {out_features} is not divisible into {len(enable_lora)} blocks")
        self.r = r
        self.lora_alpha = lora_alpha
        self.scaling = lora_alpha / r if r > 0 else 0.0
        self.enable_lora = tuple(bool(e) for e in enable_lora)
        self.block = out_features // len(enable_lora)
        self.merge_on_eval = merge_on_eval
        self.merged = False
        groups = sum(self.enable_lora)
        if r > 0 and groups:
            self.lora_A = nn.Parameter(torch.empty(r * groups, in_features, device=device, dtype=dtype))
            self.lora_B = nn.Parameter(torch.zeros(self.block * groups, r, device=device, dtype=dtype))
            nn.init.kaiming_uniform_(self.lora_A, a=5**0.5)
            self.weight.requires_grad = False  # as loralib: only A, B (and optionally bias) train

    @property
    def has_lora(self) -> bool:
        return hasattr(self, "lora_A")

    def delta_weight(self) -> torch.Tensor:
        """`scaling * zero_pad(ΔW)`: (out, in), zero on the rows of disabled blocks."""
        g, r = sum(self.enable_lora), self.r
        a = self.lora_A.view(g, r, self.in_features)
        b = self.lora_B.view(g, self.block, r)
        dw = torch.bmm(b, a) * self.scaling  # (G, block, in)
        parts, gi = [], 0
        for on in self.enable_lora:
            if on:
                parts.append(dw[gi])
                gi += 1
            else:
                parts.append(dw.new_zeros(self.block, self.in_features))
        return torch.cat(parts, dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., out). Un-merged: `x Wᵀ + b + x ΔWᵀ` (ΔW applied on the fly)."""
        y = F.linear(x, self.weight, self.bias)
        if self.has_lora and not self.merged:
            y = y + F.linear(x, self.delta_weight())
        return y

    @torch.no_grad()
    def merge(self) -> None:
        """Add ΔW into `weight` (no-op when already merged)."""
        if self.has_lora and not self.merged:
            self.weight += self.delta_weight().to(self.weight.dtype)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract ΔW from `weight` (no-op when not merged)."""
        if self.has_lora and self.merged:
            self.weight -= self.delta_weight().to(self.weight.dtype)
        self.merged = False

    def mark_merged(self, merged: bool = True) -> None:
        """Declare that `weight` already does (or does not) include ΔW, without touching it.

        Use after loading a RELEASED checkpoint, whose qkv weight was saved merged.
        """
        self.merged = merged

    def train(self, mode: bool = True) -> LoRAMergedLinear:
        super().train(mode)
        if self.merge_on_eval:
            if mode:
                self.unmerge()
            else:
                self.merge()
        return self

    def extra_repr(self) -> str:
        return super().extra_repr() + f", r={self.r}, alpha={self.lora_alpha}, enable={self.enable_lora}, merged={self.merged}"


def lora_layers(model: nn.Module) -> Iterator[tuple[str, LoRAMergedLinear]]:
    for name, m in model.named_modules():
        if isinstance(m, LoRAMergedLinear) and m.has_lora:
            yield name, m


def lora_state_dict(model: nn.Module, bias: str = "none") -> dict[str, torch.Tensor]:
    """The LoRA tensors (loralib's `lora_state_dict`): `bias` is "none", "lora_only" or "all"."""
    sd = model.state_dict()
    keys = {k for k in sd if "lora_" in k}
    if bias == "all":
        keys |= {k for k in sd if k.endswith("bias")}
    elif bias == "lora_only":
        keys |= {f"{n}.bias" for n, m in lora_layers(model) if m.bias is not None}
    elif bias != "none":
        raise ValueError(f"bias must be 'none', 'lora_only' or 'all', got {bias!r}")
    return {k: sd[k] for k in sd if k in keys}


@torch.no_grad()
def load_lora_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], strict: bool = True) -> None:
    """Load `lora_A`/`lora_B` (and any bias keys present) into the LoRA layers of `model`.

    Safe with merged layers: a merged layer is un-merged with its OLD ΔW, updated, and merged again
    with the new one, so `weight` never accumulates a stale delta. Other keys are rejected if `strict`.
    """
    layers = dict(lora_layers(model))
    expected = {f"{n}.{p}" for n in layers for p in ("lora_A", "lora_B")}
    present = {k for k in state_dict if "lora_" in k}
    missing, unexpected = expected - present, present - expected
    if strict and (missing or unexpected):
        raise CheckpointError(
            f"LoRA state dict does not fit the model: missing {sorted(missing)[:6]}, unexpected {sorted(unexpected)[:6]}"
        )
    for name, layer in layers.items():
        was_merged = layer.merged
        layer.unmerge()
        for p in ("lora_A", "lora_B", "bias"):
            key = f"{name}.{p}"
            if key in state_dict:
                dst = getattr(layer, p)
                if dst is None or dst.shape != state_dict[key].shape:
                    raise CheckpointError(f"LoRA key {key}: shape {tuple(state_dict[key].shape)} does not fit")
                dst.copy_(state_dict[key])
        if was_merged:
            layer.merge()


def mark_only_lora_trainable(model: nn.Module, bias: str = "lora_only") -> None:
    """Freeze everything but `lora_*` (loralib semantics); `bias`: "none", "lora_only" or "all"."""
    for n, p in model.named_parameters():
        p.requires_grad = "lora_" in n
    if bias == "all":
        for n, p in model.named_parameters():
            if n.endswith("bias"):
                p.requires_grad = True
    elif bias == "lora_only":
        for _, m in lora_layers(model):
            if m.bias is not None:
                m.bias.requires_grad = True
    elif bias != "none":
        raise ValueError(f"bias must be 'none', 'lora_only' or 'all', got {bias!r}")


def merge_lora(model: nn.Module) -> None:
    for _, m in lora_layers(model):
        m.merge()


def unmerge_lora(model: nn.Module) -> None:
    for _, m in lora_layers(model):
        m.unmerge()


def mark_lora_merged(model: nn.Module, merged: bool = True) -> None:
    """Declare the state of every LoRA layer's weight without changing it (see `mark_merged`)."""
    for _, m in lora_layers(model):
        m.mark_merged(merged)


def sync_lora_to_mode(model: nn.Module) -> None:
    """Bring each `merge_on_eval` layer to the state its mode implies (merged in eval, not in train)."""
    for _, m in lora_layers(model):
        if m.merge_on_eval and m.training:
            m.unmerge()
        elif m.merge_on_eval:
            m.merge()
