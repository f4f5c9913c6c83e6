"""What a training run stores: the resumable training state and the exported weights.

Training state (`ckpt_last.pt`, `ckpt_step{N}.pt`; `torch.save`, read back with `weights_only=True`):
only the TRAINABLE tensors (never the frozen CLIP, VAE, vocoder or backbone: the recipe rebuilds
those from the same config), optimizer, scheduler, EMA, the RNG state of every rank, the step and the
data position, the log history and the top-k list. Anything else in the output folder that does not
look like this is refused with one `CheckpointError` line.

Exported weights (`weights_last.pth`, `weights_best.pth`): the reference's layout
`{"network": DiT state dict, "synchformer": sync encoder state dict, "lora": LoRA tensors}`, with the
DiT's LoRA MERGED into `qkv.weight` as the reference saves it (RN-7): the released-weights loader
(`load_dit_state_dict(..., lora_merged=True)`) and the reference code read it unchanged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from saganet.checkpoint import load_strict, read_checkpoint
from saganet.errors import CheckpointError
from saganet.io.atomic import atomic_path
from saganet.models.dit import load_dit_state_dict
from saganet.models.generator import AudioGenerator
from saganet.models.lora import lora_layers, lora_state_dict

STATE_FORMAT = "saganet-train-state"
STATE_VERSION = 1
STATE_KEYS = ("format", "version", "step", "epoch", "batch_in_epoch", "world_size", "trainables", "optimizer",
              "scheduler", "ema", "rng", "history", "top_k", "config")
# temp-file prefixes of atomic writes in a run folder (saganet.io.atomic: ".{stem}.XXXX{suffix}")
TEMP_PREFIXES = (".ckpt_", ".weights_", ".log.", ".train_config.", ".top_k.")


def save_state(state: dict, path: Path) -> None:
    """Write a training state atomically (a kill leaves the previous file, and at worst a hidden temp)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path) -> dict:
    """Read and check a training state; anything unexpected is one `CheckpointError` line."""
    fix = f"delete {path} (or choose another out_dir) to start over"
    try:
        state = read_checkpoint(path)
    except CheckpointError as e:
        raise CheckpointError(f"cannot resume from {path}: not a readable training state ({type(e.__cause__).__name__}"
                              f"); {fix}") from e
    missing = [k for k in STATE_KEYS if k not in state]
    if missing or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"cannot resume from {path}: not a saganet training state (missing "
                              f"{', '.join(missing[:4]) or 'format'}); {fix}")
    if int(state["version"]) != STATE_VERSION:
        raise CheckpointError(f"cannot resume from {path}: training state version {state['version']} "
                              f"(this saganet writes {STATE_VERSION}); {fix}")
    if not isinstance(state["trainables"], Mapping) or not isinstance(state["rng"], list):
        raise CheckpointError(f"cannot resume from {path}: damaged training state; {fix}")
    return state


def check_trainables(saved: Mapping[str, torch.Tensor], params: dict[str, nn.Parameter], path: Path) -> None:
    """The saved trainables must be exactly the current ones (same names and shapes)."""
    fix = "it was made with another model or training mode: delete it or choose another out_dir"
    if set(saved) != set(params):
        extra, missing = sorted(set(saved) - set(params)), sorted(set(params) - set(saved))
        raise CheckpointError(f"cannot resume from {path}: trainable weights differ (missing {missing[:3]}, "
                              f"unexpected {extra[:3]}); {fix}")
    for k, p in params.items():
        v = saved[k]
        if not isinstance(v, torch.Tensor) or v.shape != p.shape:
            raise CheckpointError(f"cannot resume from {path}: {k} has shape "
                                  f"{tuple(getattr(v, 'shape', ()))}, the model {tuple(p.shape)}; {fix}")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"cannot resume from {path}: {k} holds NaN/inf; {fix}")


def clean_stale_temps(out: Path) -> list[Path]:
    """Remove hidden temp files that killed runs left behind (atomic writes never finished)."""
    removed = []
    if out.is_dir():
        for p in out.iterdir():
            if p.is_file() and p.name.startswith(TEMP_PREFIXES):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


# ----------------------------------------------------------------------------------------------- export
@torch.no_grad()
def merged_dit_state_dict(dit: nn.Module) -> dict[str, torch.Tensor]:
    """The DiT's state dict with every LoRA layer's ΔW merged into `qkv.weight` (the model is not changed)."""
    sd = {k: v.detach().clone() for k, v in dit.state_dict().items()}
    for name, layer in lora_layers(dit):
        if not layer.merged:
            sd[f"{name}.weight"] = sd[f"{name}.weight"] + layer.delta_weight().to(sd[f"{name}.weight"].dtype)
    return sd


def exported_weights(model: AudioGenerator) -> dict[str, dict[str, torch.Tensor]]:
    """`{"network", "synchformer", "lora"}` (reference layout, CPU float32 tensors)."""
    def cpu(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
                for k, v in sd.items()}

    return {"network": cpu(merged_dit_state_dict(model.dit)),
            "synchformer": cpu(model.sync_encoder.model.state_dict()),
            "lora": cpu(lora_state_dict(model.dit))}


def export_weights(model: AudioGenerator, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write `exported_weights(model)` atomically to `path` (.pth), and `meta` next to it as JSON."""
    path = Path(path)
    weights = exported_weights(model)
    with atomic_path(path) as tmp:
        torch.save(weights, tmp)
    if meta is not None:
        with atomic_path(path.with_suffix(".json")) as tmp:
            tmp.write_text(json.dumps(meta, indent=1))
    return path


def load_exported_weights(model: AudioGenerator, path: str | os.PathLike) -> AudioGenerator:
    """Load exported (or released SAGANet) weights into `model` the way the released files are loaded:
    the DiT strictly with its LoRA taken as merged, the sync encoder strictly."""
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt.get("network"), Mapping) or not isinstance(ckpt.get("synchformer"), Mapping):
        raise CheckpointError(f"{path}: no 'network'/'synchformer' entries: not exported SAGANet weights")
    load_dit_state_dict(model.dit, ckpt, lora_merged=True)
    load_strict(model.sync_encoder.model, ckpt["synchformer"], what="sync encoder")
    return model
