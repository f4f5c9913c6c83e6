"""Resumable job manifests: an append-only JSONL file, one line per attempt `{"id", "status", "reason", ...}`.

The last line of an id wins, so a clip that failed and later succeeded reads as done. Only the parent process
appends (workers return their results), each line is flushed and fsynced, and a torn last line left by a kill
is ignored on reading, so the file survives `kill -9` at any point. Stale temporary files of killed runs are
found by the names `saganet.io.atomic.atomic_path` gives them (`.{stem}.XXXXXXXX{suffix}` next to the target)
and removed before a stage resumes.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

DONE, FAILED, SKIPPED = "done", "failed", "skipped"
# atomic_path's temporaries: "." + target stem + "." + 8 random chars from mkstemp + target suffix
_TEMP_RE = re.compile(r"^\.(?P<stem>.+)\.[A-Za-z0-9_]{8}(?P<suffix>\.[^.]+)?$")


class Manifest:
    """Append-only JSONL record of what a stage did per item (`status`: done | failed | skipped)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.records: dict[str, dict] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        torn = 0
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                    self.records[str(rec["id"])] = rec
                except (ValueError, KeyError, TypeError):
                    torn += 1  # a line cut short by a kill
        if torn:
            log.warning("%s: ignored %d unreadable line(s) (a killed run)", self.path, torn)

    def status(self, item_id: str) -> str | None:
        rec = self.records.get(item_id)
        return rec["status"] if rec else None

    def done(self) -> set[str]:
        return {k for k, r in self.records.items() if r["status"] == DONE}

    def failed(self) -> dict[str, str]:
        return {k: r.get("reason", "") for k, r in self.records.items() if r["status"] == FAILED}

    def record(self, item_id: str, status: str, reason: str = "", **extra) -> dict:
        rec = {"id": item_id, "status": status, "reason": reason, "time": round(time.time(), 3), **extra}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A torn last line (kill -9 mid-write) must not swallow this record: start on a fresh line.
        needs_newline = self.path.exists() and self.path.stat().st_size > 0 and not _ends_with_newline(self.path)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(("\n" if needs_newline else "") + json.dumps(rec, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.records[item_id] = rec
        return rec


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def stale_temps(targets: Iterable[Path]) -> list[Path]:
    """Temporary files `atomic_path` left for these targets (a killed run): `.{stem}.XXXXXXXX{suffix}`."""
    out = []
    for t in targets:
        t = Path(t)
        if not t.parent.is_dir():
            continue
        for c in glob.glob(glob.escape(str(t.parent / f".{t.stem}.")) + "*" + glob.escape(t.suffix)):
            m = _TEMP_RE.match(Path(c).name)
            if m and m.group("stem") == t.stem and (m.group("suffix") or "") == t.suffix:
                out.append(Path(c))
    return out


def remove_stale_temps(targets: Iterable[Path]) -> int:
    n = 0
    for p in stale_temps(targets):
        try:
            p.unlink()
            n += 1
        except FileNotFoundError:
            pass
    if n:
        log.info("removed %d temporary file(s) left by a killed run", n)
    return n
