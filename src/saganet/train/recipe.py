"""`TrainingRecipe`: one config file -> model, datasets, `Trainer`, exported weights (torchtune-style).

    recipe = TrainingRecipe(load_config("sms_encoder", ["out_dir=runs/a"]))
    recipe.run()          # under torchrun too: `torchrun --nproc-per-node 2 -m saganet.train sms_encoder`

Models (`model`): the SAGANet DiT variants `small_44k_sa` / `medium_44k_sa` (a `*_no_lora` name or
`use_lora=false` builds the DiT without LoRA layers), the released `saganet_small` (fine-tuning the
published model), `tiny` (tiny random model of the real classes, tests) and `toy` / `toy_baseline` (the
toy world's model from scratch). Start points (`init`):

- `mmaudio` (the reference): the DiT from `mmaudio_{small,medium}_44k.pth` (every DiT weight, including
  its `latent_mean`/`latent_std` and `empty_string_feat`, which overwrite the data's), the MotionFormer
  backbone from `synchformer_state_dict.pth`. What stays at its initial value: the segmentation-aware
  additions (`patch_embed_3d_mask` and the 12 gated `cross_attn_layers`, with their gates at 0, so the
  model starts as MMAudio) and the LoRA tensors (`lora_A` Kaiming-uniform, `lora_B` = 0: ΔW = 0).
- `released`: the registry variant's own weights (e.g. `saganet_small`), LoRA taken as merged.
- `random`: fresh weights (tests, benchmarks; for the toy world, training from scratch).
- a path: weights exported by a previous run (`weights_best.pth`, reference layout).

Data (`data`): `sms` reads `saganet.data.SegmentedMusicSolos(data_root, split, features=features/split)`
(any folder made by `saganet data ingest ... extract`); any other value is a component
`package.module:function` called as `function(cfg, model) -> (train_set, val_set)` (the toy world's is
`saganet.toyworld.training:toy_datasets`). Frozen CLIP and codec are not built for training: frame, text
and audio features come precomputed with the data.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from saganet import registry, weights
from saganet.checkpoint import read_checkpoint
from saganet.configs import dit_config, sequence_config_for
from saganet.errors import CheckpointError, InputError
from saganet.models.dit import MMDiT, load_dit_state_dict
from saganet.models.generator import AudioGenerator
from saganet.train.config import TrainConfig
from saganet.train.state import load_exported_weights
from saganet.train.trainer import Trainer, init_distributed, shutdown_distributed

log = logging.getLogger(__name__)

SAGANET_DITS = ("small_44k_sa", "medium_44k_sa", "small_44k_sa_no_lora", "medium_44k_sa_no_lora")
MMAUDIO_FILE = {"small": "mmaudio_small_44k.pth", "medium": "mmaudio_medium_44k.pth"}


class _Precomputed(nn.Module):
    """Stands in for CLIP / the codec during training: their outputs come precomputed with the data."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def _fail(self, *_a, **_k):
        raise InputError(f"the training model has no {self.what}: its features must come precomputed "
                         "(`saganet data extract`)")

    encode_frames = encode_text = encode = decode = forward = _fail


def with_lora(dit: MMDiT, use_lora: bool) -> MMDiT:
    """`dit` rebuilt with (or without) LoRA layers, same weights (fresh LoRA tensors: ΔW = 0)."""
    if dit.cfg.use_lora == use_lora:
        return dit
    new = MMDiT(replace(dit.cfg, use_lora=use_lora))
    load_dit_state_dict(new, dit.state_dict(), lora_merged=False, allow_missing_lora=True)
    return new.train(dit.training)


def _saganet_model(name: str, init: str, use_lora: bool) -> AudioGenerator:
    from saganet.models.motionformer import MotionFormerConfig
    from saganet.models.segaware import SynchformerWithContext
    from saganet.models.sync_encoder import SegAwareSyncEncoder, load_mmaudio_synchformer

    dit_name = name.removesuffix("_no_lora") if use_lora else (name if name.endswith("_no_lora") else
                                                                 name + "_no_lora")
    dit = MMDiT(dit_config(dit_name))
    enc = SynchformerWithContext(MotionFormerConfig.full())
    if init == "mmaudio":
        size = "medium" if name.startswith("medium") else "small"
        path = weights.resolve(MMAUDIO_FILE[size], needed_by=f"training {name}")
        load_dit_state_dict(dit, read_checkpoint(path), allow_missing_lora=True)
        sync_path = weights.resolve("synchformer_state_dict.pth", needed_by=f"training {name}")
        left = load_mmaudio_synchformer(enc, read_checkpoint(sync_path))["left_at_init"]
        log.info("initialised from %s + %s; %d encoder tensors stay at init", path.name, sync_path.name, len(left))
    elif init != "random" and not Path(init).is_file():
        raise InputError(f"init '{init}' for {name}: use mmaudio, random or a weights file")
    seq = sequence_config_for(dit_name)
    return AudioGenerator(dit, SegAwareSyncEncoder(enc), _Precomputed("CLIP frame encoder"),
                          _Precomputed("text encoder"), _Precomputed("codec"), seq, clip_size=384, sync_size=224,
                          focal_mode="reference")


