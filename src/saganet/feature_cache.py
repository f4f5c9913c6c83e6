"""Reuse of work that depends on the video and the options but not on the object mask.

A second object on a clip already processed must not decode the video or run CLIP again. `FeatureCache`
holds recent results in memory (one process: the Python API, the web UI, a batch over one video) and,
opt-in, in a folder (`--cache-dir`) so that separate runs share them. Keys are content hashes: the
video file's bytes (never its name or time stamp) plus every option that changes the result, so a cached
entry is never stale. Entries on disk are safetensors files written atomically; a corrupt one is ignored
and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from saganet.io.atomic import atomic_path

log = logging.getLogger(__name__)

_file_hashes: dict[tuple[str, int, int], str] = {}


def file_key(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """sha256 of a file's content (memoised per path, size and modification time within the process)."""
    p = Path(path)
    st = p.stat()
    memo = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _file_hashes:
        h = hashlib.sha256()
        with p.open("rb") as f:
            while block := f.read(chunk):
                h.update(block)
        _file_hashes[memo] = h.hexdigest()
    return _file_hashes[memo]


def make_key(*parts) -> str:
    """A stable hash of JSON-serialisable parts (what a cached value depends on)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:40]


class FeatureCache:
    """`get(key)` / `put(key, value)` over an in-memory LRU and an optional folder of safetensors.

    Values are anything in memory; only dicts of tensors are also written to the folder (`persist=True`).
    """

    def __init__(self, folder: str | os.PathLike | None = None, max_items: int = 8) -> None:
        self.folder = Path(folder) if folder else None
        self.max_items = max_items
        self._mem: OrderedDict[str, object] = OrderedDict()
        self.hits = self.misses = 0
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def _file(self, key: str) -> Path:
        return self.folder / f"{key}.safetensors"  # type: ignore[operator]

    def get(self, key: str):
        if key in self._mem:
            self._mem.move_to_end(key)
            self.hits += 1
            return self._mem[key]
        if self.folder is not None and self._file(key).is_file():
            try:
                value = load_file(str(self._file(key)))
            except Exception as e:  # a truncated or foreign file: recompute and overwrite it
                log.warning("ignoring unreadable cache entry %s (%s)", self._file(key).name, e)
            else:
                self.hits += 1
                self._remember(key, value)
                return value
        self.misses += 1
        return None

    def put(self, key: str, value, persist: bool = False) -> None:
        self._remember(key, value)
        if persist and self.folder is not None:
            tensors = {k: v.detach().to("cpu").contiguous() for k, v in value.items()}
            with atomic_path(self._file(key)) as tmp:
                save_file(tensors, str(tmp))

    def _remember(self, key: str, value) -> None:
        self._mem[key] = value
        self._mem.move_to_end(key)
        while len(self._mem) > self.max_items:
            self._mem.popitem(last=False)

    def clear_memory(self) -> None:
        self._mem.clear()


def tensor_key(x: torch.Tensor) -> str:
    """Content hash of a tensor (for inputs that do not come from a file)."""
    return hashlib.sha256(x.detach().to("cpu").contiguous().numpy().tobytes()).hexdigest()[:40]
