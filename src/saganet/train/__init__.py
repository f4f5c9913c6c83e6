"""Training: one config file (`configs/*.toml`) -> `TrainingRecipe` -> `Trainer` (flow matching, AdamW,
warm-up + step decay, CFG dropout, trainable-part modes, bf16 autocast, EMA, DDP under torchrun,
resumable checkpoints, exported weights in the reference layout)."""

from saganet.train.config import TrainConfig, load_config
from saganet.train.recipe import TrainingRecipe, build_training_model
from saganet.train.state import export_weights, load_exported_weights
from saganet.train.trainer import (
    FlowTrainModule,
    Trainer,
    init_distributed,
    shutdown_distributed,
)

__all__ = ["FlowTrainModule", "TrainConfig", "Trainer", "TrainingRecipe", "build_training_model", "export_weights",
           "init_distributed", "load_config", "load_exported_weights", "shutdown_distributed"]
