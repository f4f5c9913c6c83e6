"""Work that does not depend on the mask is done once: decoding and CLIP/text features are reused across
objects and calls in one process, and across processes through an opt-in cache folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saganet.builders import build_tiny
from saganet.feature_cache import FeatureCache, file_key, make_key
from saganet.io.masks import ObjectMask
from saganet.io.writers import write_video
from saganet.pipeline import GenerationOptions, SAGANetPipeline


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("v") / "clip.mp4"
    write_video(path, rng.integers(0, 255, (30, 48, 48, 3), dtype=np.uint8), 25)
    return path


def _counting(pipe: SAGANetPipeline) -> list[int]:
    calls = [0]
    enc = pipe.model.frame_encoder.encode_frames

    def counted(frames, *a, **k):
        calls[0] += 1
        return enc(frames, *a, **k)

    pipe.model.frame_encoder.encode_frames = counted
    return calls


def _mask(video, name: str, half: int) -> ObjectMask:
    m = torch.zeros(video.sync_frames.shape[0], 1, *video.sync_frames.shape[-2:])
    w = m.shape[-1] // 2
    m[..., half * w:(half + 1) * w] = 1
    return ObjectMask(name, m)


def test_second_object_reuses_decode_and_clip(clip_path):
    pipe = SAGANetPipeline(build_tiny(), "tiny")
    calls = _counting(pipe)
    opt = GenerationOptions(steps=2, progress=False)
    v1 = pipe.load_video(clip_path, quiet=True)
    a = pipe.generate(v1, [_mask(v1, "left", 0)], opt)
    v2 = pipe.load_video(clip_path, quiet=True)
    assert v2 is v1  # decoded once
    b = pipe.generate(v2, [_mask(v2, "right", 1)], opt)
    assert calls[0] == 1  # CLIP ran for the first object only
    # the cached features give exactly what a fresh pipeline computes
    fresh = SAGANetPipeline(build_tiny(), "tiny")
    fv = fresh.load_video(clip_path, quiet=True)
    torch.testing.assert_close(fresh.generate(fv, [_mask(fv, "right", 1)], opt).stems, b.stems, rtol=0, atol=0)
    assert not torch.equal(a.stems, b.stems)
    # other options (a different duration) are another entry
    v3 = pipe.load_video(clip_path, duration=0.8, quiet=True)
    assert v3 is not v1
    pipe.generate(v3, [_mask(v3, "left", 0)], opt)
    assert calls[0] == 2


def test_cache_folder_is_shared_across_pipelines(clip_path, tmp_path):
    opt = GenerationOptions(steps=2, progress=False)
    first = SAGANetPipeline(build_tiny(), "tiny", cache=FeatureCache(tmp_path / "cache"))
    v = first.load_video(clip_path, quiet=True)
    ref = first.generate(v, [_mask(v, "left", 0)], opt).stems
    files = list((tmp_path / "cache").glob("*.safetensors"))
    assert len(files) == 1
    second = SAGANetPipeline(build_tiny(), "tiny", cache=FeatureCache(tmp_path / "cache"))
    calls = _counting(second)
    v = second.load_video(clip_path, quiet=True)
    torch.testing.assert_close(second.generate(v, [_mask(v, "left", 0)], opt).stems, ref, rtol=0, atol=0)
    assert calls[0] == 0
    # a corrupt entry is ignored and rewritten, never trusted
    files[0].write_bytes(b"not a safetensors file")
    third = SAGANetPipeline(build_tiny(), "tiny", cache=FeatureCache(tmp_path / "cache"))
    calls = _counting(third)
    v = third.load_video(clip_path, quiet=True)
    torch.testing.assert_close(third.generate(v, [_mask(v, "left", 0)], opt).stems, ref, rtol=0, atol=0)
    assert calls[0] == 1 and files[0].stat().st_size > 100


def test_a_different_model_never_hits_another_models_entry(clip_path, tmp_path):
    cache = FeatureCache(tmp_path / "c")
    a = SAGANetPipeline(build_tiny(seed=0), "tiny", cache=cache)
    b = SAGANetPipeline(build_tiny(seed=1), "tiny", cache=cache)
    opt = GenerationOptions(steps=2, progress=False)
    va = a.load_video(clip_path, quiet=True)
    a.generate(va, [_mask(va, "x", 0)], opt)
    calls = _counting(b)
    vb = b.load_video(clip_path, quiet=True)
    b.generate(vb, [_mask(vb, "x", 0)], opt)
    assert calls[0] == 1


def test_keys_follow_content_not_names(tmp_path):
    p, q = tmp_path / "a.bin", tmp_path / "b.bin"
    p.write_bytes(b"same")
    q.write_bytes(b"same")
    assert file_key(p) == file_key(q)
    q.write_bytes(b"other")
    assert file_key(p) != file_key(q)
    assert make_key("x", 1, [2]) == make_key("x", 1, [2]) != make_key("x", 1, [3])


def test_quantised_encoders_do_not_share_float_entries(clip_path, tmp_path):
    from saganet.acceleration import quantize_encoders

    cache = FeatureCache(tmp_path / "c")
    plain = SAGANetPipeline(build_tiny(), "tiny", cache=cache)
    opt = GenerationOptions(steps=2, progress=False)
    v = plain.load_video(clip_path, quiet=True)
    plain.generate(v, [_mask(v, "x", 0)], opt)
    q = SAGANetPipeline(build_tiny(), "tiny", cache=cache)
    quantize_encoders(q.model)
    assert q.encoder_key() != plain.encoder_key()
    calls = _counting(q)
    v = q.load_video(clip_path, quiet=True)
    q.generate(v, [_mask(v, "x", 0)], opt)
    assert calls[0] == 1  # int8 CLIP features computed, not taken from the float entry
