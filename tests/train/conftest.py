"""Helpers for the trainer tests: the tiny model of the real classes on a handful of toy-world clips."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def tiny_setup():
    """`make(tmp_path, **config_fields) -> (cfg, model, train_set, val_set)`, tiny + toy-world data."""
    from train_helpers import tiny_run

    return tiny_run
