"""Plain MotionFormer / Synchformer: configs, divided attention semantics, aggregation, segmenting."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from saganet.errors import CheckpointError, InputError
from saganet.models.motionformer import DividedAttention, MotionFormerConfig, Synchformer
from saganet.models.sync_encoder import SyncEncoder, load_mmaudio_synchformer, num_segments, segment_frames


def tiny(**kw) -> MotionFormerConfig:
    return MotionFormerConfig.tiny(**kw)


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.ndim <= 1 else p[0].numel() ** -0.5))
    return model


def test_config_defaults_and_validation():
    full = MotionFormerConfig.full()
    assert (full.embed_dim, full.depth, full.num_heads, full.num_tokens) == (768, 12, 12, 1569)
    assert full.cross_attn_intermediate == 3072 and full.temporal_resolution == 8
    t = tiny()
    assert (t.img_size, t.grid, t.num_tokens, t.cross_attn_intermediate) == (64, 4, 129, 192)
    eff = {"embed_dim": 96, "depth": 2, "num_heads": 4, "temporal_resolution": 8, "cross_attn_intermediate": 384}
    assert MotionFormerConfig.from_effective(eff).frames_per_segment == 16
    with pytest.raises(ValueError):
        MotionFormerConfig(embed_dim=50)
    with pytest.raises(ValueError):
        MotionFormerConfig(img_size=60)
    with pytest.raises(ValueError):
        MotionFormerConfig(gated_attention="bogus")


def naive_divided_attention(attn: DividedAttention, x: torch.Tensor, axis: str, f: int) -> torch.Tensor:
    """Literal per-group loop (RN-14): CLS query over all tokens, each group over itself + CLS."""
    N, L, D = x.shape
    H, hd = attn.num_heads, D // attn.num_heads
    n = (L - 1) // f
    q, k, v = attn.qkv(x).chunk(3, dim=-1)
    q, k, v = (t.view(N, L, H, hd).transpose(1, 2) for t in (q, k, v))
    q = q * hd**-0.5
    out = torch.zeros(N, H, L, hd)
    out[:, :, 0] = (q[:, :, :1] @ k.transpose(-1, -2)).softmax(-1).matmul(v)[:, :, 0]
    groups = [[1 + fi * n + ni for ni in range(n)] for fi in range(f)]  # space: one frame each
    if axis == "time":
        groups = [[1 + fi * n + ni for fi in range(f)] for ni in range(n)]
    for g in groups:
        kk = torch.cat([k[:, :, :1], k[:, :, g]], dim=2)
        vv = torch.cat([v[:, :, :1], v[:, :, g]], dim=2)
        out[:, :, g] = (q[:, :, g] @ kk.transpose(-1, -2)).softmax(-1) @ vv
    return attn.proj(out.transpose(1, 2).reshape(N, L, D))


@pytest.mark.parametrize("axis", ["time", "space"])
def test_divided_attention_matches_literal_loop(axis):
    torch.manual_seed(0)
    attn = randomize(DividedAttention(24, 3))
    f, n = 4, 6
    x = torch.randn(2, 1 + f * n, 24)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, axis, f), naive_divided_attention(attn, x, axis, f), rtol=1e-5, atol=1e-5)


def test_synchformer_shapes_segments_independent_and_aggregation():
    cfg = tiny()
    net = randomize(Synchformer(cfg)).eval()
    x = torch.rand(2, 3, 16, 3, 64, 64) * 2 - 1  # (B, S, T, C, H, W)
    with torch.no_grad():
        out = net(x)
        assert out.shape == (2, 3, 8, 48)
        single = net(x[1:2, 2:3])
        torch.testing.assert_close(out[1:2, 2:3], single, rtol=1e-5, atol=1e-5)
        # spatial aggregation = per time step, CLS + patches through the encoder layer, CLS output
        mf = net.vfeat_extractor
        tok = mf.forward_tokens(x[0, :1].transpose(1, 2))  # (1, 129, D)
        agg = mf.spatial_attn_agg
        patches = mf.norm(tok[:, 1:]).view(8, 16, 48)
        manual = torch.nn.TransformerEncoderLayer.forward(
            agg, torch.cat([agg.cls_token.expand(8, 1, 48), patches], dim=1)
        )[:, 0]
        torch.testing.assert_close(out[0, 0], manual, rtol=1e-5, atol=1e-5)


def test_unused_2d_patch_embed_has_no_effect():
    net = randomize(Synchformer(tiny())).eval()
    x = torch.rand(1, 1, 16, 3, 64, 64)
    with torch.no_grad():
        a = net(x)
        net.vfeat_extractor.patch_embed.proj.weight.mul_(5.0)
        torch.testing.assert_close(net(x), a)


@pytest.mark.parametrize("T", [16, 23, 40, 125])
def test_segment_frames(T):
    x = torch.arange(T, dtype=torch.float32).view(1, T, 1, 1, 1).expand(2, T, 3, 4, 5)
    seg = segment_frames(x)
    S = (T - 16) // 8 + 1
    assert seg.shape == (2, S, 16, 3, 4, 5) and num_segments(T) == S
    for s in range(S):
        torch.testing.assert_close(seg[:, s], x[:, 8 * s : 8 * s + 16])


def test_segment_frames_rejects_short_clips():
    with pytest.raises(InputError, match="at least 16"):
        segment_frames(torch.zeros(1, 15, 3, 8, 8))
    with pytest.raises(InputError):
        segment_frames(torch.zeros(15, 3, 8, 8))


@pytest.mark.parametrize("T", [16, 23, 40])
def test_plain_encoder_frame_counts_and_chunking(T):
    cfg = tiny(depth=1)
    torch.manual_seed(1)
    enc = SyncEncoder(randomize(Synchformer(cfg)), chunk_size=1).eval()
    frames = torch.rand(2, T, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        out = enc(frames)
        assert out.shape == (2, num_segments(T) * 8, 48)
        for size in (3, 100):  # uneven and single chunk
            enc.chunk_size = size
            torch.testing.assert_close(enc(frames), out, rtol=1e-5, atol=1e-6)
        # segment s of the encoder output = the model on frames 8s..8s+16
        s = num_segments(T) - 1
        direct = enc.model(frames[:, None, 8 * s : 8 * s + 16])[:, 0]
        torch.testing.assert_close(out[:, 8 * s :], direct, rtol=1e-5, atol=1e-6)


def test_load_mmaudio_synchformer_plain(caplog):
    src = randomize(Synchformer(tiny(depth=1)), seed=3)
    sd = dict(src.state_dict())
    sd["afeat_extractor.some.weight"] = torch.zeros(2)
    sd["transformer.head.bias"] = torch.zeros(2)
    dst = Synchformer(tiny(depth=1))
    with caplog.at_level(logging.WARNING):
        report = load_mmaudio_synchformer(dst, sd)
    assert report["ignored"] == ["afeat_extractor.some.weight", "transformer.head.bias"]
    assert "ignoring 2 keys" in caplog.text
    for k, v in src.state_dict().items():
        torch.testing.assert_close(dst.state_dict()[k], v)
    del sd["vfeat_extractor.norm.bias"]
    with pytest.raises(CheckpointError, match="missing"):
        load_mmaudio_synchformer(Synchformer(tiny(depth=1)), sd)
    with pytest.raises(CheckpointError, match="vfeat_extractor"):
        load_mmaudio_synchformer(Synchformer(tiny(depth=1)), {"x": torch.zeros(1)})


def test_gelu_is_exact_in_backbone_mlp():
    net = Synchformer(tiny(depth=1))
    mlp = net.vfeat_extractor.blocks[0].mlp
    x = torch.randn(3, 48)
    with torch.no_grad():
        torch.testing.assert_close(mlp(x), mlp.fc2(F.gelu(mlp.fc1(x))))
