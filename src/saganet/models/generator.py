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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import nn

from saganet.configs import SequenceConfig
from saganet.focal import DEFAULT_FOCAL_MODE, FocalMode, focal_crop
from saganet.models.dit import MMDiT
from saganet.models.lazy import LazyModule
from saganet.models.sync_encoder import SegAwareSyncEncoder, SyncEncoder

# The released focal crop has a 56 px minimum window on 224 px frames; smaller models scale it.
REFERENCE_MIN_CROP, REFERENCE_SYNC_SIZE = 56, 224


class FrameEncoder(Protocol):
    def encode_frames(self, frames: torch.Tensor, batch_size: int = -1) -> torch.Tensor: ...


class TextEncoder(Protocol):
    def encode_text(self, texts: list[str]) -> torch.Tensor: ...


# How an empty positive prompt becomes text features: "encode" runs the text encoder on "" (the reference's
# rule, RN-48); "stored" uses the DiT's stored empty-string feature (what the
# shipped toy models were evaluated with). A missing negative prompt always uses the stored feature.
EmptyPromptRule = Literal["encode", "stored"]


@dataclass
class Conditions:
    """The DiT's condition inputs for B rows: clip_f `(B, Nc, Dc)`, text_f `(B, Lt, Dt)`, and
    negative_text_f `(B, Lt, Dt)` or None (the unconditional branch then uses the stored empty string)."""

    clip_f: torch.Tensor
    text_f: torch.Tensor
    negative_text_f: torch.Tensor | None = None


