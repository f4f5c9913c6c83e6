"""The toy recipe picks CLIP frames with the decoder's own rule (`io.video.pick_frames`), so features
computed from arrays equal what `decode_video` gives for the same clip written to disk."""

from __future__ import annotations

import numpy as np
import torch

from saganet.io.video import decode_video, pick_frames
from saganet.io.writers import write_video
from saganet.toyworld.training import TOY_FRAME_RULE, frames_to_model, resample_indices


def _index_coded(n: int, h: int = 32, w: int = 32) -> np.ndarray:
    """Frame i is one flat colour that encodes i (distinct after lossy encoding)."""
    rng = np.random.default_rng(0)
    colours = rng.permutation(np.stack(np.meshgrid([20, 120, 220], [20, 120, 220], [20, 120, 220]), -1).reshape(-1, 3))
    return np.repeat(np.repeat(colours[np.arange(n) % len(colours)][:, None, None, :], h, 1), w, 2).astype(np.uint8)


def test_resample_indices_is_pick_frames():
    for fps, target, n in ((25, 8, 20), (30, 8, 24), (29.97, 8, 24), (25, 25, 50)):
        want = pick_frames(np.arange(100) / fps, np.arange(n) / target, TOY_FRAME_RULE)
        assert np.array_equal(resample_indices(100, fps, target, n), want)
    # the two rules differ on 25 fps -> 8 fps (7 of every 8 targets fall between frames)
    after = pick_frames(np.arange(100) / 25, np.arange(16) / 8, "at_or_after")
    assert (after != resample_indices(100, 25, 8, 16)).sum() == 14


def test_toy_clip_frames_equal_decoded_frames(tmp_path):
    video = _index_coded(50)
    path = tmp_path / "coded.mp4"
    write_video(path, video, 25)
    dec = decode_video(path, duration=2.0, clip_size=16, sync_size=16, frame_rule=TOY_FRAME_RULE)
    idx = torch.from_numpy(resample_indices(50, 25, 8, dec.clip_frames.shape[0]))
    ours = frames_to_model(torch.from_numpy(video)[None, idx], 16)[0]
    # flat colours survive h264 within a few levels; a one-frame shift would change the colour entirely
    assert (ours - dec.clip_frames).abs().amax(dim=(1, 2, 3)).max() < 0.06
