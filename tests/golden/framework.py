"""Golden cases (format: ../shared/reference/README.md): discovery, tensors, tolerance, runner registry.

A runner takes a `GoldenCase` and returns `{output_name: tensor}`; it must produce every name in
`case.primary_outputs` and may produce diagnostic outputs. Runners register by `kind`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from safetensors.torch import load_file

from reference_data import golden_root  # $SAGANET_GOLDEN_DIR, else ../shared/reference/golden

__all__ = ["GoldenCase", "RUNNERS", "compare", "discover_cases", "golden_root", "runner"]


def discover_cases(root: Path | None = None) -> list[Path]:
    root = root or golden_root()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "case.json").is_file())


@dataclass
class GoldenCase:
    path: Path
    meta: dict = field(init=False)

    def __post_init__(self) -> None:
        self.meta = json.loads((self.path / "case.json").read_text())

    @property
    def name(self) -> str:
        return self.meta.get("case", self.path.name)

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def config(self) -> dict:
        return self.meta.get("config", {})

    @cached_property
    def weights(self) -> dict[str, torch.Tensor]:
        f = self.path / (self.meta.get("weights_file") or "weights.safetensors")
        return load_file(str(f)) if f.is_file() else {}

    @cached_property
    def inputs(self) -> dict[str, torch.Tensor]:
        raw = load_file(str(self.path / "inputs.safetensors"))
        return {k: (v.float() if v.is_floating_point() else v) for k, v in raw.items()}

    @cached_property
    def outputs(self) -> dict[str, torch.Tensor]:
        return load_file(str(self.path / "outputs.safetensors"))

    @property
    def primary_outputs(self) -> list[str]:
        return list(self.meta["primary_outputs"])

    def tolerance(self, name: str) -> dict:
        tol = self.meta.get("tolerance", {})
        best, best_len = tol.get("default", {"rtol": 1e-4, "atol": 1e-4}), -1
        for key, val in tol.get("overrides", {}).items():
            hit = (key == name) or (key.endswith("*") and name.startswith(key[:-1]))
            length = len(key) + (1 if key == name else 0)
            if hit and length > best_len:
                best, best_len = val, length
        return best


def compare(case: GoldenCase, name: str, actual: torch.Tensor) -> tuple[bool, float, str]:
    """Return (ok, worst_ratio, message) for one output under the case's tolerance policy."""
    expected = case.outputs[name]
    actual = actual.detach().cpu()
    if tuple(actual.shape) != tuple(expected.shape):
        return False, float("inf"), f"{name}: shape {tuple(actual.shape)} != expected {tuple(expected.shape)}"
    tol = case.tolerance(name)
    if tol.get("exact"):
        ok = torch.equal(actual.to(expected.dtype), expected)
        return ok, 0.0 if ok else float("inf"), f"{name}: exact {'ok' if ok else 'MISMATCH'}"
    e, a = expected.double(), actual.double()
    nan_e = torch.isnan(e)
    if not torch.equal(nan_e, torch.isnan(a)):
        return False, float("inf"), f"{name}: NaN pattern differs"
    bound = tol["atol"] + tol["rtol"] * e.abs()
    diff = (a - e).abs()
    ratio = torch.where(nan_e, torch.zeros_like(diff), diff / bound)
    worst = float(ratio.max()) if ratio.numel() else 0.0
    return worst <= 1.0, worst, f"{name}: worst ratio {worst:.3g} (rtol {tol['rtol']}, atol {tol['atol']})"


Runner = Callable[[GoldenCase], dict[str, torch.Tensor]]
RUNNERS: dict[str, Runner] = {}


def runner(kind: str) -> Callable[[Runner], Runner]:
    def deco(fn: Runner) -> Runner:
        RUNNERS[kind] = fn
        return fn

    return deco
