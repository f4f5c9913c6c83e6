"""Opt-in faster networks (`saganet.acceleration`): int8 encoders stay close to float32 and still generate;
compiled networks equal eager within 1e-4. Speed figures live in benchmarks/bench_accel.py, not here."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

from saganet.acceleration import compile_networks, quantize_encoders
from saganet.builders import build_tiny, build_toy
from saganet.sampling import generate_latents


def _n_int8(module: torch.nn.Module) -> int:
    return sum(isinstance(m, DynamicQuantizedLinear) for m in module.modules())


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine between matching feature vectors (last dim)."""
    return F.cosine_similarity(a.flatten(0, -2).double(), b.flatten(0, -2).double(), dim=-1)


@pytest.fixture(scope="module")
def tiny_pair():
    """(float32 tiny model, its int8-encoder copy)."""
    ref = build_tiny()
    return ref, quantize_encoders(copy.deepcopy(ref))


def test_quantize_swaps_encoder_linears_only(tiny_pair):
    ref, q = tiny_pair
    assert _n_int8(ref) == 0
    assert _n_int8(q.frame_encoder) > 0 and _n_int8(q.sync_encoder) > 0
    assert _n_int8(q.dit) == 0 and _n_int8(q.codec) == 0  # the DiT and the codec stay in float
    # every float Linear left in the sync encoder sits in a PyTorch transformer layer (kept: its fast path
    # reads `linear.weight`)
    keep = [n for n, m in q.sync_encoder.named_modules()
            if isinstance(m, (torch.nn.TransformerEncoderLayer, torch.nn.MultiheadAttention))]
    left = [n for n, m in q.sync_encoder.named_modules() if type(m) is torch.nn.Linear]
    assert all(any(n.startswith(k + ".") for k in keep) for n in left), left


@torch.no_grad()
def test_quantized_clip_features_close_to_float(tiny_pair):
    ref, q = tiny_pair
    frames = torch.rand(2, 3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    f32, f8 = ref.frame_encoder.encode_frames(frames), q.frame_encoder.encode_frames(frames)
    assert f8.shape == f32.shape and torch.isfinite(f8).all()
    assert not torch.equal(f8, f32)  # quantisation did change the computation
    assert _cos(f32, f8).min() > 0.99
    texts = ["a bell", "two plucks", ""]
    t32, t8 = ref.text_encoder.encode_text(texts), q.text_encoder.encode_text(texts)
    assert torch.isfinite(t8).all() and _cos(t32, t8).min() > 0.99


@torch.no_grad()
def test_quantized_sync_features_close_to_float(tiny_pair):
    ref, q = tiny_pair
    g = torch.Generator().manual_seed(1)
    size = ref.sync_encoder.model.cfg.img_size
    frames = torch.rand(2, 16, 3, size, size, generator=g) * 2 - 1
    masks = (torch.rand(2, 16, 1, size, size, generator=g) > 0.5).float()
    s32, s8 = ref.encode_sync(frames, masks), q.encode_sync(frames, masks)
    assert s8.shape == s32.shape and torch.isfinite(s8).all()
    assert not torch.equal(s8, s32)
    assert _cos(s32, s8).min() > 0.99


def test_pipeline_generates_with_quantized_toy_model(tmp_path):
    """The shipped toy model with int8 encoders goes through the whole pipeline (decode, masks, generate)."""
    from saganet.io.masks import MaskSpec
    from saganet.io.writers import write_mask_video, write_video
    from saganet.pipeline import GenerationOptions, SAGANetPipeline
    from saganet.toyworld.dataset import make_scene
    from saganet.toyworld.world import WorldConfig

    world = WorldConfig()
    scene = make_scene("multi_diff", 7, 0)
    write_video(tmp_path / "scene.mp4", scene.video, world.fps)
    specs = []
    for k, mask in enumerate(scene.masks[:2]):
        write_mask_video(tmp_path / f"m{k}.mp4", mask, world.fps)
        specs.append(MaskSpec(tmp_path / f"m{k}.mp4", name=f"obj{k}"))
    model = quantize_encoders(build_toy("toy"))
    assert _n_int8(model.sync_encoder) > 0
    pipe = SAGANetPipeline(model, "toy")
    video = pipe.load_video(tmp_path / "scene.mp4", quiet=True)
    result = pipe.generate(video, pipe.load_masks(specs, video), GenerationOptions(steps=2, seed=3, progress=False))
    stems = result.stems.numpy()
    assert stems.shape == (2, int(round(video.duration * model.sample_rate)))
    assert np.isfinite(stems).all() and (np.abs(stems).max(axis=1) > 1e-3).all()
    assert not np.allclose(stems[0], stems[1])  # each object's own mask still steers its stem


@pytest.mark.slow
@torch.no_grad()
def test_compiled_networks_equal_eager():
    """`compile_networks` (inductor): CLIP frames, sync features and the sampled latents within 1e-4 of eager."""
    import torch._inductor  # noqa: F401  (part of torch: a missing one is an error, not a skip)
    from torch._dynamo.utils import counters

    counters.clear()
    eager = build_tiny()
    comp = compile_networks(copy.deepcopy(eager))
    g = torch.Generator().manual_seed(2)
    size = eager.sync_encoder.model.cfg.img_size
    clip_frames = torch.rand(1, 4, 3, 32, 32, generator=g)
    frames = torch.rand(1, 16, 3, size, size, generator=g) * 2 - 1
    masks = (torch.rand(1, 16, 1, size, size, generator=g) > 0.5).float()
    outs = []
    for m in (eager, comp):
        clip_f = m.frame_encoder.encode_frames(clip_frames)
        sync_f = m.encode_sync(frames, masks)
        outs.append((clip_f, sync_f))
    for a, b in zip(*outs):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)

    seq = eager.seq
    cfg = eager.dit.cfg
    clip_f = torch.randn(2, seq.clip_seq_len, cfg.clip_dim, generator=g)
    sync_f = torch.randn(2, seq.sync_seq_len, cfg.sync_dim, generator=g)
    text_f = torch.randn(2, cfg.text_seq_len, cfg.text_dim, generator=g)
    x0 = torch.randn(2, seq.latent_seq_len, cfg.latent_dim, generator=g)
    lat = [generate_latents(m.dit, clip_f, sync_f, text_f, x0, steps=3, cfg_strength=4.5) for m in (eager, comp)]
    torch.testing.assert_close(lat[1], lat[0], atol=1e-4, rtol=1e-4)
    # the compiled path really ran: dynamo captured graphs (CLIP tower, sync backbone, predict_flow)
    assert counters["stats"]["unique_graphs"] >= 3


def test_generate_with_options_is_paired_and_deterministic():
    """The sampler study's tool: one array per option, repeatable (noise and Griffin-Lim phases fixed per
    seed), equal to the one-option path, and different options give different audio."""
    from saganet.pipeline import GenerationOptions
    from saganet.toyworld.dataset import SPLITS, generate_arrays
    from saganet.toyworld.evaluate import generate_for_arrays, generate_with_options

    model = build_toy("toy")
    arrays = generate_arrays(1, seed=SPLITS["test_same"][1], kind="multi_same")
    euler2 = GenerationOptions(steps=2, seed=4, progress=False)
    mid1 = GenerationOptions(steps=1, sampler="midpoint", seed=4, progress=False)
    a, b, c = generate_with_options(model, arrays, [euler2, euler2, mid1])
    assert a.shape == (len(arrays), arrays.target.shape[1]) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, generate_for_arrays(model, arrays, euler2))
    assert not np.allclose(a, c)
