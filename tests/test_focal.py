"""Focal prompt: reference mode against a literal per-frame implementation (RN-18), fixed modes, tracking."""

from __future__ import annotations

import logging

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import masks_to_boxes
from torchvision.transforms import v2

from saganet.errors import InputError
from saganet.focal import focal_crop, mask_boxes


def literal_run_focal_crop(x: torch.Tensor, x_mask: torch.Tensor, min_w: int = 56, min_h: int = 56):
    """RN-18 step by step, one frame at a time (torchvision boxes + v2.Resize), returns the box too."""
    B, T, C, H, W = x.shape
    out_x, out_m, boxes = torch.zeros_like(x), torch.zeros_like(x_mask), []
    for b in range(B):
        fb = []
        for t in range(T):
            m = x_mask[b, t, 0]
            fb.append(torch.zeros(4) if m.numel() == 0 or m.sum() == 0 else masks_to_boxes(m[None])[0])
        w = max(max(float(bx[2] - bx[0]), min_w) for bx in fb)
        h = max(max(float(bx[3] - bx[1]), min_h) for bx in fb)
        X0 = Y0 = 10**9
        X1 = Y1 = -1
        for bx in fb:
            x0, y0 = round(float(bx[0])), round(float(bx[1]))
            x1, y1 = round(x0 + w), round(y0 + h)
            dx, dy = max(x1 - W, 0), max(y1 - H, 0)
            X0, Y0, X1, Y1 = min(X0, x0 - dx), min(Y0, y0 - dy), max(X1, x1 - dx), max(Y1, y1 - dy)
        resize = v2.Resize((H, W), antialias=True)
        for t in range(T):
            out_x[b, t] = resize(x[b, t, :, Y0:Y1, X0:X1])
            out_m[b, t] = resize(x_mask[b, t, :, Y0:Y1, X0:X1])
        boxes.append([X0, Y0, X1, Y1])
    return out_x, out_m, torch.tensor(boxes)


