"""Safe checkpoint reading (.pth with weights_only, .safetensors) and strict loading with one clear error."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from saganet.errors import CheckpointError


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint file safely: safetensors, or a pickle restricted to tensors (`weights_only=True`)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (run `saganet weights download` or pass the right path)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device=str(map_location))
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt file, truncated download, unsafe pickle
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}".splitlines()[0]) from e
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, expected a dict of tensors")
    return dict(obj)


def _preview(names: Iterable[str], n: int = 6) -> str:
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
        problems.append(f"{len(missing)} missing [{_preview(missing)}]")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected [{_preview(unexpected)}]")
    if mismatched:
        problems.append(f"{len(mismatched)} shape-mismatched [{_preview(mismatched)}]")
    if problems:
        raise CheckpointError(
            f"checkpoint does not fit the {what}: " + "; ".join(problems)
            + " (is it the right variant/config?)"
        )


def load_strict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], what: str = "model") -> None:
    """`load_state_dict(strict=True)` that reports every problem at once in a readable error."""
    check_state_dict(module, state_dict, what)
    module.load_state_dict(state_dict, strict=True)


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Keep the keys that start with `prefix` and drop the prefix."""
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
