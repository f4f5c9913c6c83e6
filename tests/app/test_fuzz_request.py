"""Hypothesis fuzzing of the generate request at its three doors (the typed request, a batch line, the command
line) with NaN, infinities, huge and negative numbers, wrong types and junk text: the only outcomes are a
valid request or ONE-line `InputError` / exit 2, and a request that passes holds only finite, in-range values.
No model runs: the model loader is replaced by a sentinel that records that validation let the request through."""

from __future__ import annotations

import json
import math

import pytest
import torch
from app_media import TOY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saganet.app import generate as generate_module
from saganet.app.batch import Job, job_request
from saganet.app.cli import main
from saganet.app.generate import MAX_GAIN_DB, GenerateRequest
from saganet.errors import InputError, SaganetError
from saganet.io.masks import MaskSpec
from saganet.pipeline import MAX_CFG, MAX_SEED, MAX_STEPS, GenerationOptions

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# numbers as they come: finite, NaN, +-inf, huge, tiny, negative, and ints beyond 64 bits
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e308, -1e-320]),
                   st.integers(-(2**70), 2**70))
INTS = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([0, 1, MAX_STEPS, MAX_SEED, MAX_SEED + 1]))
JUNK = st.one_of(st.none(), st.booleans(), st.text(max_size=6), st.lists(st.integers(), max_size=2))
NUMBER_TEXT = st.one_of(FLOATS.map(repr), INTS.map(str), st.sampled_from(["nan", "-inf", "1e999", "0x10", "", "loud"]),
                        st.text(alphabet="0123456789.e-+naif", max_size=8))


class Reached(Exception):
    """Raised instead of loading a model: validation let the request through."""


@pytest.fixture()
def no_model(monkeypatch):
    def get(*a, **k):
        raise Reached

    monkeypatch.setattr(generate_module.ModelCache, "get", get)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def finite_in(x, low, high) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and low <= x <= high


def assert_valid(req: GenerateRequest) -> None:
    o = req.options
    assert isinstance(o.steps, int) and 1 <= o.steps <= MAX_STEPS
    assert isinstance(o.seed, int) and 0 <= o.seed <= MAX_SEED
    assert finite_in(o.cfg_strength, 0, MAX_CFG)
    assert finite_in(req.start, 0, math.inf)
    assert req.duration is None or (finite_in(req.duration, 0, math.inf) and req.duration > 0)
    assert all(finite_in(v, -MAX_GAIN_DB, MAX_GAIN_DB) for v in req.gains_db.values())


def one_line(e: SaganetError) -> None:
    assert str(e).strip() and "\n" not in str(e)


@FUZZ
@given(start=st.one_of(FLOATS, JUNK), duration=st.one_of(st.none(), FLOATS, JUNK), cfg=st.one_of(FLOATS, JUNK),
       steps=st.one_of(INTS, JUNK, FLOATS), seed=st.one_of(INTS, JUNK), gain=st.one_of(FLOATS, JUNK),
       device=st.sampled_from(["cpu", "cuda", "cuda:7", "mps", "bogus", "", "cpu:0", "meta"]))
def test_fuzz_request_validate(start, duration, cfg, steps, seed, gain, device, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    req = GenerateRequest(video="v.mp4", output="out", masks=[MaskSpec("m.mp4", name="a")], variant="toy",
                          options=GenerationOptions(cfg_strength=cfg, steps=steps, seed=seed), start=start,
                          duration=duration, gains_db={"a": gain}, device=device)
    try:
        req.validate()
    except SaganetError as e:  # InputError, or the registry's unknown variant
        one_line(e)
        return
    assert_valid(req)
    assert device.startswith("cpu")


@FUZZ
@given(line=st.one_of(
    st.dictionaries(st.sampled_from(["seed", "steps", "cfg", "start", "duration", "sampler", "variant", "video",
                                     "masks", "names", "selects", "output", "prompt"]),
                    st.one_of(FLOATS, INTS, JUNK, NUMBER_TEXT), max_size=5),
    JUNK))
def test_fuzz_batch_line(line, tmp_path_factory, monkeypatch):
    """A batch line through the same path as the command line: only a valid request or a one-line InputError."""
    from saganet.app.batch import _job_from_dict
    from saganet.app.cli import base_request, build_parser

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    d = tmp_path_factory.mktemp("fuzz_line")
    base = base_request(build_parser().parse_args(["generate", "--variant", "toy", "-o", str(d / "o")]))
    if isinstance(line, dict):
        line = {"video": "v.mp4", "masks": ["m.mp4"], **line}
    json.dumps(line)  # it is a JSON value
    try:
        job = _job_from_dict(line, 0, d / "o", d)
        req = job_request(base, job)
    except SaganetError as e:  # InputError, or the registry's unknown variant
        one_line(e)
        return
    assert isinstance(job, Job)
    assert_valid(req)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(["--cfg", "--steps", "--seed", "--start", "--duration", "--gain"]), value=NUMBER_TEXT)
def test_fuzz_command_line_numbers(flag, value, toy_media, tmp_path_factory, capsys, no_model):
    out = tmp_path_factory.mktemp("fuzz_cli") / "o"
    if flag == "--gain":
        value = f"mask_0={value}"
    argv = ["generate", str(toy_media["video"]), "--mask", str(toy_media["masks"][0]), *TOY, "-o", str(out),
            f"{flag}={value}"]
    capsys.readouterr()
    try:
        code = main(argv)
    except Reached:  # valid: it got as far as loading the model
        assert not out.exists() or not any(out.iterdir())
        return
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("saganet: error: ") and "Traceback" not in err, err
    assert not out.exists() or not any(out.iterdir())


@FUZZ
@given(lines=st.lists(st.one_of(st.text(max_size=40), st.builds(json.dumps, st.recursive(
    st.none() | st.booleans() | FLOATS | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(
        ["video", "masks", "mask", "names", "objects", "gains", "seed", "cfg", "output"]), c, max_size=4),
    max_leaves=8))), min_size=1, max_size=5), suffix=st.sampled_from([".jsonl", ".csv"]))
def test_fuzz_jobs_file(lines, suffix, tmp_path_factory):
    """Any jobs file: a one-line InputError for the whole file, or one Job per line, each valid or with its error."""
    from saganet.app.batch import read_jobs

    d = tmp_path_factory.mktemp("fuzz_jobs")
    f = d / f"jobs{suffix}"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    try:
        jobs = read_jobs(f, d / "out")
    except InputError as e:
        one_line(e)
        return
    for job in jobs:
        assert isinstance(job, Job)
        if job.error is not None:
            assert "\n" not in job.error
        else:
            assert isinstance(job.video, str) and all(isinstance(m, str) for m in job.masks)
