"""Fitting state dicts to modules (no file I/O): strict loading that names every missing, unexpected and
shape-mismatched key in one error, and prefix stripping. Reading files is `saganet.checkpoint`'s job."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from saganet.errors import CheckpointError


def preview_names(names: Iterable[str], n: int = 6) -> str:
    names = sorted(names)
    more = f" … (+{len(names) - n} more)" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def check_state_dict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str = "model") -> None:
    """Raise one CheckpointError listing missing, unexpected and shape-mismatched keys (by name)."""
    own = module.state_dict()
    missing = set(own) - set(state_dict)
    unexpected = set(state_dict) - set(own)
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)}≠{tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if tuple(own[k].shape) != tuple(state_dict[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing [{preview_names(missing)}]")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected [{preview_names(unexpected)}]")
    if mismatched:
        problems.append(f"{len(mismatched)} shape-mismatched [{preview_names(mismatched)}]")
    if problems:
        raise CheckpointError(
            f"checkpoint does not fit the {what}: " + "; ".join(problems)
            + " (is it the right variant/config?)"
        )


def load_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str = "model",
                assign: bool = False) -> None:
    """`load_state_dict(strict=True)` that reports every problem at once in a readable error.

    `assign=True` makes the module use the given tensors instead of copying into its own (a module built on
    the meta device then costs no memory of its own: one copy of the weights, not two)."""
    check_state_dict(module, state_dict, what)
    module.load_state_dict(state_dict, strict=True, assign=assign)


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Keep the keys that start with `prefix` and drop the prefix."""
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
