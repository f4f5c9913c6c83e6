"""Safe checkpoint reading (.pth with weights_only, .safetensors) and strict loading with one clear error."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from saganet.errors import CheckpointError
from saganet.models.state_dict import check_state_dict, load_strict, preview_names, strip_prefix

__all__ = ["read_checkpoint", "check_state_dict", "load_strict", "strip_prefix", "preview_names"]


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu", mmap: bool = False) -> dict:
    """Read a checkpoint file safely: safetensors, or a pickle restricted to tensors (`weights_only=True`).

    `mmap=True` maps a (zip-format) pickle's tensors from the file instead of reading them into memory."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (run `saganet weights download` or pass the right path)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device=str(map_location))
        try:
            obj = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
        except RuntimeError:  # an old (non-zip) pickle cannot be mapped: read it
            if not mmap:
                raise
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt file, truncated download, unsafe pickle
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}".splitlines()[0]) from e
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, expected a dict of tensors")
    return dict(obj)
