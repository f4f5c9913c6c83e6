"""`AudioGenerator`: the modules one generation needs, held together (no I/O, no sampling loop).

frames@clip_fps (B, Tc, 3, clip_size², [0,1]) --frame encoder--> clip_f (B, Tc, Dc)
frames@25fps (B, T, 3, sync_size², [-1,1]) + masks (B, T, 1, sync_size²)
        --focal crop + segmentation-aware sync encoder--> sync_f (B, S*8, Ds)
texts --text encoder--> text_f (B, Lt, Dt)
noise --MM-DiT (flow) --> latent --codec--> waveform

The same class holds the released SAGANet (CLIP, full MotionFormer, VAE + BigVGAN) and the tiny
toy-world model (fixed features, tiny encoder, analytic codec); a plain (MMAudio) sync encoder
takes no masks.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from saganet.configs import SequenceConfig
from saganet.focal import FocalMode, focal_crop
from saganet.models.dit import MMDiT
from saganet.models.sync_encoder import SegAwareSyncEncoder, SyncEncoder

# The released focal crop has a 56 px minimum window on 224 px frames; smaller models scale it.
REFERENCE_MIN_CROP, REFERENCE_SYNC_SIZE = 56, 224


class FrameEncoder(Protocol):
    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor: ...


class TextEncoder(Protocol):
    def encode_text(self, texts: list[str]) -> torch.Tensor: ...


class AudioGenerator(nn.Module):
    """Holds frame/text encoders, the sync encoder, the MM-DiT and the audio codec.

    `segaware` is True when `sync_encoder` takes masks (SAGANet) and False for plain MMAudio.
    """

    def __init__(self, dit: MMDiT, sync_encoder: SegAwareSyncEncoder | SyncEncoder, frame_encoder: nn.Module,
                 text_encoder: nn.Module, codec: nn.Module, seq: SequenceConfig, clip_size: int, sync_size: int,
                 focal_mode: FocalMode = "default", use_clip_frames: bool = True) -> None:
        super().__init__()
        self.dit, self.sync_encoder, self.codec = dit, sync_encoder, codec
        self.frame_encoder, self.text_encoder = frame_encoder, text_encoder
        self.seq, self.clip_size, self.sync_size, self.focal_mode = seq, clip_size, sync_size, focal_mode
        # False: the model was trained with the learned empty CLIP feature in place of frames (the
        # reference's --mask_away_clip); full-frame CLIP features cannot say which object is meant.
        self.use_clip_frames = use_clip_frames

    @property
    def segaware(self) -> bool:
        return isinstance(self.sync_encoder, SegAwareSyncEncoder)

    @property
    def sample_rate(self) -> int:
        return self.seq.sampling_rate

    @property
    def focal_min_size(self) -> int:
        return max(1, round(REFERENCE_MIN_CROP * self.sync_size / REFERENCE_SYNC_SIZE))

    def set_duration(self, duration: float) -> SequenceConfig:
        """Recompute every sequence length for `duration` seconds (any duration >= 0.64 s)."""
        self.seq = self.seq.with_duration(duration)
        self.seq.validate()
        self.dit.update_seq_lengths(self.seq.latent_seq_len, self.seq.clip_seq_len, self.seq.sync_seq_len)
        return self.seq

    def focal_prompt(self, frames: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Focal crops of `frames (B, T, 3, S, S)` / `masks (B, T, 1, S, S)` at the sync size."""
        detail, detail_masks, _ = focal_crop(frames, masks, mode=self.focal_mode, min_size=self.focal_min_size,
                                             out_size=(self.sync_size, self.sync_size))
        return detail, detail_masks

    def encode_sync(self, frames: torch.Tensor, masks: torch.Tensor | None = None,
                    detail_frames: torch.Tensor | None = None,
                    detail_masks: torch.Tensor | None = None) -> torch.Tensor:
        """`frames (B, T, 3, S, S)` in [-1, 1] (+ masks `(B, T, 1, S, S)`) -> `(B, sync_seq_len, Ds)`."""
        if not self.segaware:
            return self.sync_encoder(frames)
        if masks is None:
            raise ValueError("the segmentation-aware encoder needs object masks")
        if detail_frames is None or detail_masks is None:
            detail_frames, detail_masks = self.focal_prompt(frames, masks)
        return self.sync_encoder(frames, masks, detail_frames, detail_masks)

    def encode_clip(self, frames: torch.Tensor) -> torch.Tensor:
        """`frames (B, Tc, 3, H, W)` in [0, 1] -> `(B, Tc, Dc)` (the empty feature if frames are not used)."""
        if not self.use_clip_frames:
            return self.dit.get_empty_clip_sequence(frames.shape[0]).to(frames.dtype)
        return self.frame_encoder.encode_frames(frames)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """`texts` -> per-token features `(B, Lt, Dt)`."""
        return self.text_encoder.encode_text(texts)
