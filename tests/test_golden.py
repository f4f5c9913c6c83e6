"""Run every golden case in $SAGANET_GOLDEN_DIR through the runner registered for its kind."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from golden import framework
from golden.framework import RUNNERS, GoldenCase, compare, discover_cases
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
