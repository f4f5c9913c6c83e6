"""LoRA: loralib row rule, merge/unmerge, released (merged) checkpoints, LoRA-only save/load, trainability."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from saganet.configs import dit_config
from saganet.errors import CheckpointError
from saganet.models.dit import MMDiT, load_dit_state_dict
from saganet.models.lora import (
    LoRAMergedLinear,
    load_lora_state_dict,
    lora_layers,
    lora_state_dict,
    mark_only_lora_trainable,
)


def _lora_net(seed=0) -> MMDiT:
    torch.manual_seed(seed)
    net = MMDiT(replace(dit_config("tiny"), use_lora=True))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * (0.3 if p.ndim < 2 else p[0].numel() ** -0.5))
        net.latent_std.abs_().add_(0.5)
    return net


def _args(net: MMDiT, seed=1):
    g = torch.Generator().manual_seed(seed)
    c = net.cfg
    return (torch.randn(2, c.latent_seq_len, c.latent_dim, generator=g),
            torch.randn(2, c.clip_seq_len, c.clip_dim, generator=g),
            torch.randn(2, c.sync_seq_len, c.sync_dim, generator=g),
            torch.randn(2, c.text_seq_len, c.text_dim, generator=g), torch.rand(2, generator=g))


def test_row_rule_contiguous_blocks():
    layer = LoRAMergedLinear(4, 12, r=2, lora_alpha=4, enable_lora=(True, False, True))
    assert layer.lora_A.shape == (4, 4) and layer.lora_B.shape == (8, 2) and layer.scaling == 2.0
    with torch.no_grad():
        layer.lora_B.normal_()
    d = layer.delta_weight()
    a, b = layer.lora_A, layer.lora_B
    torch.testing.assert_close(d[0:4], 2.0 * b[0:4] @ a[0:2])
    assert torch.equal(d[4:8], torch.zeros(4, 4))  # disabled middle block (NOT "k": RN-6)
    torch.testing.assert_close(d[8:12], 2.0 * b[4:8] @ a[2:4])
    assert not layer.weight.requires_grad


def test_merge_unmerge_round_trip_and_same_function():
    layer = LoRAMergedLinear(8, 24, r=4, lora_alpha=8)
    with torch.no_grad():
        layer.lora_B.normal_()
    w0 = layer.weight.detach().clone()
    x = torch.randn(3, 8)
    y_train = layer(x)
    layer.eval()
    assert layer.merged
    torch.testing.assert_close(layer.weight, w0 + layer.delta_weight())
    torch.testing.assert_close(layer(x), y_train)
    layer.eval()  # idempotent: no second merge
    torch.testing.assert_close(layer.weight, w0 + layer.delta_weight())
    layer.train()
    assert not layer.merged
    torch.testing.assert_close(layer.weight, w0)
    # un-merged forward = W x + b + ΔW x
    torch.testing.assert_close(y_train, x @ (w0 + layer.delta_weight()).T + layer.bias)


@pytest.mark.parametrize("dst_mode", ["train", "eval"])
def test_released_merged_checkpoint_applies_delta_once(dst_mode):
    src = _lora_net()
    args = _args(src)
    src.eval()  # merges; a state_dict now holds W0 + ΔW (how SAGANet saved its checkpoints)
    released = {k: v.clone() for k, v in src.state_dict().items()}
    with torch.no_grad():
        ref = src(*args)
    dst = _lora_net(seed=5)
    dst.train(dst_mode == "train")
    load_dit_state_dict(dst, {"network": released, "lora": lora_state_dict(src)})  # lora_merged=True default
    with torch.no_grad():
        torch.testing.assert_close(dst(*args), ref)
        dst.eval()
        torch.testing.assert_close(dst(*args), ref)
        for name, layer in lora_layers(dst):
            torch.testing.assert_close(layer.weight, released[f"{name}.weight"])  # not W0 + 2ΔW
        dst.train()
        torch.testing.assert_close(dst(*args), ref, rtol=1e-4, atol=1e-5)
    # The loralib pitfall for comparison: treating the merged weight as un-merged adds ΔW twice.
    twice = _lora_net(seed=5).eval()
    load_dit_state_dict(twice, released, lora_merged=False)
    with torch.no_grad():
        assert not torch.allclose(twice(*args), ref, atol=1e-3)


def test_lora_only_save_load():
    a, b = _lora_net(0), _lora_net(0)
    with torch.no_grad():
        for _, layer in lora_layers(a):
            layer.lora_B.normal_()
    sd = lora_state_dict(a)
    n_layers = len(list(lora_layers(a)))
    assert n_layers == dit_config("tiny").depth  # latent streams of the 2 joint blocks + 1 fused block
    assert len(sd) == 2 * n_layers and all(".lora_" in k for k in sd)
    assert len(lora_state_dict(a, bias="lora_only")) == 3 * n_layers
    args = _args(a)
    b.eval()  # merged with b's own (different) ΔW: loading must swap it, not stack it
    load_lora_state_dict(b, sd)
    a.eval()
    with torch.no_grad():
        torch.testing.assert_close(b(*args), a(*args))
    with pytest.raises(CheckpointError, match="missing"):
        load_lora_state_dict(b, {k: v for k, v in sd.items() if "fused" not in k})


def test_mark_only_lora_trainable_and_missing_lora_allowed():
    net = _lora_net()
    mark_only_lora_trainable(net, bias="lora_only")
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    layers = [n for n, _ in lora_layers(net)]
    expected = {f"{n}.{p}" for n in layers for p in ("lora_A", "lora_B", "bias")}
    assert trainable == expected
    # MMAudio weights (no LoRA keys) into a LoRA net for fine-tuning
    plain = {k: v for k, v in net.state_dict().items() if ".lora_" not in k}
    fresh = MMDiT(net.cfg)
    with pytest.raises(CheckpointError, match="missing"):
        load_dit_state_dict(fresh, plain)
    load_dit_state_dict(fresh, plain, allow_missing_lora=True)
