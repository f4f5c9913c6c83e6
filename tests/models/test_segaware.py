"""Segmentation-aware MotionFormer: gated layers, mask embedding, encoder wrapper, loading, training modes."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from saganet.checkpoint import load_strict
from saganet.errors import CheckpointError, InputError
from saganet.focal import focal_crop
from saganet.models.motionformer import MotionFormerConfig, Synchformer
from saganet.models.segaware import GatedCrossAttention, GatedCrossAttentionLayer, SynchformerWithContext
from saganet.models.sync_encoder import (
    SegAwareSyncEncoder,
    load_mmaudio_synchformer,
    load_saganet_synchformer,
    num_segments,
    set_trainable,
)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Golden-style random weights (gates +-U(0.5, 1)) so that every addition takes part."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("_factor"):
                p.copy_((torch.rand((), generator=g) * 0.5 + 0.5) * (1 if torch.rand((), generator=g) > 0.5 else -1))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.ndim <= 1 else p[0].numel() ** -0.5))
    return model


def tiny(**kw) -> MotionFormerConfig:
    return MotionFormerConfig.tiny(depth=1, **kw)


def clip(B=1, T=16, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(B, T, 3, size, size, generator=g) * 2 - 1
    masks = torch.zeros(B, T, 1, size, size)
    for b in range(B):
        y, x = 4 + 9 * b, 6 + 11 * b
        masks[b, :, :, y : y + 20, x : x + 24] = 1.0
    return frames, masks


def test_fresh_model_init():
    net = SynchformerWithContext(tiny())
    mf = net.vfeat_extractor
    assert torch.count_nonzero(mf.patch_embed_3d_mask.proj.weight) == 0
    assert torch.count_nonzero(mf.patch_embed_3d_mask.proj.bias) > 0  # default-init bias (RN-17)
    for layer in mf.cross_attn_layers:
        assert layer.attn_factor.item() == 0 and layer.mlp_factor.item() == 0


def naive_reference_attention(att: GatedCrossAttention, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
    """RN-2 spelled out: with H heads, the first H/3 heads self-attend within q(x) (q, k, v
    interleaved inside the q projection), the other heads self-attend within kv(ctx)."""
    N, L, D = x.shape
    H, hd = att.num_heads, att.head_dim
    src = torch.cat([att.q(x), att.kv(ctx)], dim=-1)  # (N, L, 3D)
    outs = []
    for h in range(H):
        chunk = src[..., h * 3 * hd : (h + 1) * 3 * hd].view(N, L, hd, 3)
        q, k, v = chunk[..., 0], chunk[..., 1], chunk[..., 2]
        q = F.rms_norm(q * hd**-0.5, (hd,), att.q_norm.weight)
        k = F.rms_norm(k, (hd,), att.k_norm.weight)
        outs.append(((q @ k.transpose(-1, -2)) * hd**-0.5).softmax(-1) @ v)
    return att.out_proj(torch.cat(outs, dim=-1))


def test_reference_gated_attention_is_two_self_attention_groups():
    att = randomize(GatedCrossAttention(48, 12))
    x, ctx = torch.randn(2, 10, 48), torch.randn(2, 10, 48)
    with torch.no_grad():
        out = att(x, ctx)
        torch.testing.assert_close(out, naive_reference_attention(att, x, ctx), rtol=1e-5, atol=1e-5)
        # heads 0-3 only see the focal stream: their contribution ignores ctx entirely
        head_out = {}
        for name, c in (("a", ctx), ("b", torch.randn_like(ctx))):
            att.out_proj.weight[:, 16:] = 0  # keep only heads 0-3 (channels 0..15) in the output
            head_out[name] = att(x, c)
        torch.testing.assert_close(head_out["a"], head_out["b"])
    with pytest.raises(ValueError, match="equal lengths"):
        att(x, torch.randn(2, 7, 48))


def test_cross_mode_is_a_true_cross_attention():
    att = randomize(GatedCrossAttention(48, 12, mode="cross"))
    x, ctx = torch.randn(2, 10, 48), torch.randn(2, 7, 48)  # lengths may differ
    with torch.no_grad():
        out = att(x, ctx)
        q = att.q_norm(att.q(x).view(2, 10, 12, 4).transpose(1, 2) * 0.5)
        k, v = att.kv(ctx).view(2, 7, 2, 12, 4).permute(2, 0, 3, 1, 4)
        ref = att.out_proj(F.scaled_dot_product_attention(q, att.k_norm(k), v).transpose(1, 2).reshape(2, 10, 48))
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        # permuting the context tokens does not change a cross-attention's output
        torch.testing.assert_close(att(x, ctx.flip(1)), out, rtol=1e-5, atol=1e-5)


def test_gated_layer_at_zero_gates_is_identity():
    layer = GatedCrossAttentionLayer(tiny())
    x = torch.randn(2, 129, 48)
    torch.testing.assert_close(layer(x, torch.randn(2, 129, 48)), x)


def test_zero_gates_and_zero_mask_embed_equal_plain_backbone_on_crop():
    cfg = tiny()
    net = randomize(SynchformerWithContext(cfg), seed=1).eval()
    with torch.no_grad():
        for layer in net.vfeat_extractor.cross_attn_layers:
            layer.attn_factor.zero_()
            layer.mlp_factor.zero_()
        net.vfeat_extractor.patch_embed_3d_mask.proj.weight.zero_()
        net.vfeat_extractor.patch_embed_3d_mask.proj.bias.zero_()
    plain = Synchformer(cfg).eval()
    load_mmaudio_synchformer(plain, {k: v for k, v in net.state_dict().items() if k in plain.state_dict()})
    frames, masks = clip()
    dx, dm, _ = focal_crop(frames, masks, out_size=(64, 64))
    with torch.no_grad():
        out = net(frames[:, None], masks[:, None], dx[:, None], dm[:, None])
        torch.testing.assert_close(out, plain(dx[:, None]), rtol=1e-5, atol=1e-5)


def test_empty_vs_full_mask_give_finite_different_features():
    net = randomize(SynchformerWithContext(tiny()), seed=2).eval()
    frames, _ = clip()
    zero, full = torch.zeros(1, 16, 1, 64, 64), torch.ones(1, 16, 1, 64, 64)
    with torch.no_grad():
        a = net(frames[:, None], zero[:, None], frames[:, None], zero[:, None])
        b = net(frames[:, None], full[:, None], frames[:, None], full[:, None])
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
    assert (a - b).abs().max() > 1e-3


@pytest.mark.parametrize("T", [16, 23, 40])
def test_encoder_odd_frame_counts(T):
    enc = SegAwareSyncEncoder(randomize(SynchformerWithContext(tiny()), seed=3)).eval()
    frames, masks = clip(T=T)
    with torch.no_grad():
        out = enc(frames, masks)  # focal crop computed inside
    assert out.shape == (1, num_segments(T) * 8, 48) and torch.isfinite(out).all()


def test_encoder_batch_of_objects_equals_per_object_runs_and_chunking():
    enc = SegAwareSyncEncoder(randomize(SynchformerWithContext(tiny()), seed=4), chunk_size=2).eval()
    frames, masks = clip(B=3, T=24)
    frames = frames[:1].expand(3, -1, -1, -1, -1)  # one video, three objects
    with torch.no_grad():
        batched = enc(frames, masks)
        assert batched.shape == (3, 16, 48)
        for b in range(3):
            torch.testing.assert_close(batched[b : b + 1], enc(frames[b : b + 1], masks[b : b + 1]),
                                       rtol=1e-5, atol=1e-5)
        for size in (1, 4, 64):  # 6 segments: single, uneven, all at once
            enc.chunk_size = size
            torch.testing.assert_close(enc(frames, masks), batched, rtol=1e-5, atol=1e-5)
        assert (batched[0] - batched[1]).abs().max() > 1e-4  # the masks matter
    with pytest.raises(InputError):
        enc(frames, masks[:, :20])


def test_cross_mode_loads_same_keys_and_differs():
    ref = randomize(SynchformerWithContext(tiny()), seed=5).eval()
    cross = SynchformerWithContext(tiny(gated_attention="cross")).eval()
    load_strict(cross, ref.state_dict())
    frames, masks = clip()
    dx, dm, _ = focal_crop(frames, masks, out_size=(64, 64))
    args = (frames[:, None], masks[:, None], dx[:, None], dm[:, None])
    with torch.no_grad():
        a, b = ref(*args), cross(*args)
    assert torch.isfinite(b).all() and (a - b).abs().max() > 1e-3


def test_additions_mode_gradients_and_no_context_gradients():
    net = randomize(SynchformerWithContext(tiny()), seed=6).train()
    n = set_trainable(net, "additions")
    assert n == sum(p.numel() for name, p in net.named_parameters()
                    if "cross_attn_layers" in name or "patch_embed_3d_mask" in name)
    frames, masks = clip()
    dx, dm, _ = focal_crop(frames, masks, out_size=(64, 64))
    net(frames[:, None], masks[:, None], dx[:, None], dm[:, None]).square().mean().backward()
    for name, p in net.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        else:
            assert p.grad is None, name
    # the context pass is never differentiated: it returns a tensor without a graph
    ctx = net.vfeat_extractor.context_tokens(frames.transpose(1, 2), masks.transpose(1, 2))
    assert not ctx.requires_grad
    assert set_trainable(net, "none") == 0
    n_all = set_trainable(net, "all")
    assert n_all == sum(p.numel() for p in net.parameters()) - net.vfeat_extractor.patch_embed.proj.weight.numel() - 48
    enc = SegAwareSyncEncoder(net)
    assert sum(p.numel() for p in enc.trainable_parameters("additions")) == n
    with pytest.raises(ValueError):
        set_trainable(net, "lora")


def test_loading_mmaudio_file_into_context_model(caplog):
    src = randomize(Synchformer(tiny()), seed=7)
    sd = {**src.state_dict(), "afeat_extractor.x": torch.zeros(1)}
    net = SynchformerWithContext(tiny())
    init_gate = net.vfeat_extractor.cross_attn_layers[0].cross_attn.q.weight.clone()
    with caplog.at_level(logging.WARNING):
        report = load_mmaudio_synchformer(net, sd)
    assert report["ignored"] == ["afeat_extractor.x"]
    assert len(report["left_at_init"]) == 2 + 18  # mask embed (2) + one gated layer (18 tensors)
    assert "keep their initial values" in caplog.text and "ignoring 1 keys" in caplog.text
    torch.testing.assert_close(net.vfeat_extractor.cross_attn_layers[0].cross_attn.q.weight, init_gate)
    torch.testing.assert_close(net.vfeat_extractor.norm.weight, src.vfeat_extractor.norm.weight)
    bad = dict(sd)
    bad["vfeat_extractor.pos_embed"] = torch.zeros(1, 5, 48)
    with pytest.raises(CheckpointError, match="shape-mismatched"):
        load_mmaudio_synchformer(SynchformerWithContext(tiny()), bad)


def test_loading_saganet_entry_is_strict():
    src = randomize(SynchformerWithContext(tiny()), seed=8)
    dst = SynchformerWithContext(tiny())
    load_saganet_synchformer(dst, src.state_dict())
    torch.testing.assert_close(dst.state_dict(), src.state_dict())
    sd = dict(src.state_dict())
    del sd["vfeat_extractor.cross_attn_layers.0.attn_factor"]
    with pytest.raises(CheckpointError, match="missing"):
        load_saganet_synchformer(dst, sd)
