"""Run every golden case in $SAGANET_GOLDEN_DIR through the runner registered for its kind."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from golden import framework
from golden.framework import RUNNERS, GoldenCase, compare, discover_cases

# Import every runners_* module so that they register their kinds.
for _m in pkgutil.iter_modules([str(framework.Path(framework.__file__).parent)]):
    if _m.name.startswith("runners_"):
        importlib.import_module(f"golden.{_m.name}")

CASES = discover_cases()


def test_golden_dir_has_cases():
    assert CASES, f"no golden case found in {framework.golden_root()} (set SAGANET_GOLDEN_DIR)"


@pytest.mark.parametrize("case_dir", CASES, ids=[p.name for p in CASES])
def test_golden_case(case_dir):
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
