"""Test-wide settings and the reference-data fixtures (see `reference_data.py`: skip, or fail in CI)."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from reference_data import (  # noqa: E402
    golden_root,
    manifests_root,
    media_root,
    require_reference_data,
    shared_root,
)

# Tests run under pytest-xdist on 2 cores: one thread per worker avoids oversubscription, which slows
# tiny models down ~100x.
torch.set_num_threads(1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires_reference_data(*paths): needs ../shared (or these paths relative to it); skipped when "
        "absent, failed when SAGANET_REQUIRE_REFERENCE_DATA=1")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires_reference_data"):
        for rel in mark.args or (".",):
            require_reference_data(shared_root() / rel)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The reference data folder (`../shared` or `$SAGANET_SHARED_DIR`)."""
    return require_reference_data(shared_root())


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    """The golden cases (`$SAGANET_GOLDEN_DIR`, default `<shared>/reference/golden`)."""
    return require_reference_data(golden_root())


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return require_reference_data(media_root())


@pytest.fixture(scope="session")
def manifests_dir() -> Path:
    return require_reference_data(manifests_root())