def toy_model_config(cfg: TrainConfig):
    """The `ToyModelConfig` of a toy-world run (`model = "toy"` or `"toy_baseline"`)."""
    from saganet.models.toy import ToyModelConfig

    return ToyModelConfig(segaware=cfg.model == "toy", duration=cfg.toy_duration,
                          use_clip_frames=cfg.toy_use_clip_frames)


def build_training_model(cfg: TrainConfig) -> AudioGenerator:
    """The model `cfg` trains, at its start point (see the module docstring)."""
    name, init = cfg.model, cfg.init
    if name in SAGANET_DITS:
        model = _saganet_model(name, init, cfg.use_lora)
    elif name in ("toy", "toy_baseline"):
        from saganet.models.toy import build_toy_model

        if init != "random" and not Path(init).is_file():
            raise InputError("the toy model trains from init=random (or a weights file)")
        model = build_toy_model(toy_model_config(cfg))
    elif name == "tiny":
        from saganet.builders import build_tiny

        if init != "random" and not Path(init).is_file():
            raise InputError("the tiny model trains from init=random (or a weights file)")
        torch.manual_seed(cfg.seed)
        model = build_tiny(seed=cfg.seed, duration=cfg.toy_duration)
        model.dit = with_lora(model.dit, cfg.use_lora)
    else:
        from saganet.builders import build_variant

        spec = registry.get_variant(name)  # unknown names: one-line error listing the variants
        if init not in ("released", "random") and not Path(init).is_file():
            raise InputError(f"init '{init}' for {spec.name}: use released or a weights file")
        model = build_variant(spec.name)
    if Path(init).is_file():
        model.eval()
        try:
            load_exported_weights(model, init)
        except CheckpointError as e:
            raise CheckpointError(f"init {init}: {e}") from e
    return model


def resolve_component(spec: str):
    """`package.module:function` -> the function (torchtune's `_component_`)."""
    mod, sep, fn = spec.partition(":")
    if not sep:
        raise InputError(f"data '{spec}': use sms or a component package.module:function")
    try:
        return getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError) as e:
        raise InputError(f"data component '{spec}' cannot be imported: {e}") from e


def build_datasets(cfg: TrainConfig, model: AudioGenerator) -> tuple[Dataset, Dataset | None]:
    if cfg.data == "sms":
        from saganet.data.datasets import SegmentedMusicSolos

        if not cfg.data_root or not cfg.features:
            raise InputError("data=sms needs data_root=FOLDER (ingested clips) and features=FOLDER "
                             "(`saganet data extract` output with train/ and val/)")
        feats = Path(cfg.features)
        common = dict(duration=cfg.duration, size=model.sync_size, focal=cfg.focal)
        train = SegmentedMusicSolos(cfg.data_root, cfg.train_split, features=feats / cfg.train_split, **common)
        val = None
        if (feats / cfg.val_split).is_dir():
            val = SegmentedMusicSolos(cfg.data_root, cfg.val_split, features=feats / cfg.val_split, **common)
        return train, val
    return resolve_component(cfg.data)(cfg, model)


def sampling_codec_factory(cfg: TrainConfig):
    """How validation samples of `cfg.model` are decoded: the released 44.1 kHz VAE + vocoder for the
    SAGANet DiTs (built only at the first sampling), None where the training model holds its codec."""
    if cfg.model not in SAGANET_DITS:
        return None

    def build():
        from saganet.builders import build_released_codec

        return build_released_codec("saganet_small")  # every SAGANet DiT uses the 44k codec

    return build


class TrainingRecipe:
    """Config -> (distributed set-up, model, data, trainer) -> `run()` -> exported weights."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg

    def setup(self) -> Trainer:
        if self.cfg.data == "sms" and not (self.cfg.data_root and self.cfg.features):  # before any weights load
            raise InputError("data=sms needs data_root=FOLDER (ingested clips) and features=FOLDER "
                             "(`saganet data extract` output with train/ and val/)")
        init_distributed()
        torch.manual_seed(self.cfg.seed)
        self.model = build_training_model(self.cfg)
        self.train_set, self.val_set = build_datasets(self.cfg, self.model)
        self.trainer = Trainer(self.model, self.cfg, self.train_set, self.val_set,
                               codec_factory=sampling_codec_factory(self.cfg))
        return self.trainer

    def run(self, quiet: bool = False) -> list[dict]:
        trainer = self.setup()
        try:
            history = trainer.fit(quiet=quiet)
            if trainer.rank == 0:
                trainer.export(Path(self.cfg.out_dir) / "weights_final.pth")
        finally:
            trainer.close()
            shutdown_distributed()
        return history
