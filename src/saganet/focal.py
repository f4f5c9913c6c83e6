"""Focal prompt: object masks -> bounding boxes -> crops of the frames and masks, resized to 224².

Three modes (RN-18, RN-26, RN-27):

* `"reference"`: SAGANet's `run_focal_crop` exactly (the released weights saw these crops). Any
  non-zero pixel is foreground; per frame a box with *inclusive* maxima; a common size
  `max_t max(x_max - x_min, min_size)` (one pixel short for large objects); per-frame windows shifted
  back inside the frame; one union window per clip. An empty frame contributes (0, 0, 0, 0) and
  drags the union to the origin; an all-empty clip gives the top-left `min_size` window.
* `"default"`: the same single window per clip, with what no weight depends on fixed: masks are
  binarised at `threshold`, the box covers the whole object (inclusive maxima + 1), empty frames are
  ignored in the union, and an all-empty clip gives the whole frame (with a warning).
* `"tracking"`: like `"default"` but each frame gets its own window of the common size (what the
  reference's broken `_focal_crop` fallback intended, RN-27). Empty frames reuse the nearest
  non-empty frame's window.

Resizing is `F.interpolate(bilinear, align_corners=False, antialias=True)` on float values (RN-18);
a window that already has the output size is passed through unchanged.
"""

from __future__ import annotations

import logging
from typing import Literal

import torch
import torch.nn.functional as F

from saganet.errors import InputError

log = logging.getLogger(__name__)

