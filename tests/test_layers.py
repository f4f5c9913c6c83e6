"""The package's layers (README "Package map"): imports go downward only and no module imports itself back.

`lint-imports` (import-linter, configured in pyproject.toml) checks the layers contract; this test runs the
same contract and also looks for import cycles between individual modules, lazy imports included.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_layers_contract_is_kept():
    exe = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(exe), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 kept, 0 broken" in out.stdout


def _cycles(graph) -> list[list[str]]:
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    state: dict[str, int] = {}
    found: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        stack.append(m)
        for n in edges[m]:
            if state.get(n) == 1:
                found.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, stack)
        stack.pop()
        state[m] = 2

    for m in modules:
        if m not in state:
            visit(m, [])
    return found


def test_no_import_cycles():
    graph = grimp.build_graph("saganet")
    # a package's __init__ re-exporting its own submodules is not a cycle of ideas
    cycles = [c for c in _cycles(graph) if not any(a.startswith(b + ".") or b.startswith(a + ".")
                                                   for a, b in zip(c, c[1:]))]
    assert not cycles, cycles[:5]


def test_a_planted_upward_import_is_caught(tmp_path):
    """The check can fail: a core module importing the app breaks the contract."""
    import shutil

    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "saganet", src / "saganet", ignore=shutil.ignore_patterns("assets", "__pycache__"))
    (src / "saganet" / "focal.py").write_text((src / "saganet" / "focal.py").read_text()
                                              + "\nfrom saganet.app import cli  # noqa\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    exe = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(exe), "--config", str(tmp_path / "pyproject.toml")], cwd=tmp_path, capture_output=True,
                         text=True, env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"})
    assert out.returncode != 0 and "saganet.focal is not allowed to import saganet.app" in out.stdout
