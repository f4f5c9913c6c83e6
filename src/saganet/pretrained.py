"""Core modules built from weights on disk (infra: file reading lives here, not in `models/`).

`clip_from_checkpoint(folder_or_file)`: the open_clip encoder from a downloaded hub snapshot (a plain folder
with `open_clip_config.json` + weights) or a weights file and a config.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from saganet.checkpoint import load_strict, read_checkpoint
from saganet.errors import CheckpointError
from saganet.models import clip
from saganet.models.clip import ClipEncoder


def clip_from_checkpoint(
    path: str | os.PathLike, model_cfg: Mapping | str | None = None, tokenizer: str | None = clip.DEFAULT_TOKENIZER
) -> ClipEncoder:
    """Encoder from local weights.

    `path` is either a folder with `open_clip_config.json` (+ `open_clip_model.safetensors` or
    `open_clip_pytorch_model.bin`), i.e. a downloaded hub snapshot, or a weights file; then `model_cfg` is a
    config dict or an open_clip model name (e.g. "ViT-H-14-378-quickgelu").
    """
    import open_clip

    path = Path(path)
    if path.is_dir():
        cfg_file = path / "open_clip_config.json"
        if not cfg_file.is_file():
            raise CheckpointError(f"{path} has no open_clip_config.json (not an open_clip model folder)")
        if model_cfg is None:
            model_cfg = json.loads(cfg_file.read_text()).get("model_cfg")
        for name in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise CheckpointError(f"no open_clip weights (open_clip_model.safetensors / .bin) in {path}")
    if isinstance(model_cfg, str):
        name = model_cfg
        model_cfg = open_clip.get_model_config(name)
        if model_cfg is None:
            raise CheckpointError(f"unknown open_clip model config {name!r}")
    if model_cfg is None:
        raise CheckpointError(f"no CLIP config given for the weights file {path}")
    # Built on the meta device and given the file's tensors (mapped, not copied): one copy of the 3.9 GB of
    # weights in memory instead of a random init plus the checkpoint (low-memory generation, README "Speed").
    with torch.device("meta"):
        model = clip.build_clip_model(model_cfg)
    sd = read_checkpoint(path, mmap=True)
    sd = sd.get("state_dict", sd)
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    load_strict(model, sd, what="CLIP model", assign=True)
    clip.materialize_buffers(model)
    if any(p.dtype != torch.float32 for p in model.parameters()):
        model = model.float()
    return clip.finish_encoder(model, tokenizer)
