"""Flow matching: grid, path, samplers (Euler/Heun/midpoint), CFG, CFG dropout, training loss."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from saganet.configs import dit_config
from saganet.models.dit import MMDiT
from saganet.sampling import (
    apply_cfg_dropout,
    flow_matching_loss,
    flow_time_grid,
    generate_latents,
    guided_velocity,
    interpolate,
    num_function_evals,
    sample,
    sample_logit_normal_t,
    target_velocity,
)


def _net(seed=0, **over) -> MMDiT:
    torch.manual_seed(seed)
    net = MMDiT(replace(dit_config("tiny"), **over))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * (0.3 if p.ndim < 2 else p[0].numel() ** -0.5))
        net.latent_std.abs_().add_(0.5)
    return net.eval()


def _conds(net: MMDiT, bs=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    c = net.cfg
    return (torch.randn(bs, c.clip_seq_len, c.clip_dim, generator=g),
            torch.randn(bs, c.sync_seq_len, c.sync_dim, generator=g),
            torch.randn(bs, c.text_seq_len, c.text_dim, generator=g))


def test_time_grid_is_reference_linspace():
    g = flow_time_grid(25)
    assert g.dtype == torch.float32 and g.shape == (26,)
    assert torch.equal(g, torch.linspace(0, 1, 26)) and g[0] == 0 and g[-1] == 1
    assert torch.equal(flow_time_grid(4, 0.1), torch.linspace(0, 0.9, 5))


def test_path_and_target():
    x0, x1 = torch.randn(3, 5, 2), torch.randn(3, 5, 2)
    torch.testing.assert_close(interpolate(x0, x1, torch.zeros(3)), x0)
    torch.testing.assert_close(interpolate(x0, x1, torch.ones(3)), x1)
    t, h = torch.full((3,), 0.3), 1e-3
    fd = (interpolate(x0, x1, t + h, 0.1) - interpolate(x0, x1, t - h, 0.1)) / (2 * h)
    torch.testing.assert_close(fd, target_velocity(x0, x1, 0.1), rtol=1e-3, atol=1e-3)


def test_second_order_samplers_beat_euler_on_linear_ode():
    """dx/dt = a x + b has the closed form x(1) = (x0 + b/a) e^a - b/a."""
    a, b = -1.5, 0.7
    x0 = torch.linspace(-2, 2, 7, dtype=torch.float64)
    exact = (x0 + b / a) * math.exp(a) - b / a
    fn = lambda t, x: a * x + b  # noqa: E731
    grid = torch.linspace(0, 1, 11, dtype=torch.float64)
    err = {m: (sample(fn, x0, 10, m, t_grid=grid) - exact).abs().max().item() for m in ("euler", "heun", "midpoint")}
    assert err["heun"] < err["euler"] / 10 and err["midpoint"] < err["euler"] / 10, err
    assert num_function_evals("heun", 10) == 20 and num_function_evals("euler", 10) == 10
    with pytest.raises(ValueError, match="euler"):
        sample(fn, x0, 2, "rk99")


def test_euler_callback_and_constant_field():
    v = torch.randn(2, 3)
    seen = []
    x1 = sample(lambda t, x: v, torch.zeros(2, 3), 4, callback=lambda i, t, x, vel: seen.append((i, float(t))))
    torch.testing.assert_close(x1, v)
    assert seen == [(0, 0.0), (1, 0.25), (2, 0.5), (3, 0.75)]


@torch.no_grad()
def test_cfg_rules():
    net = _net()
    clip_f, sync_f, text_f = _conds(net)
    conds = net.preprocess_conditions(clip_f, sync_f, text_f)
    empty = net.get_empty_conditions(2)
    x = torch.randn(2, net.latent_seq_len, net.latent_dim)
    t = torch.tensor(0.3)
    v_cond = net.predict_flow(x, t.expand(2), conds)
    v_unc = net.predict_flow(x, t.expand(2), empty)
    # s < 1: conditional branch only (the uncond conditions are not even needed)
    torch.testing.assert_close(guided_velocity(net, conds, None, 0.5)(t, x), v_cond, rtol=0, atol=0)
    torch.testing.assert_close(guided_velocity(net, conds, empty, 0.99)(t, x), v_cond, rtol=0, atol=0)
    torch.testing.assert_close(guided_velocity(net, conds, empty, 1.0)(t, x), v_cond)
    s = 4.5
    expected = s * v_cond + (1 - s) * v_unc
    # two calls (the reference) exactly; one batched 2B call (default) up to summation order
    torch.testing.assert_close(guided_velocity(net, conds, empty, s, batched=False)(t, x), expected, rtol=0, atol=0)
    torch.testing.assert_close(guided_velocity(net, conds, empty, s)(t, x), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError):
        guided_velocity(net, conds, None, 2.0)


@torch.no_grad()
def test_generate_latents_end_to_end():
    net = _net()
    clip_f, sync_f, text_f = _conds(net)
    x0 = torch.randn(2, net.latent_seq_len, net.latent_dim, generator=torch.Generator().manual_seed(3))
    steps = []
    out = generate_latents(net, clip_f, sync_f, text_f, x0, steps=3, cfg_strength=4.5,
                           negative_text_features=text_f.flip(0), callback=lambda i, *a: steps.append(i))
    assert out.shape == x0.shape and steps == [0, 1, 2] and torch.isfinite(out).all()
    norm = generate_latents(net, clip_f, sync_f, text_f, x0, steps=3, unnormalize=False)
    heun = generate_latents(net, clip_f, sync_f, text_f, x0, steps=3, unnormalize=False, method="heun")
    assert not torch.allclose(norm, heun)


def test_cfg_dropout_and_logit_normal_t():
    net = _net()
    clip_f, sync_f, text_f = _conds(net, bs=4)
    c, s, t, nv, nt = apply_cfg_dropout(net, clip_f, sync_f, text_f, null_video=torch.tensor([1, 0, 0, 1]).bool(),
                                        null_text_p=1.0)
    assert torch.equal(c[0], net.get_empty_clip_sequence(1)[0]) and torch.equal(c[1], clip_f[1])
    assert torch.equal(s[3], net.get_empty_sync_sequence(1)[0]) and torch.equal(s[2], sync_f[2])
    assert nt.all() and torch.equal(t, net.get_empty_string_sequence(4))
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    ts = sample_logit_normal_t(1000, generator=g1)
    assert torch.equal(ts, sample_logit_normal_t(1000, generator=g2))
    assert 0 < ts.min() and ts.max() < 1 and abs(ts.median().item() - 0.5) < 0.05


def test_training_loss_decreases_on_fixed_data():
    torch.manual_seed(0)
    net = MMDiT(replace(dit_config("tiny"), hidden_dim=32, num_heads=2, depth=2, fused_depth=1),
                latent_mean=torch.zeros(8), latent_std=torch.ones(8)).train()
    clip_f, sync_f, text_f = _conds(net, bs=4)
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(4, net.latent_seq_len, net.latent_dim, generator=g)
    x0 = torch.randn(4, net.latent_seq_len, net.latent_dim, generator=g)
    t = torch.rand(4, generator=g)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(10):
        out = flow_matching_loss(net, x1, clip_f, sync_f, text_f, x0=x0, t=t, null_video_p=0.1, null_text_p=0.5,
                                 generator=torch.Generator().manual_seed(1))
        opt.zero_grad()
        out.mean_loss.backward()
        opt.step()
        losses.append(out.mean_loss.item())
    assert out.loss.shape == (4,) and out.xt.shape == x1.shape
    assert losses[-1] < 0.7 * losses[0], losses
