"""MM-DiT: sequence lengths, configs, layers, loading (strict errors, LoRA key handling), durations."""

from __future__ import annotations

import pytest
import torch

from saganet.configs import SequenceConfig, dit_config, dit_variant_names, sequence_config_for
from saganet.errors import CheckpointError, InputError, SaganetError
from saganet.models.dit import MMDiT, adapt_dit_state_dict, load_dit_state_dict
from saganet.models.layers import TimestepEmbedder, apply_rope, compute_rope_rotations, swiglu_hidden_dim


def _inputs(cfg, bs=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(bs, cfg.latent_seq_len, cfg.latent_dim, generator=g),
            torch.randn(bs, cfg.clip_seq_len, cfg.clip_dim, generator=g),
            torch.randn(bs, cfg.sync_seq_len, cfg.sync_dim, generator=g),
            torch.randn(bs, cfg.text_seq_len, cfg.text_dim, generator=g),
            torch.rand(bs, generator=g))


def _randomize(net: torch.nn.Module, seed=0) -> torch.nn.Module:
    """Overwrite every parameter (zero-initialised ones included) so all paths matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.ndim < 2 else p[0].numel() ** -0.5))
        net.latent_std.abs_().add_(0.5)
    return net


@pytest.mark.parametrize(
    "sr,hop,duration,expected",
    [
        (44100, 512, 5.0, (216, 40, 112, 221_184)),
        (44100, 512, 8.0, (345, 64, 192, 353_280)),
        (44100, 512, 4.0, (173, 32, 88, 177_152)),
        (16000, 256, 8.0, (250, 64, 192, 128_000)),
        (16000, 256, 5.0, (157, 40, 112, 80_384)),
    ],
)
def test_sequence_lengths(sr, hop, duration, expected):
    s = SequenceConfig(duration=duration, sampling_rate=sr, spectrogram_frame_rate=hop)
    assert (s.latent_seq_len, s.clip_seq_len, s.sync_seq_len, s.num_audio_frames) == expected
    assert s.sync_seq_len == 8 * s.num_sync_segments


def test_named_configs_and_durations():
    sa = dit_config("small_44k_sa")
    assert (sa.latent_seq_len, sa.clip_seq_len, sa.sync_seq_len, sa.text_seq_len) == (216, 40, 112, 77)
    assert sa.use_lora and not dit_config("small_44k_sa_no_lora").use_lora
    assert (dit_config("small_44k").latent_seq_len, dit_config("small_16k").latent_seq_len) == (345, 250)
    eight = dit_config("small_44k_sa", duration=8.0)
    assert (eight.latent_seq_len, eight.clip_seq_len, eight.sync_seq_len) == (345, 64, 192)
    four = dit_config("small_44k_sa", duration=4)
    assert (four.latent_seq_len, four.clip_seq_len, four.sync_seq_len) == (173, 32, 88)
    assert dit_config("large_44k_v2").v2 and dit_config("large_44k").num_joint_blocks == 7
    assert sequence_config_for("small_16k").sampling_rate == 16000
    assert "tiny" in dit_variant_names()


def test_unknown_variant_and_short_duration_errors():
    with pytest.raises(SaganetError, match="small_44k_sa.*medium_44k_sa"):
        dit_config("smal_44k")
    with pytest.raises(SaganetError, match="too short"):
        dit_config("small_44k_sa", duration=0.5)


def test_layer_rules():
    assert swiglu_hidden_dim(4 * 448) == 1280 and swiglu_hidden_dim(4 * 896) == 2560
    assert swiglu_hidden_dim(4 * 32) == 256  # rounded UP to 256 (RN-11)
    v1, v2 = TimestepEmbedder(64, 256, 10000), TimestepEmbedder(64, 64, 1)
    assert v1.freqs.shape == (128,) and v1.freqs[0] == 1.0
    torch.testing.assert_close(v2.freqs, 10000 * TimestepEmbedder(64, 64, 10000).freqs)  # RN-9
    emb = v1.timestep_embedding(torch.zeros(1))
    assert torch.equal(emb[0, :128], torch.ones(128)) and torch.equal(emb[0, 128:], torch.zeros(128))  # cos first


def test_rope_rotates_adjacent_pairs():
    rot = compute_rope_rotations(5, 8, freq_scaling=1.0)
    assert rot.shape == (1, 5, 4, 2, 2) and rot.dtype == torch.float32
    x = torch.randn(2, 3, 5, 8)
    y = apply_rope(x, rot)
    torch.testing.assert_close(y[:, :, 0], x[:, :, 0])  # position 0: identity
    pair_norm = lambda z: z.view(*z.shape[:-1], 4, 2).norm(dim=-1)  # noqa: E731
    torch.testing.assert_close(pair_norm(y), pair_norm(x))
    # channel pair (0, 1) at position 1 rotated by angle 1 (freq 1)
    c, s = torch.cos(torch.tensor(1.0)), torch.sin(torch.tensor(1.0))
    torch.testing.assert_close(y[..., 1, 0], c * x[..., 1, 0] - s * x[..., 1, 1])
    torch.testing.assert_close(y[..., 1, 1], s * x[..., 1, 0] + c * x[..., 1, 1])


@torch.no_grad()
def test_interleaved_qkv_split():
    """q, k, v of head h, channel i are output channels 3*(h*d + i) + 0 / 1 / 2 (the (h d j) layout, RN-1),
    then q and k are RMS-normalised per head with their own weights; built here channel by channel."""
    net = _randomize(MMDiT(dit_config("tiny")))
    attn = net.fused_blocks[0].attn
    h, d = attn.num_heads, attn.head_dim
    assert h > 1  # so that a head mix-up shows
    b, n = 2, 3
    x = torch.randn(b, n, net.hidden_dim)
    y = x @ attn.qkv.weight.T + attn.qkv.bias  # (b, n, 3 * dim), the raw projection
    want = torch.zeros(3, b, h, n, d)
    for head in range(h):
        for i in range(d):
            for j in range(3):
                want[j, :, head, :, i] = y[:, :, 3 * (head * d + i) + j]

    def rms(z: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:  # nn.RMSNorm, eps = finfo.eps
        return z / torch.sqrt(z.pow(2).mean(-1, keepdim=True) + torch.finfo(z.dtype).eps) * weight

    q, k, v = attn.pre_attention(x)
    assert not torch.equal(attn.q_norm.weight, attn.k_norm.weight)  # a q/k swap shows
    torch.testing.assert_close(q, rms(want[0], attn.q_norm.weight))
    torch.testing.assert_close(k, rms(want[1], attn.k_norm.weight))
    torch.testing.assert_close(v, want[2])


def _flow_by_hand(net: MMDiT, latent, clip_f, sync_f, text_f, t) -> torch.Tensor:
    """The network's forward written out from the reference description (conditioning, then the blocks),
    using only the sub-modules: sync position embedding per 8-token segment, nearest-exact upsampling by
    its index formula, RoPE tables built here, the final layer modulated by global_c (not extended_c)."""
    B, N, _ = latent.shape
    n_clip, n_sync = clip_f.shape[1], sync_f.shape[1]
    seg = torch.arange(n_sync) % 8
    sync = net.sync_input_proj(sync_f + net.sync_pos_emb.reshape(8, -1)[seg])
    src = [min(int((i + 0.5) * n_sync / N), n_sync - 1) for i in range(N)]  # nearest-exact
    sync = sync[:, src]
    clip, text = net.clip_input_proj(clip_f), net.text_input_proj(text_f)
    clip_c, text_c = net.clip_cond_proj(clip.mean(1)), net.text_cond_proj(text.mean(1))
    global_c = (net.t_embed(t) + net.global_cond_mlp(clip_c + text_c))[:, None]
    extended_c = global_c + sync
    hd = net.hidden_dim // net.num_heads
    latent_rot = compute_rope_rotations(N, hd, 10000, freq_scaling=1.0)
    clip_rot = compute_rope_rotations(n_clip, hd, 10000, freq_scaling=N / n_clip)
    x = net.audio_input_proj(latent)
    for block in net.joint_blocks:
        x, clip, text = block(x, clip, text, global_c, extended_c, latent_rot, clip_rot)
    for block in net.fused_blocks:
        x = block(x, extended_c, latent_rot)
    return net.final_layer(x, global_c)


@pytest.mark.parametrize("duration", [1.0, 2.0])  # 2 s: 40 sync tokens onto 63 latents, a non-integer ratio
@torch.no_grad()
def test_forward_equals_the_reference_composition(duration):
    cfg = dit_config("tiny", duration=duration)
    net = _randomize(MMDiT(cfg)).eval()
    args = _inputs(cfg)
    torch.testing.assert_close(net(*args), _flow_by_hand(net, *args))


def test_forward_shapes_conditions_and_normalize():
    cfg = dit_config("tiny")
    net = _randomize(MMDiT(cfg)).eval()
    latent, clip_f, sync_f, text_f, t = _inputs(cfg)
    with torch.no_grad():
        pre = net.preprocess_conditions(clip_f, sync_f, text_f)
        assert pre.sync_f.shape == (2, cfg.latent_seq_len, cfg.hidden_dim)
        assert pre.clip_f_c.shape == (2, cfg.hidden_dim)
        flow = net.predict_flow(latent, t, pre)
        assert flow.shape == latent.shape
        # every sample depends only on its own inputs
        torch.testing.assert_close(net(latent[1:], clip_f[1:], sync_f[1:], text_f[1:], t[1:]), flow[1:])
        empty = net.get_empty_conditions(3)
        assert empty.clip_f.shape == (3, cfg.clip_seq_len, cfg.hidden_dim)
        assert torch.equal(empty.text_f[0], empty.text_f[2])
        neg = net.get_empty_conditions(2, negative_text_features=text_f)
        assert not torch.equal(neg.text_f[0], neg.text_f[1])
    with pytest.raises(InputError, match="pass latent_seq_len"):
        net.preprocess_conditions(clip_f[:, :-1], sync_f, text_f)
    x = latent.clone()
    y = net.normalize(x)
    assert torch.equal(x, latent)  # not in place by default (RN-23)
    torch.testing.assert_close(net.unnormalize(y), latent)
    net.normalize(x, inplace=True)
    torch.testing.assert_close(x, y)


def test_strict_load_error_names_keys():
    net = MMDiT(dit_config("tiny"))
    sd = net.state_dict()
    sd.pop("final_layer.conv.bias")
    sd["bogus.weight"] = torch.zeros(1)
    sd["clip_cond_proj.weight"] = torch.zeros(3, 3)
    with pytest.raises(CheckpointError) as e:
        load_dit_state_dict(MMDiT(dit_config("tiny")), sd)
    msg = str(e.value)
    assert "final_layer.conv.bias" in msg and "bogus.weight" in msg and "clip_cond_proj.weight" in msg
    assert "1 missing" in msg and "1 unexpected" in msg and "1 shape-mismatched" in msg


def test_checkpoint_formats_and_zero_lora_keys_for_no_lora_net():
    cfg = dit_config("tiny")
    src = _randomize(MMDiT(cfg))
    sd = dict(src.state_dict())
    sd["t_embed.freqs"] = src.t_embed.freqs
    sd["latent_rot"] = src.rotations(src.latent_seq_len, src.clip_seq_len, torch.device("cpu"))[0]
    # what the reference no-LoRA training saves: lora_A random, lora_B zero (exact no-op)
    sd["fused_blocks.0.attn.qkv.lora_A"] = torch.randn(32, cfg.hidden_dim)
    sd["fused_blocks.0.attn.qkv.lora_B"] = torch.zeros(2 * cfg.hidden_dim, 16)
    file = {"network": sd, "lora": {}, "synchformer": {"x": torch.zeros(1)}}
    assert ".lora_A" not in "".join(adapt_dit_state_dict(src, file))
    dst = MMDiT(cfg).eval()
    load_dit_state_dict(dst, file)
    args = _inputs(cfg)
    with torch.no_grad():
        torch.testing.assert_close(dst(*args), src.eval()(*args), rtol=0, atol=0)
    sd["fused_blocks.0.attn.qkv.lora_B"] = torch.ones(2 * cfg.hidden_dim, 16)
    with pytest.raises(CheckpointError, match="LoRA variant"):
        load_dit_state_dict(MMDiT(cfg), sd)


def test_lengths_come_from_inputs_and_hold_no_state():
    """A 1 s net runs 2 s inputs exactly like a net configured for 2 s; the call changes no module state."""
    one, two = dit_config("tiny"), dit_config("tiny", duration=2.0)
    assert (two.latent_seq_len, two.clip_seq_len, two.sync_seq_len) == (63, 16, 40)
    net1 = _randomize(MMDiT(one)).eval()
    net2 = MMDiT(two).eval()
    load_dit_state_dict(net2, net1.state_dict())
    before = {k: v.clone() for k, v in net1.state_dict().items()}
    args = _inputs(two)
    with torch.no_grad():
        out1, out2 = net1(*args), net2(*args)
    torch.testing.assert_close(out1, out2, rtol=0, atol=0)
    assert out1.shape[1] == 63
    lat, clip = net1.rotations(63, 16, torch.device("cpu"))
    assert lat.shape[1] == 63 and clip.shape[1] == 16
    assert net1.latent_seq_len == one.latent_seq_len  # the configured length is unchanged
    assert all(torch.equal(before[k], v) for k, v in net1.state_dict().items())
    with torch.no_grad():  # and the 1 s input still works on the same module afterwards
        assert net1(*_inputs(one)).shape[1] == one.latent_seq_len
