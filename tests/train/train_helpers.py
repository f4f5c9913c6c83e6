"""Shared by the in-process tests and the torchrun scripts: build a tiny run from the `tiny_test` config."""

from __future__ import annotations

import torch

from saganet.toyworld.training import toy_datasets
from saganet.train.config import load_config
from saganet.train.recipe import build_training_model


def tiny_run(out_dir, overrides: list[str] | None = None, **fields):
    """(cfg, model, train_set, val_set) exactly as `TrainingRecipe.setup` builds them."""
    cfg = load_config("tiny_test", overrides, out_dir=str(out_dir), **fields)
    torch.manual_seed(cfg.seed)
    model = build_training_model(cfg)
    train, val = toy_datasets(cfg, model)
    return cfg, model, train, val


def trainables(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
