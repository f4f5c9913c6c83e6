"""Where the tests find the reference data (golden cases, manifests, media), and what they do without it.

The data live outside the repository, in `shared/` next to the clone (`<repo>/../shared`). Two variables
redirect them: `SAGANET_SHARED_DIR` (the whole folder) and `SAGANET_GOLDEN_DIR` (only the golden cases; every
golden reader goes through `golden_root()`).

A test that needs the data calls `require_reference_data(path)` (or takes one of the fixtures of
`tests/conftest.py`: `shared_dir`, `golden_dir`, `manifests_dir`, `media_dir`, or carries the marker
`@pytest.mark.requires_reference_data`). When the path is missing the test is skipped with one reason that
says where it looked and how to fix it, so a fresh clone passes the README's test command with the skips
listed in the `-ra` summary. With `SAGANET_REQUIRE_REFERENCE_DATA=1` (set by `.ci/run`) the same condition
fails the test instead, so nothing is silently skipped where the data should be.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_ENV = "SAGANET_SHARED_DIR"
GOLDEN_ENV = "SAGANET_GOLDEN_DIR"
REQUIRE_ENV = "SAGANET_REQUIRE_REFERENCE_DATA"

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    """`$SAGANET_SHARED_DIR`, else `shared/` next to the repository."""
    env = os.environ.get(SHARED_ENV)
    return Path(env).resolve() if env else (REPO_ROOT / ".." / "shared").resolve()


def golden_root() -> Path:
    """`$SAGANET_GOLDEN_DIR`, else `<shared>/reference/golden`."""
    env = os.environ.get(GOLDEN_ENV)
    return Path(env).resolve() if env else shared_root() / "reference" / "golden"


def manifests_root() -> Path:
    return shared_root() / "reference" / "manifests"


def media_root() -> Path:
    return shared_root() / "media"


def reference_data_required() -> bool:
    """True when `SAGANET_REQUIRE_REFERENCE_DATA` is set to 1 / true / yes (CI)."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes")


def missing_reason(path: Path, env: str = SHARED_ENV) -> str:
    return (f"reference data not found at {path}; clone the project next to shared/ or set {env} "
            "(issue 11: tests from any clone; CI sets SAGANET_REQUIRE_REFERENCE_DATA=1 and fails instead)")


def require_reference_data(path: str | os.PathLike, env: str | None = None) -> Path:
    """Return `path` if it exists; else skip the test (or fail it when the data are required).

    `env` names the variable that redirects `path` in the message (default: `SAGANET_GOLDEN_DIR` for paths
    under the golden root, `SAGANET_SHARED_DIR` otherwise).
    """
    p = Path(path)
    if p.exists():
        return p
    if env is None:
        env = GOLDEN_ENV if p.resolve().is_relative_to(golden_root()) else SHARED_ENV
    reason = missing_reason(p, env)
    if reference_data_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set, so this is a failure)", pytrace=False)
    try:
        pytest.skip(reason)
    except pytest.skip.Exception as e:
        # report the skip at the test (as a fixture's skip is), not here; private flag, harmless if it goes
        e._use_item_location = True
        raise
