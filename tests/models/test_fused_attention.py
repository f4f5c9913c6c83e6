"""Every attention of the package runs PyTorch's fused CPU kernel, not the unfused math fallback that a
strided (non-contiguous) q/k/v silently selects (the segmentation-aware encoder's gated layer did, 4x slower)."""

from __future__ import annotations

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from saganet.builders import TINY_CLIP_CFG
from saganet.configs import dit_config
from saganet.models import clip as clip_models
from saganet.models.dit import MMDiT
from saganet.models.layers import fused_sdpa
from saganet.models.motionformer import MotionFormerConfig, Synchformer
from saganet.models.segaware import GatedCrossAttention, SynchformerWithContext
from saganet.models.vae import AttnBlock1D

FUSED = "aten::_scaled_dot_product_flash_attention_for_cpu"
MATH = "aten::_scaled_dot_product_attention_math"


def _kernels(fn) -> set[str]:
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.name for e in prof.events() if "scaled_dot_product" in e.name}


def _check(fn) -> None:
    k = _kernels(fn)
    assert FUSED in k and MATH not in k, sorted(k)


def test_the_check_can_fail():
    """A strided v takes the math kernel; fused_sdpa makes it contiguous."""
    qkv = torch.randn(1, 40, 2, 16, 3)
    q, k, v = qkv.permute(4, 0, 2, 1, 3).unbind(0)
    assert MATH in _kernels(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
    _check(lambda: fused_sdpa(q, k, v))


def test_gated_cross_attention_both_modes():
    for mode in ("reference", "cross"):
        layer = GatedCrossAttention(32, 4, mode).eval()
        x, ctx = torch.randn(2, 17, 32), torch.randn(2, 17, 32)
        _check(lambda layer=layer, x=x, ctx=ctx: layer(x, ctx))


def test_motionformer_and_segaware_encoder():
    cfg = MotionFormerConfig.tiny(depth=1)
    x = torch.randn(1, 1, cfg.frames_per_segment, 3, cfg.img_size, cfg.img_size)
    m = torch.ones(1, 1, cfg.frames_per_segment, 1, cfg.img_size, cfg.img_size)
    _check(lambda: Synchformer(cfg).eval()(x))
    _check(lambda: SynchformerWithContext(cfg).eval()(x, m, x, m))


def test_dit_attention():
    net = MMDiT(dit_config("tiny")).eval()
    c = net.cfg
    args = (torch.randn(1, c.latent_seq_len, c.latent_dim), torch.randn(1, c.clip_seq_len, c.clip_dim),
            torch.randn(1, c.sync_seq_len, c.sync_dim), torch.randn(1, c.text_seq_len, c.text_dim), torch.rand(1))
    _check(lambda: net(*args))


def test_vae_attention():
    block = AttnBlock1D(32, num_heads=2).eval()
    for m in block.modules():
        if hasattr(m, "remove_weight_norm"):
            m.remove_weight_norm()
    _check(lambda: block(torch.randn(1, 32, 20)))


@pytest.mark.parametrize("part", ["text", "image"])
def test_clip_attention(part):
    enc = clip_models.from_config(TINY_CLIP_CFG).eval()
    if part == "text":
        _check(lambda: enc.encode_text(["a violin"]))
    else:
        _check(lambda: enc.encode_frames(torch.rand(1, 2, 3, 32, 32)))
