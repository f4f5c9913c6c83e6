"""Run every golden case in $SAGANET_GOLDEN_DIR through the runner registered for its kind."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
import torch

from golden import framework
from golden.framework import RUNNERS, GoldenCase, compare, discover_cases
from golden.runners_dit import euler_cfg_outputs
from reference_data import GOLDEN_ENV, require_reference_data

# Import every runners_* module so that they register their kinds.
for _m in pkgutil.iter_modules([str(framework.Path(framework.__file__).parent)]):
    if _m.name.startswith("runners_"):
        importlib.import_module(f"golden.{_m.name}")

CASES = discover_cases()


def test_golden_dir_has_cases():
    require_reference_data(framework.golden_root(), GOLDEN_ENV)
    assert CASES, f"no golden case found in {framework.golden_root()} (set {GOLDEN_ENV})"


# Without cases, one placeholder keeps the test visible: it skips (or fails in CI) with the reason.
@pytest.mark.parametrize("case_dir", CASES or [None], ids=[p.name for p in CASES] or ["no-golden-cases"])
def test_golden_case(case_dir):
    if case_dir is None:
        require_reference_data(framework.golden_root(), GOLDEN_ENV)
        pytest.fail(f"no golden case found in {framework.golden_root()}")
    case = GoldenCase(case_dir)
    assert case.kind in RUNNERS, f"case {case.name}: no runner for kind '{case.kind}' yet"
    results = RUNNERS[case.kind](case)
    report, failures = [], []
    for name in case.primary_outputs:
        assert name in results, f"case {case.name}: runner did not produce primary output '{name}'"
    for name, actual in results.items():
        if name not in case.outputs:
            continue
        ok, _, msg = compare(case, name, actual)
        report.append(msg)
        if not ok and (name in case.primary_outputs or not name.startswith(("debug.", "aux.", "wn.", "wn_removed."))):
            failures.append(msg)
        elif not ok:
            failures.append("diagnostic " + msg)
    print(f"\n[{case.name}]\n  " + "\n  ".join(report))
    assert not failures, f"case {case.name}:\n  " + "\n  ".join(failures)


EULER_CASES = [p for p in CASES if GoldenCase(p).kind == "euler_cfg_sample"]


@pytest.mark.parametrize("case_dir", EULER_CASES or [None], ids=[p.name for p in EULER_CASES] or ["no-euler-case"])
def test_batched_cfg_equals_unbatched(case_dir):
    """The golden Euler case runs the two CFG branches as two calls (like the reference); the pipeline runs them
    as one batch of 2B. Both must give the same sampling trajectory at the case's tolerance: the batched run
    meets every golden output, and agrees with the unbatched run within the same tolerance."""
    if case_dir is None:
        require_reference_data(framework.golden_root(), GOLDEN_ENV)
        pytest.fail(f"no euler_cfg_sample case in {framework.golden_root()}")
    case = GoldenCase(case_dir)
    batched = euler_cfg_outputs(case, batched=True)
    unbatched = euler_cfg_outputs(case, batched=False)
    guided = [n for n in batched if n.startswith(("cfg.", "cfg_negtext.")) and n in case.outputs]
    assert any(".velocity." in n for n in guided) and "cfg.x1" in guided
    report, failures = [], []
    for name in guided:
        ok, _, msg = compare(case, name, batched[name])
        tol = case.tolerance(name)
        diff = (batched[name] - unbatched[name]).abs().max().item()
        agree = torch.allclose(batched[name], unbatched[name], rtol=tol["rtol"], atol=tol["atol"])
        report.append(f"{msg}; |batched - unbatched| max {diff:.3g}")
        if not (ok and agree):
            failures.append(report[-1])
    print(f"\n[{case.name} batched]\n  " + "\n  ".join(report))
    assert not failures, "\n  ".join(failures)
