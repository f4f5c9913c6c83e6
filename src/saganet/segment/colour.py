"""A non-learned colour segmenter for flat-coloured scenes (the toy world, simple graphics).

On a prompted frame the object is the connected region of pixels whose colour is close (max channel
difference <= `tolerance`) to the colour under the click (median of a 3x3 patch); a box takes the largest
region inside it that differs from the box's surroundings; a text prompt takes the regions whose colour
matches a named colour of the `palette` (the caller passes the class colours it knows, e.g. the toy
world's; a colour lightened towards white, as toy objects flash when they strike, still matches). Negative
clicks remove pixels whose colour is closer to the clicked colour than to the object's.

Tracking goes frame to frame, forwards and backwards from every prompted frame (each frame takes the track
of the nearest prompted frame): the pixels of the previous mask (position) whose colour is the previous colour, lightened
towards or darkened away from white (a strike flash in the toy world), are the seeds; their median colour is
the new reference colour, and the region is grown again from the seeds. A track that jumps in size or
spreads over the background is lost; it is picked up again where a region of the last good colour and size
shows up near the last position.

A click whose region covers most of the frame, or a large part and three of its borders, is on the
background: that is an `InputError`.

Written by hand: it is a few array operations (scipy.ndimage labelling and erosion); no library offers this
exact flat-colour tracker, and a learned one needs downloads that the toy world, the demo and tests avoid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from saganet.errors import InputError
from saganet.segment.frames import VideoFrames
from saganet.segment.prompts import ObjectPrompt
from saganet.segment.result import ObjectTrack

log = logging.getLogger(__name__)

__all__ = ["ColourConfig", "ColourSegmenter"]

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class ColourConfig:
    tolerance: float = 40.0  # max channel difference to the reference colour (0-255)
    background_fraction: float = 0.6  # a clicked region larger than this fraction of the frame is background
    border_fraction: float = 0.3  # ... or larger than this and touching >= 3 frame borders
    max_growth: float = 3.0  # area ratio between consecutive frames beyond which a track is lost
    min_area: int = 6  # pixels: smaller text matches are ignored
    max_whiten: float = 0.8  # a colour lightened up to this fraction towards white still matches
    unwhiten: float = 2.0  # ... and one darkened away from white by up to this (a flash fading)


def _dist(img: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Max channel |difference|: (H, W, 3) uint8, (3,) -> (H, W) float32."""
    return np.abs(img.astype(np.float32) - colour.astype(np.float32)).max(-1)