FocalMode = Literal["reference", "default", "tracking"]
# The one default everywhere; released SAGANet variants are configured with "reference" (registry).
DEFAULT_FOCAL_MODE: FocalMode = "default"


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def mask_boxes(fg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame boxes of boolean masks `(..., H, W)`, vectorised.

    Returns `boxes (..., 4)` int64 `(x_min, y_min, x_max, y_max)` with inclusive maxima (like
    `torchvision.ops.masks_to_boxes`; zeros for empty masks) and `nonempty (...)` bool.
    """
    H, W = fg.shape[-2:]
    cols, rows = fg.any(dim=-2), fg.any(dim=-1)  # (..., W), (..., H)
    nonempty = cols.any(dim=-1)

    def first_last(a: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        a = a.to(torch.uint8)
        return a.argmax(dim=-1), (n - 1) - a.flip(-1).argmax(dim=-1)  # argmax returns the first max

    x0, x1 = first_last(cols, W)
    y0, y1 = first_last(rows, H)
    boxes = torch.stack([x0, y0, x1, y1], dim=-1).long()
    return boxes * nonempty[..., None], nonempty


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """`(T, C, h, w)` -> `(T, C, *size)`, antialiased bilinear on float; identity if already that size."""
    if tuple(x.shape[-2:]) == size:
        return x
    dtype = x.dtype
    y = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
    if not dtype.is_floating_point:
        info = torch.iinfo(dtype)
        return y.round().clamp(info.min, info.max).to(dtype)
    return y.to(dtype)


def _fill_empty(boxes: torch.Tensor, nonempty: torch.Tensor) -> torch.Tensor:
    """Give empty frames the box of the nearest non-empty frame (earlier frame on ties). `(T, 4)`."""
    T = boxes.shape[0]
    idx = torch.nonzero(nonempty).squeeze(1)
    t = torch.arange(T, device=boxes.device)
    nearest = idx[(t[:, None] - idx[None, :]).abs().argmin(dim=1)]
    return boxes[nearest]


def focal_crop(
    frames: torch.Tensor,
    masks: torch.Tensor,
    mode: FocalMode = DEFAULT_FOCAL_MODE,
    min_size: int | tuple[int, int] = 56,
    out_size: tuple[int, int] = (224, 224),
    threshold: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop each clip around its object and resize the crops.

    Args:
        frames: `(B, T, C, H, W)`, any value range (float or integer dtype).
        masks: `(B, T, 1, H, W)` object masks (soft masks allowed).
        mode: `"reference"`, `"default"` or `"tracking"` (see the module docstring).
        min_size: minimum window `(h, w)` (or one int), 56 in the release; capped at the frame size.
        out_size: `(h, w)` of the crops.
        threshold: foreground threshold of `"default"`/`"tracking"` (`mask >= threshold`).

    Returns:
        `detail_frames (B, T, C, *out_size)`, `detail_masks (B, T, 1, *out_size)` (masks binarised
        in `"default"`/`"tracking"` mode before cropping), and `boxes` int64 `(x0, y0, x1, y1)` with
        exclusive ends: `(B, 4)` (one window per clip) or `(B, T, 4)` for `"tracking"`.
    """
    if frames.ndim != 5 or masks.ndim != 5 or masks.shape[2] != 1:
        raise InputError(f"focal_crop expects frames (B,T,C,H,W) and masks (B,T,1,H,W), got "
                         f"{tuple(frames.shape)} and {tuple(masks.shape)}")
    if frames.shape[:2] != masks.shape[:2] or frames.shape[-2:] != masks.shape[-2:]:
        raise InputError(f"frames {tuple(frames.shape)} and masks {tuple(masks.shape)} do not match")
    if mode not in ("reference", "default", "tracking"):
        raise ValueError(f"unknown focal mode {mode!r}")
    B, T, C, H, W = frames.shape
    min_h, min_w = _pair(min_size)
    min_h, min_w = min(min_h, H), min(min_w, W)
    out_size = _pair(out_size)

    if mode == "reference":
        fg = masks[:, :, 0] != 0  # no threshold: any non-zero value (RN-18)
        crop_masks = masks
    else:
        fg = masks[:, :, 0] >= threshold
        crop_masks = fg[:, :, None].to(masks.dtype if masks.dtype.is_floating_point else torch.float32)
    boxes, nonempty = mask_boxes(fg)  # (B, T, 4), (B, T)
    x_min, y_min, x_max, y_max = boxes.unbind(-1)

    extent = 0 if mode == "reference" else 1  # reference: one pixel short (RN-18)
    w = (x_max - x_min + extent).clamp(min=min_w)
    h = (y_max - y_min + extent).clamp(min=min_h)
    if mode != "reference":  # empty frames do not vote on the size either
        w, h = w * nonempty, h * nonempty
    w = w.amax(dim=1, keepdim=True).clamp(min=min_w)  # (B, 1) common size
    h = h.amax(dim=1, keepdim=True).clamp(min=min_h)
    # Per-frame windows, shifted back when they run past the right/bottom edge.
    x0 = x_min - (x_min + w - W).clamp(min=0)
    y0 = y_min - (y_min + h - H).clamp(min=0)
    win = torch.stack([x0, y0, x0 + w, y0 + h], dim=-1)  # (B, T, 4)

    detail_frames = frames.new_zeros(B, T, C, *out_size)
    detail_masks = crop_masks.new_zeros(B, T, 1, *out_size)
    out_boxes = []
    for b in range(B):
        if mode != "reference" and not bool(nonempty[b].any()):
            log.warning("focal_crop: the mask of clip %d is empty in every frame; using the whole frame", b)
            box = torch.tensor([0, 0, W, H], device=frames.device)
            win_b = box.expand(T, 4)
        elif mode == "reference":
            win_b = win[b]  # empty frames keep their (0, 0)-anchored window (RN-26)
        else:
            win_b = win[b][nonempty[b]]
        if mode == "tracking":
            win_b = _fill_empty(win[b], nonempty[b]) if bool(nonempty[b].any()) else win_b
            hb, wb = int(win_b[0, 3] - win_b[0, 1]), int(win_b[0, 2] - win_b[0, 0])
            ys = win_b[:, 1, None] + torch.arange(hb, device=frames.device)  # (T, hb)
            xs = win_b[:, 0, None] + torch.arange(wb, device=frames.device)  # (T, wb)
            t = torch.arange(T, device=frames.device)[:, None, None]
            # advanced indices around a slice -> (T, hb, wb, C); move channels back
            crop_f = frames[b][t, :, ys[:, :, None], xs[:, None, :]].permute(0, 3, 1, 2)
            crop_m = crop_masks[b][t, :, ys[:, :, None], xs[:, None, :]].permute(0, 3, 1, 2)
            out_boxes.append(win_b)
        else:
            X0, Y0 = win_b[:, 0].min(), win_b[:, 1].min()
            X1, Y1 = win_b[:, 2].max(), win_b[:, 3].max()
            X0, Y0, X1, Y1 = int(X0), int(Y0), int(X1), int(Y1)
            crop_f = frames[b, :, :, Y0:Y1, X0:X1]
            crop_m = crop_masks[b, :, :, Y0:Y1, X0:X1]
            out_boxes.append(torch.tensor([X0, Y0, X1, Y1], device=frames.device))
        # One interpolate call for frames and mask when their dtypes agree (channels are independent).
        if crop_f.dtype == crop_m.dtype:
            both = _resize(torch.cat([crop_f, crop_m], dim=1), out_size)
            detail_frames[b], detail_masks[b] = both[:, :C], both[:, C:]
        else:
            detail_frames[b], detail_masks[b] = _resize(crop_f, out_size), _resize(crop_m, out_size)
    return detail_frames, detail_masks, torch.stack(out_boxes).long()
