"""Training: flow-matching trainer (AdamW, warm-up, CFG dropout, trainable-part modes, DDP, resumable checkpoints)."""

from saganet.train.trainer import FlowTrainModule, TrainConfig, Trainer

__all__ = ["FlowTrainModule", "TrainConfig", "Trainer"]
