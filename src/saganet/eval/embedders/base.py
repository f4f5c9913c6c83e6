"""What every embedding model of the evaluation provides, and how its official weights load.

An `Embedder` turns one prepared mono waveform `(L,)` at its own `sample_rate` into named arrays
(embeddings, logits); `id` (name + weights) keys the per-file embedding cache. Official weights come
from `saganet.weights` (a `WeightFile` in `EVAL_WEIGHTS`, resolved into `$SAGANET_HOME/weights`, MD5
checked on download where the MD5 is published) and are loaded with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from saganet.errors import CheckpointError
from saganet.weights import WeightFile, resolve

log = logging.getLogger(__name__)

__all__ = ["Embedder", "EVAL_WEIGHTS", "load_state_dict_file", "resolve_eval_weights", "check_keys"]

# Official checkpoints of the evaluation models. MD5 None: not published by the authors (our sources),
# so only presence is checked; `saganet weights import` (issue 18) can record one.
EVAL_WEIGHTS: dict[str, WeightFile] = {f.name: f for f in (
    WeightFile("Cnn14_16k_mAP=0.438.pth", "https://zenodo.org/record/3987831/files/Cnn14_16k_mAP%3D0.438.pth",
               None, 327 * 1_000_000),
    WeightFile("vggish-10086976.pth",
               "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth",
               None, 288 * 1_000_000),
    WeightFile("synchformer_state_dict.pth",
               "https://github.com/hkchengrex/MMAudio/releases/download/v0.1/synchformer_state_dict.pth",
               "5b2f5594b0730f70e41e549b7c94390c", 907 * 1_000_000),
    WeightFile("imagebind_huge.pth", "https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth", None,
               4_800_000_000),
    WeightFile("passt-s-f128-p16-s10-ap.476-swa.pt",
               "https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt",
               None, 340 * 1_000_000),
)}


@runtime_checkable
class Embedder(Protocol):
    """One embedding model. `embed` takes a prepared waveform `(L,)` at `sample_rate` Hz."""

    name: str
    sample_rate: int

    @property
    def id(self) -> str: ...

    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]: ...


def resolve_eval_weights(name: str, offline: bool | None = None) -> Path:
    """Cached path of an evaluation checkpoint (downloaded unless offline)."""
    from saganet.weights import cache_dir, is_offline

    if (is_offline() if offline is None else offline) and not (cache_dir() / name).is_file():
        raise CheckpointError(f"evaluation weights {name} not found in {cache_dir()} and downloads are off: "
                              f"fetch {EVAL_WEIGHTS[name].url} into that folder, or run `saganet evaluate` "
                              "online once (or use --weights random to test the plumbing)")
    return resolve(name, offline=offline, registry=EVAL_WEIGHTS)


def load_state_dict_file(path: str | Path, key: str | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint (`torch.load(weights_only=True)`, or safetensors); `key` picks a sub-dict."""
    p = Path(path)
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(p))
        else:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot load {p}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    if key is not None and isinstance(sd, dict) and key in sd:
        sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{p} is not a state dict of tensors")
    return sd


def check_keys(module: torch.nn.Module, sd: dict[str, torch.Tensor], what: str, ignore_prefixes=()) -> None:
    """Strict key and shape check with a one-line `CheckpointError` naming the first differences."""
    own = module.state_dict()
    sd = {k: v for k, v in sd.items() if not k.startswith(tuple(ignore_prefixes))}
    missing = sorted(set(own) - set(sd))
    extra = sorted(set(sd) - set(own))
    bad = [k for k in own if k in sd and tuple(own[k].shape) != tuple(sd[k].shape)]
    if missing or extra or bad:
        raise CheckpointError(
            f"{what}: checkpoint does not match the model ({len(missing)} missing e.g. {missing[:2]}, "
            f"{len(extra)} unexpected e.g. {extra[:2]}, {len(bad)} wrong shape e.g. {bad[:2]})")
