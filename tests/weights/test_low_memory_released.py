"""`--low-memory` on a released variant (tiny files in the released layouts): each network is read from its
file when its stage starts and freed after; the audio equals the resident model's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saganet.io.masks import ObjectMask
from saganet.io.writers import write_video
from saganet.models.lazy import LazyModule
from saganet.pipeline import GenerationOptions, SAGANetPipeline


@pytest.mark.parametrize("variant", ["saganet_small", "small_44k"])
def test_low_memory_equals_resident(released, tmp_path, variant):
    path = tmp_path / "clip.mp4"
    write_video(path, np.random.default_rng(0).integers(0, 255, (30, 48, 48, 3), dtype=np.uint8), 25)
    dirs = {"all": str(released["saganet.pth"].parent)}
    opt = GenerationOptions(steps=2, progress=False)

    def masks(pipe, video):
        if not pipe.model.segaware:
            return []
        m = torch.zeros(video.sync_frames.shape[0], 1, *video.sync_frames.shape[-2:])
        m[..., : m.shape[-1] // 2] = 1
        return [ObjectMask("left", m)]

    resident = SAGANetPipeline.from_variant(variant, model_dirs=dirs)
    v = resident.load_video(path, quiet=True)
    ref = resident.generate(v, masks(resident, v), opt).stems
    low = SAGANetPipeline.from_variant(variant, model_dirs=dirs, low_memory=True)
    parts = (low.model.dit, low.model.sync_encoder, low.model.frame_encoder, low.model.codec)
    assert all(isinstance(p, LazyModule) and not p.loaded for p in parts)
    assert low.model.segaware == resident.model.segaware
    v = low.load_video(path, quiet=True)
    # low memory encodes CLIP frames 8 at a time: the same audio up to float rounding (~1e-7)
    torch.testing.assert_close(low.generate(v, masks(low, v), opt).stems, ref, rtol=0, atol=1e-6)
    assert not any(p.loaded for p in parts)


def test_low_memory_fails_before_work_when_a_file_is_missing(released, tmp_path):
    from saganet.errors import CheckpointError

    dirs = {"clip": str(released["clip"]), "bigvgan": str(released["bigvgan_v2"]),
            "v1-44.pth": str(released["v1-44.pth"])}
    with pytest.raises(CheckpointError, match="saganet.pth"):  # no saganet.pth anywhere: fails at build time
        SAGANetPipeline.from_variant("saganet_small", model_dirs=dirs, low_memory=True)