def make_clip(B, T, H, W, objs, seed=0):
    """objs[b][t] = (x0, y0, x1, y1) exclusive rectangle or None (empty frame)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(B, T, 3, H, W, generator=g) * 2 - 1
    m = torch.zeros(B, T, 1, H, W)
    for b in range(B):
        for t in range(T):
            if objs[b][t] is not None:
                x0, y0, x1, y1 = objs[b][t]
                m[b, t, 0, y0:y1, x0:x1] = 1.0
    return x, m


rect = st.tuples(st.integers(0, 95), st.integers(0, 95), st.integers(1, 96), st.integers(1, 96)).map(
    lambda r: (min(r[0], r[2] - 1), min(r[1], r[3] - 1), r[2], r[3])
)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(st.none(), rect), min_size=1, max_size=3), st.sampled_from([0.5, 1.0]))
def test_reference_mode_matches_literal_implementation(frames_objs, value):
    x, m = make_clip(1, len(frames_objs), 96, 96, [frames_objs])
    m = m * value
    ex, em, eb = literal_run_focal_crop(x, m)
    ax, am, ab = focal_crop(x, m, mode="reference", out_size=(96, 96))
    assert torch.equal(ab, eb)
    torch.testing.assert_close(ax, ex, rtol=0, atol=5e-5)
    torch.testing.assert_close(am, em, rtol=0, atol=5e-5)


def test_mask_boxes_matches_torchvision():
    g = torch.Generator().manual_seed(0)
    fg = torch.rand(3, 5, 20, 30, generator=g) > 0.97
    fg[1, 2] = False
    boxes, nonempty = mask_boxes(fg)
    for i in range(3):
        for t in range(5):
            if fg[i, t].any():
                assert boxes[i, t].tolist() == masks_to_boxes(fg[i, t][None].float())[0].long().tolist()
            else:
                assert boxes[i, t].tolist() == [0, 0, 0, 0] and not nonempty[i, t]


def test_reference_quirks_empty_frames():
    x, m = make_clip(2, 2, 224, 224, [[(150, 160, 190, 200), None], [None, None]])
    _, _, boxes = focal_crop(x, m, mode="reference")
    assert boxes[0].tolist() == [0, 0, 206, 216]  # the empty frame drags the window to the origin (RN-26)
    assert boxes[1].tolist() == [0, 0, 56, 56]  # all-empty clip -> top-left minimum window


def test_default_mode_fixes(caplog):
    x, m = make_clip(2, 2, 224, 224, [[(150, 160, 190, 200), None], [None, None]])
    m[0, 0, 0, 5, 5] = 0.2  # compression noise below the threshold
    with caplog.at_level(logging.WARNING):
        dx, dm, boxes = focal_crop(x, m, mode="default")
    assert boxes[0].tolist() == [150, 160, 206, 216]  # empty frame and noise ignored; anchored at the object
    assert boxes[1].tolist() == [0, 0, 224, 224] and "empty in every frame" in caplog.text
    torch.testing.assert_close(dx[1], x[1])  # whole 224 frame passes through unchanged
    x0, y0, x1, y1 = boxes[0].tolist()
    binary = (m[0, :, :, y0:y1, x0:x1] >= 0.5).float()
    expected = torch.nn.functional.interpolate(binary, size=(224, 224), mode="bilinear", antialias=True)
    torch.testing.assert_close(dm[0], expected)  # the cropped mask is the binarised one


def test_full_frame_window_passes_through_unchanged():
    x, m = make_clip(1, 2, 224, 224, [[(0, 0, 224, 224), (0, 0, 224, 224)]])
    for mode in ("default", "tracking"):
        dx, dm, _ = focal_crop(x, m, mode=mode)
        assert torch.equal(dx, x) and torch.equal(dm, m)
    # RN-18: the reference window is one pixel short of a full-frame object (223 wide), so it resizes
    assert focal_crop(x, m, mode="reference")[2].tolist() == [[0, 0, 223, 223]]


@pytest.mark.parametrize("mode", ["reference", "default", "tracking"])
@pytest.mark.parametrize(
    "obj", [(0, 40, 10, 60), (54, 40, 64, 60), (20, 0, 40, 8), (20, 58, 40, 64), (58, 58, 64, 64), (0, 0, 3, 3)]
)
def test_objects_near_each_border_stay_inside(mode, obj):
    H = W = 64
    x, m = make_clip(1, 3, H, W, [[obj, obj, obj]])
    dx, dm, boxes = focal_crop(x, m, mode=mode, min_size=24, out_size=(32, 32))
    assert dx.shape == (1, 3, 3, 32, 32) and dm.shape == (1, 3, 1, 32, 32)
    b = boxes.view(-1, 4)
    assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= W).all() and (b[:, 3] <= H).all()
    assert ((b[:, 2] - b[:, 0]) >= 24).all() and ((b[:, 3] - b[:, 1]) >= 24).all()
    if mode != "reference":  # the whole object is inside the window
        x0, y0, x1, y1 = obj
        assert (b[:, 0] <= x0).all() and (b[:, 1] <= y0).all() and (b[:, 2] >= x1).all() and (b[:, 3] >= y1).all()


def test_tracking_mode_per_frame_windows():
    objs = [(5, 5, 15, 15), None, (40, 30, 50, 44)]
    x, m = make_clip(1, 3, 64, 64, [objs])
    dx, dm, boxes = focal_crop(x, m, mode="tracking", min_size=16, out_size=(16, 16))
    assert boxes.shape == (1, 3, 4)
    sizes = boxes[0, :, 2:] - boxes[0, :, :2]
    assert (sizes == sizes[0]).all() and sizes[0].tolist() == [16, 16]  # common size (w, h)
    assert boxes[0, 1].tolist() == boxes[0, 0].tolist()  # empty frame reuses the nearest window
    for t in range(3):
        x0, y0, x1, y1 = boxes[0, t].tolist()
        torch.testing.assert_close(dx[0, t], x[0, t, :, y0:y1, x0:x1])  # 16x16 window: no resize
    assert (boxes[0, 2, :2] <= torch.tensor([40, 30])).all() and (boxes[0, 2, 2:] >= torch.tensor([50, 44])).all()


def test_small_frames_cap_min_size_and_batch_items_independent():
    x, m = make_clip(2, 2, 40, 40, [[(2, 2, 6, 6)] * 2, [(30, 30, 39, 39)] * 2])
    dx, dm, boxes = focal_crop(x, m, mode="default", out_size=(40, 40))
    assert boxes.tolist() == [[0, 0, 40, 40], [0, 0, 40, 40]]
    dx1, _, b1 = focal_crop(x[1:], m[1:], mode="default", out_size=(40, 40))
    assert torch.equal(dx1, dx[1:]) and torch.equal(b1, boxes[1:])


def test_input_validation():
    with pytest.raises(InputError):
        focal_crop(torch.zeros(1, 2, 3, 8, 8), torch.zeros(1, 2, 3, 8, 8))
    with pytest.raises(InputError):
        focal_crop(torch.zeros(1, 2, 3, 8, 8), torch.zeros(1, 3, 1, 8, 8))
    with pytest.raises(ValueError):
        focal_crop(torch.zeros(1, 2, 3, 8, 8), torch.zeros(1, 2, 1, 8, 8), mode="nope")
