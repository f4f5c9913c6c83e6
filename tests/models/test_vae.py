"""Mel VAE (RN-20): weight normalisation, shapes, posterior, strict loading, encoder dropping."""

import math

import pytest
import torch

from saganet.errors import CheckpointError
from saganet.models.vae import VAE, DiagonalGaussian, MPConv1D, load_vae_state_dict


def tiny_vae(data_dim=16, embed_dim=4, hidden=8, seed=0) -> VAE:
    torch.manual_seed(seed)
    return VAE(data_dim, embed_dim, hidden)


def test_forward_refuses_before_weight_norm_removed():
    vae = tiny_vae()
    with pytest.raises(RuntimeError, match="remove_weight_norm"):
        vae.decode(torch.randn(1, 4, 8))


def test_remove_weight_norm_formula():
    conv = MPConv1D(5, 3, 3)
    raw = conv.weight.detach().clone()
    conv.remove_weight_norm()
    n = 5 * 3
    norm = raw.flatten(1).norm(dim=1).view(-1, 1, 1)
    expected = raw / (1e-4 + norm / math.sqrt(n)) / math.sqrt(n)
    assert torch.allclose(conv.weight, expected, atol=1e-7)
    assert torch.allclose(conv.weight.flatten(1).norm(dim=1), torch.ones(3), atol=1e-3)  # unit rows


def test_shapes_and_roundtrip():
    vae = tiny_vae().remove_weight_norm().eval()
    mel = torch.randn(2, 16, 24)
    post = vae.encode(mel)
    assert post.mean.shape == post.std.shape == (2, 4, 12)
    assert post.moments.shape == (2, 8, 12)
    assert (post.logvar >= -30).all() and (post.logvar <= 20).all()
    assert torch.allclose(post.std, torch.exp(0.5 * post.logvar))
    rec, _ = vae(mel, sample_posterior=False)
    assert rec.shape == mel.shape
    assert torch.equal(rec, vae.decode(post.mode()))


def test_sampling_is_seeded_and_channel_last():
    vae = tiny_vae().remove_weight_norm().eval()
    post = vae.encode(torch.randn(1, 16, 8))
    a = post.sample(torch.Generator().manual_seed(3))
    b = post.sample(torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, post.mean)
    cl = post.channel_last()
    assert cl.mean.shape == (1, 4, 4) and torch.equal(cl.mean, post.mean.transpose(1, 2))
    assert torch.equal(cl.moments, post.moments.transpose(1, 2))
    rebuilt = DiagonalGaussian.from_mean_std(post.mean, post.std)
    assert torch.allclose(rebuilt.logvar, post.logvar, atol=1e-5)


def test_stats_buffers_are_persistent_and_used():
    vae = tiny_vae()
    sd = vae.state_dict()
    assert sd["data_mean"].shape == (1, 16, 1) and sd["data_std"].shape == (1, 16, 1)
    assert torch.equal(sd["data_mean"], torch.zeros(1, 16, 1)) and torch.equal(
        sd["data_std"], torch.ones(1, 16, 1)
    )
    sd["data_mean"] = torch.full((1, 16, 1), 2.0)
    sd["data_std"] = torch.full((1, 16, 1), 3.0)
    other = load_vae_state_dict(tiny_vae(seed=1), sd).eval()
    z = torch.randn(1, 4, 6)
    assert torch.allclose(other.decode(z), other.decode(z, unnormalize=False) * 3 + 2)


def test_strict_loading_and_encoder_drop():
    src = tiny_vae()
    sd = src.state_dict()
    dec_only = load_vae_state_dict(tiny_vae(seed=2), sd, need_encoder=False)
    assert dec_only.encoder is None
    assert not any(k.startswith("encoder.") for k in dec_only.state_dict())
    with pytest.raises(RuntimeError, match="encoder"):
        dec_only.encode(torch.randn(1, 16, 8))
    bad = dict(sd)
    bad.pop("decoder.conv_out.weight")
    bad["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="missing.*unexpected"):
        load_vae_state_dict(tiny_vae(), bad)
    with pytest.raises(CheckpointError, match="shape"):
        load_vae_state_dict(tiny_vae(embed_dim=5), sd)