def _whitened_dist(img: np.ndarray, colour: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Distance to the nearest colour c + a (255 - c), lo <= a <= hi: c lightened (a > 0) or darkened away
    from white (a < 0), the way a flat object's colour changes when it flashes."""
    x = img.astype(np.float32) - colour.astype(np.float32)
    d = 255.0 - colour.astype(np.float32)
    a = np.clip((x @ d) / max(float(d @ d), 1e-6), lo, hi)
    return np.abs(x - a[..., None] * d).max(-1)


def _patch_colour(img: np.ndarray, x: float, y: float) -> np.ndarray:
    H, W = img.shape[:2]
    xi, yi = min(int(x), W - 1), min(int(y), H - 1)
    patch = img[max(0, yi - 1):yi + 2, max(0, xi - 1):xi + 2].reshape(-1, 3)
    return np.median(patch, axis=0)


class ColourSegmenter:
    """`segment(frames, objects)` -> one `ObjectTrack` per object (several per matching text prompt)."""

    name = "color"
    model_id = "color"

    def __init__(self, palette: dict[str, RGB] | None = None, config: ColourConfig | None = None):
        self.palette = {k.lower(): np.asarray(v, np.float32) for k, v in (palette or {}).items()}
        self.cfg = config or ColourConfig()

    # ------------------------------------------------------------------------------------- one frame
    def _grow(self, img: np.ndarray, colour: np.ndarray, seeds: np.ndarray, negatives: list[np.ndarray]
              ) -> np.ndarray:
        """Connected regions of colour-close pixels that contain a seed: (H, W) bool."""
        d = _dist(img, colour)
        close = d <= self.cfg.tolerance
        for n in negatives:  # pixels closer to a "not this" colour than to the object's are out
            close &= d < _dist(img, n)
        labels, _ = ndimage.label(close)
        ids = np.unique(labels[seeds & close])
        ids = ids[ids > 0]
        return np.isin(labels, ids) if ids.size else np.zeros_like(close)

    def _is_background(self, m: np.ndarray) -> tuple[bool, float]:
        frac = float(m.mean())
        borders = int(m[0].any()) + int(m[-1].any()) + int(m[:, 0].any()) + int(m[:, -1].any())
        return frac > self.cfg.background_fraction or (frac > self.cfg.border_fraction and borders >= 3), frac

    def _initial(self, img: np.ndarray, obj: ObjectPrompt, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Mask and reference colour of `obj` on its prompted `frame` from its clicks and boxes there."""
        H, W = img.shape[:2]
        negatives = [_patch_colour(img, p.x, p.y) for p in obj.points if not p.positive and p.frame == frame]
        mask = np.zeros((H, W), bool)
        colours = []
        for p in obj.points:
            if not p.positive or p.frame != frame:
                continue
            c = _patch_colour(img, p.x, p.y)
            seeds = np.zeros((H, W), bool)
            seeds[min(int(p.y), H - 1), min(int(p.x), W - 1)] = True
            m = self._grow(img, c, seeds, negatives)
            bg, frac = self._is_background(m)
            if bg:
                raise InputError(f"the point {p.x:g},{p.y:g} at {p.time:g} s of '{obj.name}' is on the background "
                                 f"(its colour region covers {100 * frac:.0f}% of the frame): click on the object")
            mask |= m
            colours.append(c)
        for b in obj.boxes:
            if b.frame != frame:
                continue
            x0, y0, x1, y1 = int(b.x0), int(b.y0), int(np.ceil(b.x1)), int(np.ceil(b.y1))
            mx, my = max(2, (x1 - x0) // 10), max(2, (y1 - y0) // 10)  # ring just outside the box
            X0, Y0, X1, Y1 = max(0, x0 - mx), max(0, y0 - my), min(W, x1 + mx), min(H, y1 + my)
            ring = np.zeros((H, W), bool)
            ring[Y0:Y1, X0:X1] = True
            ring[y0:y1, x0:x1] = False
            if not ring.any():  # the box is the whole frame
                ring[[0, -1], :] = True
                ring[:, [0, -1]] = True
            surround = np.median(img[ring].reshape(-1, 3), axis=0)
            inside = np.zeros((H, W), bool)
            inside[y0:y1, x0:x1] = True
            cand = inside & (_dist(img, surround) > self.cfg.tolerance)
            labels, n = ndimage.label(cand)
            if n == 0:
                raise InputError(f"the box {b.x0:g},{b.y0:g},{b.x1:g},{b.y1:g} at {b.time:g} s of '{obj.name}' "
                                 "holds nothing that differs from its surroundings: draw it around the object")
            sizes = ndimage.sum_labels(cand, labels, index=np.arange(1, n + 1))
            comp = labels == (1 + int(np.argmax(sizes)))
            c = np.median(img[comp].reshape(-1, 3), axis=0)
            mask |= self._grow(img, c, comp, negatives)
            colours.append(c)
        for p in obj.points:  # a negative click inside the region removes its connected part
            if not p.positive and p.frame == frame and mask[min(int(p.y), H - 1), min(int(p.x), W - 1)]:
                labels, _ = ndimage.label(mask)
                mask &= labels != labels[min(int(p.y), H - 1), min(int(p.x), W - 1)]
        if not mask.any():
            raise InputError(f"the prompts of '{obj.name}' at frame {frame} select no pixels: click on the object")
        return mask, np.median(img[mask].reshape(-1, 3), axis=0) if mask.any() else np.mean(colours, 0)

    # ------------------------------------------------------------------------------------- tracking
    def _step(self, img: np.ndarray, prev: np.ndarray, colour: np.ndarray, negatives: list[np.ndarray]
              ) -> tuple[np.ndarray, float]:
        """Track mask `prev` (of colour `colour`) into frame `img`: (mask, score); empty mask: lost.

        Seeds are the pixels of `prev` (grown by a pixel) whose colour is `colour` lightened or darkened
        towards / away from white; their median is the object's colour in this frame.
        """
        near = ndimage.binary_dilation(prev)
        seeds = near & (_whitened_dist(img, colour, -self.cfg.unwhiten, self.cfg.max_whiten) <= self.cfg.tolerance)
        if not seeds.any():
            return np.zeros_like(prev), 0.0
        c = np.median(img[seeds].reshape(-1, 3), axis=0)
        seeds &= _dist(img, c) <= self.cfg.tolerance
        score = min(1.0, float((seeds & prev).sum()) / max(1, int(prev.sum())))
        m = self._grow(img, c, seeds, negatives)
        area, prev_area = int(m.sum()), max(1, int(prev.sum()))
        if area == 0 or area > self.cfg.max_growth * prev_area or self._is_background(m)[0]:
            return np.zeros_like(prev), 0.0
        return m, score

    def _reacquire(self, img: np.ndarray, colour: np.ndarray, area: int, centre: np.ndarray,
                   negatives: list[np.ndarray]) -> np.ndarray | None:
        """A region of the last good colour (or a lightened one) and a similar size, nearest to `centre`."""
        close = _whitened_dist(img, colour, -self.cfg.unwhiten, self.cfg.max_whiten) <= self.cfg.tolerance
        labels, n = ndimage.label(close)
        best, best_d = None, np.inf
        for i in range(1, n + 1):
            comp = labels == i
            a = int(comp.sum())
            if not (area / self.cfg.max_growth <= a <= area * self.cfg.max_growth) or self._is_background(comp)[0]:
                continue
            ys, xs = np.nonzero(comp)
            d = float(np.hypot(xs.mean() - centre[0], ys.mean() - centre[1]))
            if d < best_d:
                best, best_d = comp, d
        return best

    def _track(self, frames: np.ndarray, start: int, stop: int, mask: np.ndarray, out: np.ndarray,
               scores: np.ndarray, negatives: list[np.ndarray]) -> None:
        """Fill `out[t]` for t from `start` (exclusive, holds `mask`) towards `stop` (inclusive)."""
        step = 1 if stop >= start else -1
        prev = mask
        good = (np.median(frames[start][mask].reshape(-1, 3), axis=0), int(mask.sum()), _centre(mask))
        for t in range(start + step, stop + step, step):
            if prev.any():
                m, s = self._step(frames[t], prev, good[0], negatives)
            else:
                m, s = self._reacquire(frames[t], good[0], good[1], good[2], negatives), 0.5
                if m is None:
                    m, s = np.zeros_like(prev), 0.0
            out[t], scores[t] = m, s
            if m.any():
                good = (np.median(frames[t][m].reshape(-1, 3), axis=0), int(m.sum()), _centre(m))
            prev = m

    def _propagate(self, frames: np.ndarray, initial: dict[int, np.ndarray], negatives: list[np.ndarray]
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Masks (T, H, W) from initial masks on some frames: each frame follows its nearest prompted frame."""
        T = frames.shape[0]
        out = np.zeros(frames.shape[:3], bool)
        scores = np.zeros(T, np.float32)
        keys = sorted(initial)
        for i, f in enumerate(keys):
            out[f], scores[f] = initial[f], 1.0
            lo = 0 if i == 0 else (keys[i - 1] + f) // 2 + 1  # frames nearer to the previous prompt go to it
            hi = T - 1 if i == len(keys) - 1 else (f + keys[i + 1]) // 2
            self._track(frames, f, lo, initial[f], out, scores, negatives)
            self._track(frames, f, hi, initial[f], out, scores, negatives)
        return out, scores

    # ------------------------------------------------------------------------------------- text
    def _ground(self, img: np.ndarray, text: str, max_objects: int, min_score: float
                ) -> list[tuple[np.ndarray, float]]:
        key = text.strip().lower()
        if key not in self.palette:
            known = ", ".join(sorted(self.palette)) or "none"
            raise InputError(f"the colour segmenter does not know '{text}' (known names: {known}): use a "
                             "click (--point) or a learned segmenter (--segmenter sam2.1-tiny)")
        d = _whitened_dist(img, self.palette[key], 0.0, self.cfg.max_whiten)
        close = d <= self.cfg.tolerance
        labels, n = ndimage.label(close)
        found = []
        for i in range(1, n + 1):
            comp = labels == i
            if comp.sum() < self.cfg.min_area or self._is_background(comp)[0]:
                continue
            score = float(np.clip(1.0 - d[comp].mean() / self.cfg.tolerance, 0.0, 1.0))
            if score >= min_score:
                found.append((comp, score))
        found.sort(key=lambda cs: -int(cs[0].sum()))
        return found[:max_objects]

    # ------------------------------------------------------------------------------------- API
    def segment(self, frames: VideoFrames, objects: list[ObjectPrompt], max_objects: int = 5,
                min_score: float = 0.3) -> list[ObjectTrack]:
        """Objects (prompts validated, frame indices set) -> tracks; a text may give several objects."""
        tracks: list[ObjectTrack] = []
        fr = frames.frames
        for obj in objects:
            negatives = [_patch_colour(fr[p.frame], p.x, p.y) for p in obj.points if not p.positive]
            if obj.text is not None:
                f = obj.text.frame or 0
                found = self._ground(fr[f], obj.text.text, max_objects, min_score)
                if not found:
                    raise InputError(f"text '{obj.text.text}' finds nothing at {frames.times[f]:.2f} s (score >= "
                                     f"{min_score:g}): check the name, lower --min-score, or click on the object")
                for j, (m, s) in enumerate(found):
                    masks, scores = self._propagate(fr, {f: m}, negatives)
                    name = obj.name if len(found) == 1 else f"{obj.name}_{j + 1}"
                    tracks.append(ObjectTrack(name, masks, scores, obj, {"frame": f, "score": round(s, 4)}))
                continue
            initial = {f: self._initial(fr[f], obj, f)[0] for f in obj.positive_frames}
            masks, scores = self._propagate(fr, initial, negatives)
            tracks.append(ObjectTrack(obj.name, masks, scores, obj))
        return tracks


def _centre(m: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(m)
    return np.array([xs.mean(), ys.mean()]) if xs.size else np.zeros(2)
