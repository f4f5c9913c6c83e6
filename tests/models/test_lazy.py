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
    # low memory encodes CLIP frames 8 at a time: the same audio up to float rounding (~1e-7)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    assert all(not p.loaded for p in (low.model.dit, low.model.sync_encoder, low.model.frame_encoder,
                                      low.model.codec))  # every network freed after its stage
    assert sorted(set(built)) == ["codec", "dit", "frame_encoder", "sync_encoder"]


def test_each_stage_holds_only_its_own_network(tmp_path):
    """Low memory: CLIP encodes the frames and the prompts without the DiT (the empty features it holds are
    added in the sampling stage), and no two networks are ever loaded together."""
    rng = np.random.default_rng(1)
    path = tmp_path / "clip.mp4"
    write_video(path, rng.integers(0, 255, (30, 48, 48, 3), dtype=np.uint8), 25)
    built: list[str] = []
    low = SAGANetPipeline(_lazy_tiny(built), "tiny", low_memory=True)
    parts = {"frame_encoder": low.model.frame_encoder, "sync_encoder": low.model.sync_encoder,
             "dit": low.model.dit, "codec": low.model.codec}
    together: list[list[str]] = []
    for lazy in parts.values():
        factory = lazy.__dict__["_factory"]

        def watched(factory=factory):
            module = factory()
            together.append(sorted(n for n, p in parts.items() if p.loaded) + [built[-1]])
            return module

        lazy.__dict__["_factory"] = watched
    v = low.load_video(path, quiet=True)
    m = torch.zeros(v.sync_frames.shape[0], 1, *v.sync_frames.shape[-2:])
    m[..., :, :24] = 1
    low.generate(v, [ObjectMask("left", m)], GenerationOptions(steps=2, progress=False, prompt="a violin",
                                                                negative_prompt="noise"))
    assert built == ["frame_encoder", "sync_encoder", "dit", "codec"]  # in stage order, each once
    assert together == [[n] for n in built]  # nothing else loaded when each network is built


def test_prompts_are_encoded_without_the_dit():
    built: list[str] = []
    model = _lazy_tiny(built)
    text_f, neg = model.encode_prompts(["a violin", ""], ["noise", "hiss"])
    assert built == ["frame_encoder"] and neg is not None and text_f.shape[0] == 2
    ref = build_tiny()  # the same numbers as the one-step assembly, which reads the DiT
    c = ref.encode_conditions(["a violin", ""], negative_prompts=["noise", "hiss"], clip_seq_len=4)
    torch.testing.assert_close(text_f, c.text_f, rtol=0, atol=0)
    torch.testing.assert_close(neg, c.negative_text_f, rtol=0, atol=0)
