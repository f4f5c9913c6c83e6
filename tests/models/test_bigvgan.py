"""BigVGAN v1/v2 (RN-21, RN-31): activations, resampling filters, weight norm keys, loaders."""

import json

import pytest
import torch
from safetensors.torch import load_file

from saganet.codec import load_bigvgan_v1, load_bigvgan_v2
from saganet.errors import CheckpointError
from saganet.models.bigvgan import (
    BigVGAN,
    BigVGANConfig,
    Snake,
    SnakeBeta,
    kaiser_sinc_filter1d,
    load_bigvgan_state_dict,
    rename_legacy_weight_norm,
)

TINY = dict(
    num_mels=8,
    upsample_rates=[4, 2],
    upsample_kernel_sizes=[8, 4],
    upsample_initial_channel=16,
    resblock_kernel_sizes=[3, 5],
    resblock_dilation_sizes=[[1, 3], [1, 3]],
)


def tiny(version=2, seed=0, **kw) -> BigVGAN:
    torch.manual_seed(seed)
    return BigVGAN(BigVGANConfig(**{**TINY, **kw}), version=version)


def test_snake_formulas():
    x = torch.randn(2, 3, 5)
    s = Snake(3, logscale=True)
    s.alpha.data = torch.tensor([0.1, -0.2, 0.3])
    a = s.alpha.exp()[None, :, None]
    assert torch.allclose(s(x), x + torch.sin(a * x) ** 2 / (a + 1e-9))
    sb = SnakeBeta(3, logscale=False)
    sb.alpha.data, sb.beta.data = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 1.0, 2.0])
    a, b = sb.alpha[None, :, None], sb.beta[None, :, None]
    assert torch.allclose(sb(x), x + torch.sin(a * x) ** 2 / (b + 1e-9))


def test_filters_equal_reference_buffers(golden_dir):
    w = load_file(str(golden_dir / "bigvgan_v1_forward/weights.safetensors"))
    f = kaiser_sinc_filter1d(0.25, 0.3, 12)
    assert torch.equal(f, w["activation_post.upsample.filter"])
    assert torch.equal(f, w["activation_post.downsample.lowpass.filter"])
    assert abs(f.sum().item() - 1) < 1e-6


@pytest.mark.parametrize("version", [1, 2])
def test_output_shape_and_range(version):
    m = tiny(version, use_tanh_at_final=False, use_bias_at_final=False).remove_weight_norm().eval()
    with torch.no_grad():
        y = m(torch.randn(2, 8, 10) * 5)
    assert y.shape == (2, 1, 80) and y.abs().max() <= 1
    assert ("conv_post.bias" in m.state_dict()) == (version == 1)  # v1 always has the bias


def test_v2_tanh_vs_clamp():
    a = tiny(2, use_tanh_at_final=True).remove_weight_norm().eval()
    b = tiny(2, use_tanh_at_final=False).remove_weight_norm().eval()  # same seed -> same weights
    mel = torch.randn(1, 8, 6) * 10
    with torch.no_grad():
        ya, yb = a(mel), b(mel)
    inside = yb.abs() < 1  # clamp left these samples untouched
    assert inside.any()
    assert torch.allclose(ya[inside], torch.tanh(yb[inside]), atol=1e-6)


def test_weight_norm_keys_and_removal():
    m = tiny(2)
    sd = m.state_dict()
    assert sd["ups.0.0.parametrizations.weight.original0"].shape == (16, 1, 1)  # ConvTranspose: (in, 1, 1)
    assert sd["conv_pre.parametrizations.weight.original0"].shape == (16, 1, 1)
    assert "resblocks.0.activations.0.upsample.filter" in sd
    assert "resblocks.0.activations.0.downsample.lowpass.filter" in sd
    g = sd["conv_pre.parametrizations.weight.original0"]
    v = sd["conv_pre.parametrizations.weight.original1"]
    m.remove_weight_norm()
    after = m.state_dict()
    assert not any("parametrizations" in k for k in after)
    assert torch.allclose(
        after["conv_pre.weight"], g * v / v.flatten(1).norm(dim=1).view(-1, 1, 1), atol=1e-6
    )


def test_legacy_weight_g_v_and_missing_filters_load():
    src = tiny(1, seed=1)
    new_sd = src.state_dict()
    old_sd = {}
    for k, v in new_sd.items():
        if k.endswith(".filter"):
            continue  # very old checkpoints may lack the constant filters
        k = k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        )
        old_sd[k] = v
    assert rename_legacy_weight_norm(old_sd).keys() <= new_sd.keys()
    a = load_bigvgan_state_dict(tiny(1, seed=2), old_sd).eval()
    b = load_bigvgan_state_dict(tiny(1, seed=3), new_sd).eval()
    mel = torch.randn(1, 8, 5)
    with torch.no_grad():
        assert torch.equal(a(mel), b(mel))
    bad = dict(new_sd)
    bad.pop("conv_pre.bias")
    with pytest.raises(CheckpointError, match="missing"):
        load_bigvgan_state_dict(tiny(1), bad)


def test_resblock_type_2_works_and_removes_weight_norm():
    m = tiny(2, resblock="2").remove_weight_norm().eval()  # the reference v2 raises NameError here (RN-31)
    assert "resblocks.0.convs.1.weight" in m.state_dict()
    with torch.no_grad():
        assert m(torch.randn(1, 8, 4)).shape == (1, 1, 32)


def test_v1_loader_best_netG(tmp_path):
    src = tiny(1, seed=4)
    path = tmp_path / "best_netG.pt"
    torch.save({"generator": src.state_dict(), "steps": 1}, path)
    m = load_bigvgan_v1(path, BigVGANConfig(**TINY)).eval()
    src.remove_weight_norm().eval()
    mel = torch.randn(1, 8, 5)
    with torch.no_grad():
        assert torch.equal(m(mel), src(mel))
    torch.save({"discriminator": {}}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="generator"):
        load_bigvgan_v1(tmp_path / "bad.pt", BigVGANConfig(**TINY))


def test_v2_folder_loader(tmp_path):
    cfg = {
        **TINY,
        "use_tanh_at_final": False,
        "use_bias_at_final": False,
        "resblock": "1",
        "activation": "snakebeta",
        "snake_logscale": True,
        "sampling_rate": 1000,
        "num_gpus": 0,
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    src = BigVGAN(BigVGANConfig.from_dict(cfg), version=2)
    torch.save({"generator": src.state_dict()}, tmp_path / "bigvgan_generator.pt")
    m = load_bigvgan_v2(tmp_path).eval()
    assert m.cfg.extra == {"sampling_rate": 1000, "num_gpus": 0}
    src.remove_weight_norm().eval()
    mel = torch.randn(1, 8, 5)
    with torch.no_grad():
        assert torch.equal(m(mel), src(mel))


def test_v2_hub_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="HF hub") as e:
        load_bigvgan_v2("nvidia/some-model-that-is-not-cached")
    assert "\n" not in str(e.value)
