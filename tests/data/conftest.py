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


@pytest.fixture(scope="session")
def palette() -> dict:
    from saganet.toyworld.world import CLASSES

    return {c.name: c.colour for c in CLASSES}


@pytest.fixture(scope="session")
def sms_root(fake_world, tmp_path_factory, palette) -> Path:
    """The fake world's SMS clips ingested and masked with the colour segmenter (read-only for tests)."""
    from saganet.data.ingest import ingest
    from saganet.data.masks import make_masks

    root = tmp_path_factory.mktemp("sms_built") / "sms"
    ingest("sms", fake_world.sms_metadata, root, fake_world.sources, workers=1, quiet=True)
    make_masks(root, "color", palette=palette, quiet=True)
    return root


@pytest.fixture(scope="session")
def urmp_root(fake_world, tmp_path_factory, palette) -> Path:
    from saganet.data.ingest import ingest
    from saganet.data.masks import make_masks

    root = tmp_path_factory.mktemp("urmp_built") / "urmp"
    ingest("urmp", fake_world.urmp_metadata, root, {"urmp": fake_world.urmp_source}, workers=1, quiet=True)
    make_masks(root, "color", palette=palette, quiet=True)
    return root
