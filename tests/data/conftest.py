"""Fixtures of the data-toolkit tests: one fake raw-source world per session (see `fakeworld.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakeworld import FakeWorld, build_fake_world  # noqa: E402


@pytest.fixture(scope="session")
def fake_world(tmp_path_factory: pytest.TempPathFactory) -> FakeWorld:
    return build_fake_world(tmp_path_factory.mktemp("fakeworld"))
