"""Full-size audio components have exactly the released key layouts (manifests), built on `meta`."""

import json

import pytest
import torch

from saganet.models.bigvgan import BigVGAN, BigVGANConfig
from saganet.models.mel import MelConverter
from saganet.models.vae import VAE


def _layout(sd) -> dict[str, list]:
    return {k: [*v.shape, str(v.dtype).removeprefix("torch.")] for k, v in sd.items()}


def _manifest(manifests_dir, name) -> dict:
    return json.loads((manifests_dir / f"{name}.json").read_text())


def _assert_same(actual: dict, expected: dict) -> None:
    missing, unexpected = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
    assert not missing and not unexpected, f"missing {missing[:5]}, unexpected {unexpected[:5]}"
    bad = [(k, actual[k], expected[k]) for k in expected if actual[k] != expected[k]]
    assert not bad, bad[:5]


@pytest.mark.parametrize("name", ["vae_16k", "vae_44k"])
def test_vae(manifests_dir, name):
    m = _manifest(manifests_dir, name)
    with torch.device("meta"):
        vae = VAE(**m["config"])
    _assert_same(_layout(vae.state_dict()), m["params"])
    assert sum(p.numel() for p in vae.parameters()) == m["num_params"]
    vae.remove_weight_norm()  # in place: the layout does not change
    _assert_same(_layout(vae.state_dict()), m["params"])
    vae.drop_encoder()
    assert not any(k.startswith("encoder.") for k in vae.state_dict())


@pytest.mark.parametrize("name,version", [("bigvgan_v1_16k", 1), ("bigvgan_v2_44k", 2)])
def test_bigvgan(manifests_dir, name, version):
    m = _manifest(manifests_dir, name)
    with torch.device("meta"):
        voc = BigVGAN(BigVGANConfig.from_dict(m["config"]), version=version)
    _assert_same(_layout(voc.state_dict()), m["params"])
    assert sum(p.numel() for p in voc.parameters()) == m["num_params"]
    assert {k for k, _ in voc.named_buffers()} == set(m["persistent_buffers"])
    voc.remove_weight_norm()
    _assert_same(_layout(voc.state_dict()), m["params_after_remove_weight_norm"])


@pytest.mark.parametrize("name", ["mel_converter_16k", "mel_converter_44k"])
def test_mel_converter(manifests_dir, name):
    m = _manifest(manifests_dir, name)
    mc = MelConverter(**m["config"])  # buffers are computed: CPU (fast)
    _assert_same(_layout(mc.state_dict()), m["params"])
    assert mc.config == MelConverter.from_preset(name.rsplit("_", 1)[1]).config
