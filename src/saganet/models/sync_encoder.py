"""Synchronisation-feature encoders over whole clips: 16-frame segments with step 8, run in chunks.

`frames (B, T, 3, H, W)` in [-1, 1] at 25 fps -> `(B, S*8, D)` with `S = (T - 16) // 8 + 1`
(RN-36; 125 frames -> 14 segments -> 112 features, frames 120-124 unused).

Also: trainability modes and loaders for the released state dicts (they take already-read dicts).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Literal

import torch
from torch import nn
from tqdm import tqdm

from saganet.errors import CheckpointError, InputError
from saganet.focal import DEFAULT_FOCAL_MODE, FocalMode, focal_crop
from saganet.models.motionformer import Synchformer
from saganet.models.segaware import SynchformerWithContext, is_addition
from saganet.models.state_dict import check_state_dict, load_strict, preview_names

log = logging.getLogger(__name__)

TrainMode = Literal["additions", "all", "none"]
PREFIX = "vfeat_extractor."


def num_segments(T: int, segment: int = 16, step: int = 8) -> int:
    return (T - segment) // step + 1


def segment_frames(x: torch.Tensor, segment: int = 16, step: int = 8) -> torch.Tensor:
    """`(B, T, C, H, W)` -> `(B, S, segment, C, H, W)` with S = (T - segment) // step + 1 (a view)."""
    if x.ndim != 5:
        raise InputError(f"expected frames (B, T, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] < segment:
        raise InputError(f"need at least {segment} frames ({segment / 25:.2f} s at 25 fps), got {x.shape[1]}")
    return x.unfold(1, segment, step).movedim(-1, 2)


def _chunks(n: int, size: int) -> Iterator[slice]:
    size = max(1, int(size))
    for i in range(0, n, size):
        yield slice(i, min(i + size, n))


def _progress(chunks: Iterator[slice], n: int, size: int, show: bool) -> Iterator[slice]:
    """A progress bar over segment chunks (the full-size encoder takes seconds per segment on a CPU)."""
    return iter(tqdm(chunks, total=-(-n // max(1, size)), desc="sync encoder", unit="chunk", disable=not show,
                     leave=False))


class SyncEncoder(nn.Module):
    """Plain MMAudio baseline: `frames (B, T, 3, H, W)` -> `(B, S*t, D)`, no masks."""

    def __init__(self, model: Synchformer, chunk_size: int = 40):
        super().__init__()
        self.model, self.chunk_size = model, chunk_size
        self.segment = model.cfg.frames_per_segment

    def forward(self, frames: torch.Tensor, *, progress: bool = False) -> torch.Tensor:
        """`frames (B, T, 3, H, W)` -> `(B, S*t, D)`; `progress` shows a bar over segment chunks."""
        seg = segment_frames(frames, self.segment, self.segment // 2)  # (B, S, 16, C, H, W)
        B, S = seg.shape[:2]
        flat = seg.flatten(0, 1)
        # each chunk of n segments runs as one clip of n segments: (1, n, 16, C, H, W) -> (1, n, t, D)
        outs = [self.model(flat[c, None].transpose(0, 1))[0]
                for c in _progress(_chunks(B * S, self.chunk_size), B * S, self.chunk_size, progress)]
        out = torch.cat(outs)  # (B*S, t, D)
        return out.reshape(B, -1, out.shape[-1])  # (B, S*t, D)


class SegAwareSyncEncoder(nn.Module):
    """Segmentation-aware encoder: frames + object masks (+ focal crops) -> `(B, S*t, D)`.

    `forward(frames (B,T,3,H,W) in [-1,1], masks (B,T,1,H,W) in [0,1], detail_frames, detail_masks)`.
    If the detail inputs are omitted they are computed with `focal_crop(mode=focal_mode)` over the
    whole clip (the union window of the reference is per clip, not per segment). Each batch item is
    one object; stack several objects of one video along B.
    """

    def __init__(self, model: SynchformerWithContext, chunk_size: int = 40):
        super().__init__()
        self.model, self.chunk_size = model, chunk_size
        self.segment = model.cfg.frames_per_segment

    def forward(
        self,
        frames: torch.Tensor,
        masks: torch.Tensor,
        detail_frames: torch.Tensor | None = None,
        detail_masks: torch.Tensor | None = None,
        *,
        focal_mode: FocalMode = DEFAULT_FOCAL_MODE,
        progress: bool = False,
    ) -> torch.Tensor:
        if masks.shape[:2] != frames.shape[:2] or masks.shape[2] != 1:
            raise InputError(f"masks {tuple(masks.shape)} do not match frames {tuple(frames.shape)}")
        if detail_frames is None or detail_masks is None:
            size = (self.model.cfg.img_size, self.model.cfg.img_size)
            detail_frames, detail_masks, _ = focal_crop(frames, masks, mode=focal_mode, out_size=size)
        step = self.segment // 2
        segs = [segment_frames(t, self.segment, step) for t in (frames, masks, detail_frames, detail_masks)]
        B, S = segs[0].shape[:2]
        flat = [s.flatten(0, 1) for s in segs]  # (B*S, 16, C, H, W)
        outs = []
        for c in _progress(_chunks(B * S, self.chunk_size), B * S, self.chunk_size, progress):
            x, m, dx, dm = (f[c, None].transpose(0, 1) for f in flat)  # (1, n, 16, C, H, W)
            outs.append(self.model(x, m, dx, dm)[0])  # (n, t, D)
        out = torch.cat(outs)
        return out.reshape(B, -1, out.shape[-1])

    def trainable_parameters(self, mode: TrainMode = "additions") -> list[nn.Parameter]:
        return [p for _, p in _select(self.model, mode)]


def _select(model: nn.Module, mode: TrainMode) -> list[tuple[str, nn.Parameter]]:
    if mode == "additions":
        return [(n, p) for n, p in model.named_parameters() if is_addition(n)]
    if mode == "all":
        # the 2-D patch embedding is never used (RN-15), so it never trains
        return [(n, p) for n, p in model.named_parameters() if ".patch_embed.proj" not in f".{n}"]
    if mode == "none":
        return []
    raise ValueError(f"unknown trainability mode {mode!r} (additions, all, none)")


def set_trainable(model: nn.Module, mode: TrainMode = "additions") -> int:
    """Set `requires_grad` for a (context) Synchformer and return the number of trainable elements.

    "additions": backbone frozen, mask embedding + gated layers train (reference behaviour);
    "all": everything but the unused 2-D patch embedding; "none": everything frozen.
    The context pass never gets gradients in any mode (reference: it runs under no_grad).
    """
    chosen = {id(p) for _, p in _select(model, mode)}
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ----------------------------------------------------------------------------------------- loading


class _Layout:
    """Duck-typed stand-in for a module in `check_state_dict`: just a key -> tensor layout."""

    def __init__(self, sd: Mapping[str, torch.Tensor]):
        self._sd = sd

    def state_dict(self) -> Mapping[str, torch.Tensor]:
        return self._sd


def _report_dropped(dropped: list[str], source: str) -> None:
    if dropped:
        log.warning("%s: ignoring %d keys that are not part of the visual branch: %s",
                    source, len(dropped), preview_names(dropped, 4))


def load_mmaudio_synchformer(
    model: Synchformer | SynchformerWithContext, state_dict: Mapping[str, torch.Tensor]
) -> dict[str, list[str]]:
    """Load MMAudio's `synchformer_state_dict.pth` layout into a (context) Synchformer.

    Keeps the `vfeat_extractor.*` keys and reports (log warning) the others it carries (audio
    branch, transformer heads, ...). Backbone keys load strictly; for a `SynchformerWithContext`
    the additions (mask embedding, gated layers) are not in the file: they keep their initial
    values and are reported. Returns `{"ignored": [...], "left_at_init": [...]}`.
    """
    kept = {k: v for k, v in state_dict.items() if k.startswith(PREFIX)}
    ignored = sorted(k for k in state_dict if not k.startswith(PREFIX))
    _report_dropped(ignored, "synchformer checkpoint")
    if not kept:
        raise CheckpointError("synchformer checkpoint has no 'vfeat_extractor.*' keys (wrong file?)")
    left: list[str] = []
    if isinstance(model, SynchformerWithContext):
        own = model.state_dict()
        left = sorted(k for k in own if is_addition(k) and k not in kept)
        # strict on the backbone: every backbone key present, nothing unknown, shapes equal
        expected = {k: v for k, v in own.items() if k not in left}
        check_state_dict(_Layout(expected), kept, "Synchformer backbone")
        model.load_state_dict(kept, strict=False)
        if left:
            log.warning("synchformer checkpoint: %d segmentation-aware parameters are not in the file and "
                        "keep their initial values: %s", len(left), preview_names(left, 4))
    else:
        load_strict(model, kept, "Synchformer")
    return {"ignored": ignored, "left_at_init": left}


def load_saganet_synchformer(model: SynchformerWithContext, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load the `"synchformer"` entry of a released SAGANet checkpoint strictly (the reference loads it
    with strict=False by default, RN-29, so problems would go unnoticed there)."""
    load_strict(model, state_dict, "SynchformerWithContext")
