"""Low-memory generation: networks built on first use and freed after their stage give the same audio."""

from __future__ import annotations

import numpy as np
import torch

from saganet.builders import build_tiny
from saganet.io.masks import ObjectMask
from saganet.io.writers import write_video
from saganet.models.generator import AudioGenerator
from saganet.models.lazy import LazyModule
from saganet.models.sync_encoder import SegAwareSyncEncoder
from saganet.pipeline import GenerationOptions, SAGANetPipeline


def _lazy_tiny(built: list[str]) -> AudioGenerator:
    """The tiny model with every network behind a LazyModule that records when it is built."""
    ref = build_tiny()
    state = {k: v.clone() for k, v in ref.state_dict().items()}

    def part(name: str):
        def make():
            built.append(name)
            fresh = build_tiny()
            fresh.load_state_dict(state)
            return getattr(fresh, name)
        return make

    text = LazyModule(part("frame_encoder"), "CLIP")
    return AudioGenerator(LazyModule(part("dit"), "DiT"), LazyModule(part("sync_encoder"), "sync", SegAwareSyncEncoder),
                          text, text, LazyModule(part("codec"), "codec"), ref.seq, clip_size=ref.clip_size,
                          sync_size=ref.sync_size)


def test_lazy_module_builds_on_use_and_frees(tmp_path):
    calls = []
    lazy = LazyModule(lambda: calls.append(1) or torch.nn.Linear(3, 2), "lin")
    lazy.to(torch.float64)  # replayed when it is built
    assert not lazy.loaded and list(lazy.parameters()) == [] and calls == []
    y = lazy(torch.zeros(1, 3, dtype=torch.float64))
    assert y.dtype == torch.float64 and lazy.loaded and calls == [1] and lazy.out_features == 2
    lazy.unload()
    assert not lazy.loaded
    lazy(torch.zeros(1, 3, dtype=torch.float64))
    assert calls == [1, 1]


def test_low_memory_pipeline_equals_the_resident_one(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "clip.mp4"
    write_video(path, rng.integers(0, 255, (30, 48, 48, 3), dtype=np.uint8), 25)
    opt = GenerationOptions(steps=2, progress=False)

    def mask(video):
        m = torch.zeros(video.sync_frames.shape[0], 1, *video.sync_frames.shape[-2:])
        m[..., :, : m.shape[-1] // 2] = 1
        return [ObjectMask("left", m)]

    resident = SAGANetPipeline(build_tiny(), "tiny")
    v = resident.load_video(path, quiet=True)
    ref = resident.generate(v, mask(v), opt).stems
    built: list[str] = []
    low = SAGANetPipeline(_lazy_tiny(built), "tiny", low_memory=True)
    assert low.model.segaware and built == []  # nothing is read before it is needed
    v = low.load_video(path, quiet=True)
    out = low.generate(v, mask(v), opt).stems
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    assert all(not p.loaded for p in (low.model.dit, low.model.sync_encoder, low.model.frame_encoder,
                                      low.model.codec))  # every network freed after its stage
    assert sorted(set(built)) == ["codec", "dit", "frame_encoder", "sync_encoder"]
