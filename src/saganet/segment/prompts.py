"""Prompts for `saganet segment`: points, negative points, boxes and text, grouped into objects.

Command-line syntax (coordinates in the DISPLAYED video's pixels, i.e. after rotation metadata, origin at
the top-left corner, x to the right, y down; `@T` is a time in seconds, default 0):

    --object NAME                 start a new object; the prompts after it belong to it
    --point X,Y[@T]               positive click
    --neg-point X,Y[@T]           negative click (not this)
    --box X0,Y0,X1,Y1[@T]         box around the object
    --text "violin"[@T]           text: grounded detection (one object per match, up to --max-objects)

Prompts before the first `--object` go to an object named after its text, or `object1`, `object2`, ...
An object holds either visual prompts (points / boxes, on one or several frames) or one text prompt.

`parse_prompt_args([("point", "10,20@1.5"), ...])` turns the ordered (kind, value) pairs that argparse
collects into `ObjectPrompt`s; `validate_prompts` checks them against a video's size and duration and maps
every time to a frame index (`frame_at_time`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from saganet.errors import InputError

__all__ = [
    "Point",
    "Box",
    "TextPrompt",
    "ObjectPrompt",
    "PROMPT_KINDS",
    "parse_point",
    "parse_box",
    "parse_text",
    "parse_prompt_args",
    "validate_prompts",
    "frame_at_time",
    "time_of_frame",
]

PROMPT_KINDS = ("object", "point", "neg_point", "box", "text")
TIME_EPS = 1e-4  # a time that lands exactly on a frame's timestamp picks that frame despite rounding


@dataclass(frozen=True)
class Point:
    """A click at pixel (x, y) of the displayed frame at `time` seconds; `positive=False` is a negative click."""

    x: float
    y: float
    time: float = 0.0
    positive: bool = True
    frame: int | None = None  # set by `validate_prompts`


@dataclass(frozen=True)
class Box:
    """A box (x0, y0) - (x1, y1) in displayed pixels, x0 < x1, y0 < y1, at `time` seconds."""

    x0: float
    y0: float
    x1: float
    y1: float
    time: float = 0.0
    frame: int | None = None

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass(frozen=True)
class TextPrompt:
    """A text to ground; `time` None lets the segmenter pick key frames."""

    text: str
    time: float | None = None
    frame: int | None = None


@dataclass
class ObjectPrompt:
    """All prompts of one object. `points` holds positive and negative clicks (see `Point.positive`)."""

    name: str
    points: list[Point] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    text: TextPrompt | None = None

    @property
    def labels(self) -> list[int]:
        """SAM point labels: 1 positive, 0 negative."""
        return [1 if p.positive else 0 for p in self.points]

    @property
    def frames(self) -> list[int]:
        """Sorted frame indices that carry a visual prompt (after `validate_prompts`)."""
        fs = {p.frame for p in self.points} | {b.frame for b in self.boxes}
        return sorted(f for f in fs if f is not None)

    @property
    def positive_frames(self) -> list[int]:
        """Sorted frame indices with a positive click or a box."""
        fs = {p.frame for p in self.points if p.positive} | {b.frame for b in self.boxes}
        return sorted(f for f in fs if f is not None)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "points": [{"x": p.x, "y": p.y, "time": p.time, "frame": p.frame, "positive": p.positive}
                       for p in self.points],
            "boxes": [{"xyxy": list(b.xyxy), "time": b.time, "frame": b.frame} for b in self.boxes],
            "text": None if self.text is None else {"text": self.text.text, "time": self.text.time,
                                                    "frame": self.text.frame},
        }


# ------------------------------------------------------------------------------------------------ parsing

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf|infinity)"


def _float(text: str, what: str, example: str) -> float:
    try:
        v = float(text)
    except ValueError as e:
        raise InputError(f"bad {what} '{text}': not a number; use e.g. {example}") from e
    if not math.isfinite(v):
        raise InputError(f"bad {what} '{text}': must be a finite number; use e.g. {example}")
    return v


def _split_time(value: str, what: str, example: str) -> tuple[str, float | None]:
    """'X,Y@T' -> ('X,Y', T); 'X,Y' -> ('X,Y', None)."""
    if "@" not in value:
        return value, None
    body, _, t = value.rpartition("@")
    time = _float(t.strip(), f"time in {what} '{value}'", example)
    if time < 0:
        raise InputError(f"bad time {time:g} s in {what} '{value}': times are seconds from the start, >= 0")
    return body, time


def _numbers(body: str, n: int, what: str, value: str, example: str) -> list[float]:
    parts = [p.strip() for p in body.split(",")]
    if len(parts) != n or any(not p for p in parts):
        raise InputError(f"bad {what} '{value}': expected {n} comma-separated numbers, e.g. {example}")
    return [_float(p, f"{what} coordinate", example) for p in parts]


def parse_point(value: str, positive: bool = True) -> Point:
    """'X,Y' or 'X,Y@T' -> Point (pixels, seconds)."""
    what = "--point" if positive else "--neg-point"
    ex = f"{what} 120,80@1.5"
    body, t = _split_time(str(value).strip(), what, ex)
    x, y = _numbers(body, 2, what, value, ex)
    return Point(x, y, 0.0 if t is None else t, positive)


def parse_box(value: str) -> Box:
    """'X0,Y0,X1,Y1' or with '@T' -> Box; corners may come in any order but the box must have an area."""
    ex = "--box 10,20,200,180@0.5"
    body, t = _split_time(str(value).strip(), "--box", ex)
    x0, y0, x1, y1 = _numbers(body, 4, "--box", value, ex)
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise InputError(f"bad --box '{value}': it has no area (need x1 > x0 and y1 > y0 by at least a pixel)")
    return Box(x0, y0, x1, y1, 0.0 if t is None else t)


def parse_text(value: str) -> TextPrompt:
    """'violin' or 'violin@2.0' (a trailing @number is a time; any other '@' stays in the text)."""
    v = str(value).strip()
    t = None
    m = re.fullmatch(rf"(.*?)@\s*({_NUM})\s*", v, flags=re.IGNORECASE)
    if m:
        v, t = m.group(1).strip(), _float(m.group(2), f"time in --text '{value}'", '--text "violin@1.0"')
        if t < 0:
            raise InputError(f"bad time {t:g} s in --text '{value}': times are seconds from the start, >= 0")
    if not v:
        raise InputError('empty --text: name the object, e.g. --text "violin"')
    return TextPrompt(v, t)


def _check_name(name: str) -> str:
    n = str(name).strip()
    if not n:
        raise InputError("empty --object name: give each object a name, e.g. --object violin")
    if not re.fullmatch(r"[\w.+-]+( [\w.+-]+)*", n) or len(n) > 64:
        raise InputError(f"bad --object name '{name}': use letters, digits, '_', '-', '.', '+' (it names "
                         "the output files), at most 64 characters")
    return n


def parse_prompt_args(pairs: Iterable[tuple[str, str]]) -> list[ObjectPrompt]:
    """Ordered (kind, value) pairs (kind in PROMPT_KINDS) -> objects.

    `object` starts a new named object; other prompts go to the current object (an unnamed one is made for
    prompts before the first `object`). A text prompt cannot share an object with points or boxes, and an
    object holds at most one text. Unnamed objects are called after their text or `object<i>`.
    """
    objects: list[ObjectPrompt] = []
    named: list[bool] = []
    current: ObjectPrompt | None = None
    for kind, value in pairs:
        kind = kind.replace("-", "_")
        if kind not in PROMPT_KINDS:
            raise InputError(f"unknown prompt kind '{kind}': use one of {', '.join(PROMPT_KINDS)}")
        if kind == "object":
            current = ObjectPrompt(_check_name(value))
            objects.append(current)
            named.append(True)
            continue
        if current is None or (kind == "text" and (current.text is not None or current.points or current.boxes)
                               and not named[-1]):
            current = ObjectPrompt("")
            objects.append(current)
            named.append(False)
        if kind == "text":
            if current.text is not None:
                raise InputError(f"object '{current.name}' has two --text prompts: start another object with "
                                 "--object NAME")
            if current.points or current.boxes:
                raise InputError(f"object '{current.name}' mixes --text with points/boxes: give text and "
                                 "clicks to different objects (--object NAME)")
            current.text = parse_text(value)
            continue
        if current.text is not None:
            if named[-1]:
                raise InputError(f"object '{current.name}' mixes --text with points/boxes: start another "
                                 "object with --object NAME before the clicks")
            current = ObjectPrompt("")  # clicks after an unnamed text prompt: a new unnamed object
            objects.append(current)
            named.append(False)
        if kind == "point":
            current.points.append(parse_point(value, True))
        elif kind == "neg_point":
            current.points.append(parse_point(value, False))
        else:
            current.boxes.append(parse_box(value))
    for i, (obj, has_name) in enumerate(zip(objects, named)):
        if not has_name:
            obj.name = _check_name(obj.text.text if obj.text is not None else f"object{i + 1}")
        if obj.text is None and not obj.boxes and not any(p.positive for p in obj.points):
            raise InputError(f"object '{obj.name}' has no positive prompt: add a --point, --box or --text "
                             "(negative points alone do not say what the object is)")
    names = [o.name for o in objects]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"several objects are named {dup}: give each object its own name with --object")
    return objects


# ---------------------------------------------------------------------------------- times and validation


def frame_at_time(times: Sequence[float] | np.ndarray, t: float) -> int:
    """Index of the frame shown at time `t` (the last frame whose timestamp is <= t)."""
    ts = np.asarray(times, np.float64)
    return int(np.clip(np.searchsorted(ts, t + TIME_EPS, side="right") - 1, 0, len(ts) - 1))


def time_of_frame(times: Sequence[float] | np.ndarray, index: int) -> float:
    return float(np.asarray(times, np.float64)[index])


def _check_time(t: float, end: float, what: str) -> None:
    if t < 0 or t >= end - TIME_EPS:
        raise InputError(f"{what} is at {t:g} s but the clip lasts {end:.3f} s: use a time in [0, {end:.3f})")


def validate_prompts(objects: list[ObjectPrompt], size: tuple[int, int], times: Sequence[float] | np.ndarray,
                     end: float) -> list[ObjectPrompt]:
    """Check prompts against a video of display `size` (H, W), frame `times` (s) and duration `end` (s).

    Returns new objects whose prompts carry their frame index. Points must lie inside the frame
    (0 <= x < W, 0 <= y < H); boxes are clipped to the frame and must keep an area; times must be in
    [0, end). Errors are one-line `InputError`s.
    """
    if not objects:
        raise InputError("no prompts: give at least one --point, --box or --text")
    H, W = size
    out = []
    for obj in objects:
        pts, boxes, text = [], [], obj.text
        for p in obj.points:
            what = f"{'point' if p.positive else 'negative point'} {p.x:g},{p.y:g} of '{obj.name}'"
            if not (0 <= p.x < W and 0 <= p.y < H):
                raise InputError(f"{what} is outside the frame: the video is {W}x{H} (displayed, after "
                                 f"rotation); use 0 <= x < {W} and 0 <= y < {H}")
            _check_time(p.time, end, what)
            pts.append(Point(p.x, p.y, p.time, p.positive, frame_at_time(times, p.time)))
        for b in obj.boxes:
            what = f"box {b.x0:g},{b.y0:g},{b.x1:g},{b.y1:g} of '{obj.name}'"
            x0, y0, x1, y1 = max(b.x0, 0.0), max(b.y0, 0.0), min(b.x1, float(W)), min(b.y1, float(H))
            if x1 - x0 < 1 or y1 - y0 < 1:
                raise InputError(f"{what} is outside the frame: the video is {W}x{H} (displayed, after rotation)")
            _check_time(b.time, end, what)
            boxes.append(Box(x0, y0, x1, y1, b.time, frame_at_time(times, b.time)))
        if text is not None and text.time is not None:
            _check_time(text.time, end, f"text '{text.text}'")
            text = TextPrompt(text.text, text.time, frame_at_time(times, text.time))
        out.append(ObjectPrompt(obj.name, pts, boxes, text))
    return out
