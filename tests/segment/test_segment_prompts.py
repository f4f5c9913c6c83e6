"""Prompt parsing and validation for `saganet segment`: syntax, object grouping, times -> frames, bad input."""

import math

import numpy as np
import pytest

from saganet.errors import InputError
from saganet.segment.prompts import (
    frame_at_time,
    parse_box,
    parse_point,
    parse_prompt_args,
    parse_text,
    validate_prompts,
)


def test_point_box_text_syntax():
    p = parse_point("12.5,40@1.5")
    assert (p.x, p.y, p.time, p.positive) == (12.5, 40.0, 1.5, True)
    assert parse_point(" 3,4 ", positive=False).time == 0.0 and not parse_point("3,4", False).positive
    b = parse_box("50,60,10,20@0.2")  # corners in any order
    assert b.xyxy == (10.0, 20.0, 50.0, 60.0) and b.time == 0.2
    assert parse_text("violin") .text == "violin" and parse_text("violin").time is None
    t = parse_text("red violin @ 2")
    assert (t.text, t.time) == ("red violin", 2.0)
    assert parse_text("me@home").text == "me@home"  # '@' not followed by a number stays in the text


@pytest.mark.parametrize("bad", ["1", "1,2,3", "a,b", "1,nan", "inf,2", "1,2@-1", "1,2@x", "1,2@nan", ",2"])
def test_bad_points_are_one_line_errors(bad):
    with pytest.raises(InputError) as e:
        parse_point(bad)
    assert "\n" not in str(e.value) and "--point" in str(e.value)


@pytest.mark.parametrize("bad", ["1,2,3", "1,2,1,9", "0,0,0.5,10", "1,2,3,nan"])
def test_bad_boxes(bad):
    with pytest.raises(InputError):
        parse_box(bad)


def test_objects_group_following_prompts():
    objs = parse_prompt_args([("object", "violin"), ("point", "1,2"), ("neg-point", "3,4@1"),
                              ("object", "cello"), ("box", "0,0,10,10@0.5"), ("point", "5,5@0.5")])
    assert [o.name for o in objs] == ["violin", "cello"]
    assert objs[0].labels == [1, 0] and len(objs[1].boxes) == 1 and objs[1].labels == [1]


def test_unnamed_objects_and_texts():
    objs = parse_prompt_args([("point", "1,2"), ("text", "drum"), ("text", "bell"), ("point", "4,4")])
    assert [o.name for o in objs] == ["object1", "drum", "bell", "object4"]
    assert objs[1].text.text == "drum" and not objs[1].points


@pytest.mark.parametrize("pairs, what", [
    ([("object", "a"), ("text", "x"), ("point", "1,1")], "mixes"),
    ([("object", "a"), ("point", "1,1"), ("text", "x")], "mixes"),
    ([("object", "a"), ("text", "x"), ("text", "y")], "two --text"),
    ([("neg_point", "1,1")], "no positive prompt"),
    ([("object", "a"), ("point", "1,1"), ("object", "a"), ("point", "2,2")], "named"),
    ([("object", "a/b"), ("point", "1,1")], "bad --object name"),
    ([("object", "  "), ("point", "1,1")], "empty --object"),
    ([("text", "  ")], "empty --text"),
    ([("polygon", "1,1")], "unknown prompt kind"),
])
def test_bad_grouping(pairs, what):
    with pytest.raises(InputError, match=what):
        parse_prompt_args(pairs)


def test_frame_at_time_picks_the_frame_on_screen():
    times = np.arange(10) / 25.0
    assert frame_at_time(times, 0.0) == 0
    assert frame_at_time(times, 1 / 25) == 1  # exactly on a timestamp: that frame despite rounding
    assert frame_at_time(times, 0.079) == 1 and frame_at_time(times, 0.08) == 2
    assert frame_at_time(times, 99.0) == 9
    vfr = np.array([0.0, 0.1, 0.15, 0.4])
    assert [frame_at_time(vfr, t) for t in (0.05, 0.12, 0.3, 0.41)] == [0, 1, 2, 3]


def test_validate_sets_frames_and_clips_boxes():
    times = np.arange(50) / 25.0
    objs = parse_prompt_args([("point", "10,20@1.0"), ("box", "-5,-5,30,30@0.5"), ("text", "drum@1.96")])
    v = validate_prompts(objs, (48, 64), times, 2.0)
    assert v[0].points[0].frame == 25 and v[0].frames == [12, 25]
    assert v[0].boxes[0].xyxy == (0.0, 0.0, 30.0, 30.0)
    assert v[1].text.frame == 49


@pytest.mark.parametrize("pairs, what", [
    ([("point", "64,10")], "outside the frame"),
    ([("point", "10,48")], "outside the frame"),
    ([("neg_point", "-1,3"), ("point", "1,1")], "outside the frame"),
    ([("box", "70,50,90,60")], "outside the frame"),
    ([("point", "1,1@2.0")], "clip lasts"),
    ([("text", "drum@5")], "clip lasts"),
])
def test_validate_bad_input(pairs, what):
    with pytest.raises(InputError, match=what) as e:
        validate_prompts(parse_prompt_args(pairs), (48, 64), np.arange(50) / 25.0, 2.0)
    assert "\n" not in str(e.value)


def test_no_prompts():
    with pytest.raises(InputError, match="no prompts"):
        validate_prompts([], (4, 4), [0.0], 1.0)


def test_to_dict_is_json_ready():
    import json

    v = validate_prompts(parse_prompt_args([("object", "v"), ("point", "1,2@0.5")]), (8, 8),
                         np.arange(25) / 25, 1.0)
    d = json.loads(json.dumps(v[0].to_dict()))
    assert d["points"][0]["frame"] == 12 and math.isclose(d["points"][0]["time"], 0.5)
