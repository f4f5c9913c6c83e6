"""Fixtures of the app tests (helpers in `app_media.py`)."""

from app_media import toy_media  # noqa: F401  (a session fixture)
