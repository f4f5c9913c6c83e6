"""Training: flow-matching trainer (AdamW, warm-up, CFG dropout, trainable-part modes, DDP, resumable checkpoints)."""

from saganet.train.trainer import (
    FlowTrainModule,
    TrainConfig,
    Trainer,
    init_distributed,
    shutdown_distributed,
)

__all__ = ["FlowTrainModule", "TrainConfig", "Trainer", "init_distributed", "shutdown_distributed"]
