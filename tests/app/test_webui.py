"""Web UI: the handler runs the real generation path; the app builds and serves its page on loopback."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from saganet.app.webui import build_app, generate_for_ui
from saganet.errors import SaganetError
from saganet.toyworld import write_split


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy")
    return write_split(root, "test_diff", 1, progress=False) / "test_diff_00000"


def test_handler_writes_stems(scene, tmp_path):
    masks = sorted(str(p) for p in scene.glob("mask_*.mp4"))
    mix, video, stems, status = generate_for_ui(str(scene / "video.mp4"), masks, "a, b, c", "", "", "tiny", 4.5,
                                                2, 1, tmp_path)
    assert Path(mix).is_file() and Path(video).is_file()
    assert len(stems) == len(masks) and all(Path(s).is_file() for s in stems)
    assert Path(stems[0]).name == "stem_a.flac" and "stem(s)" in status


def test_handler_bad_input(tmp_path):
    with pytest.raises(SaganetError):
        generate_for_ui(None, [], "", "", "", "tiny", 4.5, 2, 1, tmp_path)
    with pytest.raises(SaganetError):
        generate_for_ui(str(tmp_path / "missing.mp4"), [], "", "", "", "tiny", 4.5, 2, 1, tmp_path)


def test_app_serves_page(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build_app(tmp_path)
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            assert r.status == 200 and b"saganet" in r.read()
    finally:
        app.close()