class AudioGenerator(nn.Module):
    """Holds frame/text encoders, the sync encoder, the MM-DiT and the audio codec.

    `segaware` is True when `sync_encoder` takes masks (SAGANet) and False for plain MMAudio.
    """

    def __init__(self, dit: MMDiT, sync_encoder: SegAwareSyncEncoder | SyncEncoder, frame_encoder: nn.Module,
                 text_encoder: nn.Module, codec: nn.Module, seq: SequenceConfig, clip_size: int, sync_size: int,
                 focal_mode: FocalMode = DEFAULT_FOCAL_MODE, use_clip_frames: bool = True,
                 empty_prompt: EmptyPromptRule = "encode") -> None:
        super().__init__()
        self.dit, self.sync_encoder, self.codec = dit, sync_encoder, codec
        self.frame_encoder, self.text_encoder = frame_encoder, text_encoder
        # configuration, fixed at build time (never changed by a call): the trained sequence config,
        # frame sizes, the focal-crop rule the weights were trained with, the empty-prompt rule
        self.seq, self.clip_size, self.sync_size, self.focal_mode = seq, clip_size, sync_size, focal_mode
        self.empty_prompt = empty_prompt
        # False: the model was trained with the learned empty CLIP feature in place of frames (the
        # reference's --mask_away_clip); full-frame CLIP features cannot say which object is meant.
        self.use_clip_frames = use_clip_frames

    @property
    def segaware(self) -> bool:
        enc = self.sync_encoder
        return isinstance(enc, SegAwareSyncEncoder) or (isinstance(enc, LazyModule)
                                                         and issubclass(enc.cls, SegAwareSyncEncoder))

    @property
    def sample_rate(self) -> int:
        return self.seq.sampling_rate

    @property
    def focal_min_size(self) -> int:
        return max(1, round(REFERENCE_MIN_CROP * self.sync_size / REFERENCE_SYNC_SIZE))

    def seq_for(self, duration: float) -> SequenceConfig:
        """The sequence lengths for `duration` seconds (any duration >= 0.64 s); the model is unchanged."""
        seq = self.seq.with_duration(duration)
        seq.validate()
        return seq

    def focal_prompt(self, frames: torch.Tensor, masks: torch.Tensor, focal_mode: FocalMode | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Focal crops of `frames (B, T, 3, S, S)` / `masks (B, T, 1, S, S)` at the sync size
        (`focal_mode` defaults to the mode this model was configured with)."""
        detail, detail_masks, _ = focal_crop(frames, masks, mode=focal_mode or self.focal_mode,
                                             min_size=self.focal_min_size, out_size=(self.sync_size, self.sync_size))
        return detail, detail_masks

    def encode_sync(self, frames: torch.Tensor, masks: torch.Tensor | None = None,
                    detail_frames: torch.Tensor | None = None, detail_masks: torch.Tensor | None = None, *,
                    focal_mode: FocalMode | None = None, progress: bool = False) -> torch.Tensor:
        """`frames (B, T, 3, S, S)` in [-1, 1] (+ masks `(B, T, 1, S, S)`) -> `(B, S*8, Ds)`."""
        if not self.segaware:
            return self.sync_encoder(frames, progress=progress)
        if masks is None:
            raise ValueError("the segmentation-aware encoder needs object masks")
        if detail_frames is None or detail_masks is None:
            detail_frames, detail_masks = self.focal_prompt(frames, masks, focal_mode)
        return self.sync_encoder(frames, masks, detail_frames, detail_masks, progress=progress)

    def encode_clip(self, frames: torch.Tensor, batch_size: int = -1) -> torch.Tensor:
        """`frames (B, Tc, 3, H, W)` in [0, 1] -> `(B, Tc, Dc)` (the empty feature if frames are not used).
        `batch_size` frames go through the encoder at a time (-1: all): fewer activations held at once."""
        if not self.use_clip_frames:
            return self.dit.get_empty_clip_sequence(frames.shape[0], frames.shape[1]).to(frames.dtype)
        return self.frame_encoder.encode_frames(frames, batch_size=batch_size)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """`texts` -> per-token features `(B, Lt, Dt)`."""
        return self.text_encoder.encode_text(texts)

    def _apply_empty_rule(self, text_f: torch.Tensor, prompts: list[str],
                          stored: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Rows of empty prompts get the stored empty-string feature when the model's rule is "stored"."""
        rows = [i for i, p in enumerate(prompts) if not p] if self.empty_prompt == "stored" else []
        if not rows:
            return text_f
        text_f = text_f.clone()
        text_f[rows] = stored()[rows].to(text_f)
        return text_f

    def encode_prompts(self, prompts: list[str], negative_prompts: list[str] | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Text features of `prompts` `(B, Lt, Dt)` by the empty-prompt rule, and of the negative prompts
        (rows with text encoded, empty rows the stored empty string; None when every row is empty).

        The DiT's stored empty-string feature is read only where a rule needs it, so the released models
        encode their prompts while only CLIP is loaded (low-memory generation). Features come in the text
        encoder's dtype; `encode_conditions` casts them to the DiT's.
        """
        b = len(prompts)

        def stored() -> torch.Tensor:
            return self.dit.get_empty_string_sequence(b)

        if self.empty_prompt == "encode" or any(prompts):
            text_f = self._apply_empty_rule(self.encode_text(prompts), prompts, stored)
        else:
            text_f = stored().clone()
        return text_f, self._encode_negatives(negative_prompts, stored)

    def _encode_negatives(self, negative_prompts: list[str] | None,
                          stored: Callable[[], torch.Tensor]) -> torch.Tensor | None:
        if negative_prompts is None or not any(negative_prompts):
            return None
        rows = [i for i, p in enumerate(negative_prompts) if p]
        encoded = self.encode_text([negative_prompts[i] for i in rows])
        if len(rows) == len(negative_prompts):
            return encoded
        neg = stored().clone().to(encoded)
        neg[rows] = encoded
        return neg

    def encode_conditions(self, prompts: list[str] | None = None, *, clip_frames: torch.Tensor | None = None,
                          clip_f: torch.Tensor | None = None, text_f: torch.Tensor | None = None,
                          negative_prompts: list[str] | None = None, clip_seq_len: int | None = None,
                          mask_away_clip: bool = False) -> Conditions:
        """The one place where condition features are assembled (pipeline, trainer, evaluations).

        One row per prompt (or per row of `text_f`). CLIP: `clip_f (B, Nc, Dc)` as given, else `clip_frames (1|B, Nc, 3, H, W)`
        encoded, or the learned empty feature when the model does not use frames, `mask_away_clip` is set
        or no frames are given (then `clip_seq_len` gives its length). Text: `text_f (B, Lt, Dt)` as given
        (precomputed for `prompts`), else the prompts encoded; empty prompts follow `self.empty_prompt`.
        Negative prompts: rows with text are encoded, empty rows use the stored empty string; all empty
        gives None (the DiT's own unconditional branch).
        """
        if prompts is None and text_f is None:
            raise ValueError("give prompts or precomputed text_f")
        b = len(prompts) if prompts is not None else text_f.shape[0]
        dit = self.dit
        if not self.use_clip_frames or mask_away_clip or (clip_f is None and clip_frames is None):
            n = clip_seq_len or (clip_f.shape[1] if clip_f is not None else
                                 clip_frames.shape[1] if clip_frames is not None else None)
            clip = dit.get_empty_clip_sequence(b, n)
        elif clip_f is not None:
            clip = clip_f
        else:
            clip = self.frame_encoder.encode_frames(clip_frames)
        if clip.shape[0] == 1 and b > 1:
            clip = clip.expand(b, -1, -1)
        stored = dit.get_empty_string_sequence(b)
        if text_f is None:
            text_f, neg = self.encode_prompts(prompts, negative_prompts)
            text_f = text_f.to(stored)
        else:
            if prompts is not None:
                text_f = self._apply_empty_rule(text_f, prompts, lambda: stored)
            neg = self._encode_negatives(negative_prompts, lambda: stored)
        return Conditions(clip, text_f, neg.to(stored) if neg is not None else None)
