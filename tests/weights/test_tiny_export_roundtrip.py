"""Weights exported by the trainer (reference layout) load into `--variant tiny --weights FILE`."""

from __future__ import annotations

import torch

from saganet.builders import build_tiny, build_variant
from saganet.train.state import export_weights


def test_exported_tiny_weights_load(tmp_path):
    trained = build_tiny(seed=3)
    path = export_weights(trained, tmp_path / "weights.pth")
    loaded = build_variant("tiny", weights_file=path)
    for part in ("dit", "sync_encoder"):
        a, b = getattr(trained, part).state_dict(), getattr(loaded, part).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    fresh = build_variant("tiny")
    assert not torch.equal(fresh.dit.final_layer.conv.weight, loaded.dit.final_layer.conv.weight)
