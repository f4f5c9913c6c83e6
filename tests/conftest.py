import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

# Tests run under pytest-xdist on 2 cores: one thread per worker avoids oversubscription, which slows
# tiny models down ~100x.
torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED.resolve()


@pytest.fixture(scope="session")
def media_dir(shared_dir: Path) -> Path:
    return shared_dir / "media"


@pytest.fixture(scope="session")
def manifests_dir(shared_dir: Path) -> Path:
    return shared_dir / "reference" / "manifests"
