"""Every named DiT config, built on the meta device, has exactly the released state-dict layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from reference_data import manifests_root, require_reference_data
from saganet.configs import DiTConfig, dit_config, dit_variant_names
from saganet.models.dit import MMDiT

MANIFESTS = sorted(manifests_root().glob("mmaudio_*.json"))


def _variant_name(path: Path) -> str:
    return path.stem.removeprefix("mmaudio_")


def test_there_are_dit_manifests():
    require_reference_data(manifests_root())
    assert len(MANIFESTS) == 9, [p.name for p in MANIFESTS]


def test_every_manifest_has_a_named_variant():
    require_reference_data(manifests_root())
    names = set(dit_variant_names())
    for p in MANIFESTS:
        assert _variant_name(p) in names, p.name


# Without the manifests one placeholder skips (or fails in CI) with the reason instead of vanishing.
@pytest.mark.parametrize("path", MANIFESTS or [None], ids=[p.stem for p in MANIFESTS] or ["no-manifests"])
def test_manifest_keys_shapes_and_counts(path: Path | None):
    if path is None:
        require_reference_data(manifests_root())
        pytest.fail(f"no mmaudio_*.json manifest in {manifests_root()}")
    m = json.loads(path.read_text())
    cfg = dit_config(_variant_name(path))
    # The config must equal the manifest's constructor arguments (MMAudio ones have no use_lora).
    expected_cfg = {"use_lora": False, **m["config"]}
    assert {k: getattr(cfg, k) for k in expected_cfg} == expected_cfg
    with torch.device("meta"):
        net = MMDiT(cfg)
    sd = net.state_dict()
    shapes = {k: list(v.shape) for k, v in sd.items()}
    expected = {k: v[:-1] for k, v in m["params"].items()}
    assert set(shapes) == set(expected), (sorted(set(shapes) - set(expected))[:5], sorted(set(expected) - set(shapes))[:5])
    bad = {k: (shapes[k], expected[k]) for k in expected if shapes[k] != expected[k]}
    assert not bad, bad
    assert all(v[-1] == "float32" for v in m["params"].values())
    assert all(v.dtype == torch.float32 for v in sd.values())
    assert sum(p.numel() for p in net.parameters()) == m["num_params"]
    assert len(sd) == m["num_state_dict_tensors"]
    # buffers the module computes itself are not in the state dict
    non_persistent = {n: list(b.shape) for n, b in net.named_buffers() if n not in sd}
    # the RoPE tables are computed per input length (no module state); at the configured lengths they
    # must have the reference's buffer shapes
    lat, clip = net.rotations(net.latent_seq_len, net.clip_seq_len, torch.device("cpu"))
    non_persistent |= {"latent_rot": list(lat.shape), "clip_rot": list(clip.shape)}
    assert non_persistent == {k: v[:-1] for k, v in m["non_persistent_buffers"].items()}
    frozen = sorted(n for n, p in net.named_parameters() if not p.requires_grad)
    assert frozen == sorted(m["requires_grad_false"])
    if cfg.use_lora:
        assert sorted(k for k in sd if ".lora_" in k) == sorted(m["lora_keys"])


def test_small_and_medium_parameter_counts_match_reference_checklist():
    """Checklist numbers (RN-34), independent of the manifests."""
    counts = {}
    for name in ("small_44k_sa", "small_44k_sa_no_lora", "medium_44k_sa", "medium_44k_sa_no_lora"):
        with torch.device("meta"):
            net = MMDiT(dit_config(name))
        counts[name] = (len(net.state_dict()), sum(p.numel() for p in net.parameters()))
    assert counts["small_44k_sa_no_lora"] == (251, 157_409_144)
    assert counts["small_44k_sa"] == (275, 157_753_208)
    assert counts["medium_44k_sa_no_lora"][1] == 621_805_944
    assert counts["medium_44k_sa"][1] == 622_494_072


def test_config_round_trips_through_dict():
    cfg = dit_config("small_44k_sa")
    assert DiTConfig.from_dict(cfg.to_dict()) == cfg
