"""Metric families: one protocol, one registry.

A metric family turns a list of `EvalItem`s (a generated file, its reference, optional video, prompt,
scene and free metadata) into a `FamilyResult`: set-level metrics, per-item rows, and the items it
skipped with the reason. The evaluation runner knows families only through this registry, so layers
above `saganet.eval` (the toy world) add theirs with `register_family` without `eval` importing them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["EvalItem", "FamilyResult", "MetricFamily", "Context", "register_family", "family_names", "make_family",
           "FAMILIES"]


@dataclass
class EvalItem:
    """One generated stem to score. `scene`: items of one multi-object scene share it."""

    name: str
    gen: Path
    ref: Path | None = None
    video: Path | None = None
    mask: Path | None = None
    prompt: str = ""
    scene: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass
class FamilyResult:
    metrics: dict[str, float] = field(default_factory=dict)
    rows: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Context(Protocol):
    """What a family gets from the runner (`saganet.eval.runner.EvalContext`)."""

    opts: Any  # EvalOptions

    def audio(self, path: Path, sr: int) -> np.ndarray: ...

    def embedder(self, kind: str) -> Any: ...

    def embed(self, kind: str, path: Path) -> dict[str, np.ndarray]: ...

    def cached(self, model_id: str, path: Path, compute) -> dict[str, np.ndarray]: ...

    def file_hash(self, path: Path) -> str: ...


@runtime_checkable
class MetricFamily(Protocol):
    """`needs`: the embedding models (`saganet.eval.embedders` keys) the family uses, checked before work."""

    name: str
    description: str
    needs: tuple[str, ...]

    def compute(self, items: list[EvalItem], ctx: Context) -> FamilyResult: ...


FAMILIES: dict[str, Callable[[], MetricFamily]] = {}


def register_family(name: str, factory: Callable[[], MetricFamily], replace: bool = False) -> None:
    """Add a family factory under `name` (a second registration of a name is an error unless `replace`)."""
    if name in FAMILIES and not replace and FAMILIES[name] is not factory:
        raise ValueError(f"metric family {name!r} is already registered")
    FAMILIES[name] = factory


def family_names() -> list[str]:
    return sorted(FAMILIES)


def make_family(name: str) -> MetricFamily:
    from saganet.errors import InputError

    if name not in FAMILIES:
        raise InputError(f"unknown metric family '{name}': choose from {', '.join(family_names())}")
    return FAMILIES[name]()
