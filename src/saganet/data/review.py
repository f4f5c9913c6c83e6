"""Human review of verified clips: the decisions, the queue, per-class statistics and the preview video.

No UI here (the Gradio page is `saganet.app.data_review`, an app-level concern): these functions hold the
logic so it is tested without a browser. Decisions are written into the verify table (`verify.csv`,
column `review`; `decision` = the review if given, else the automatic result), atomically on every change.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from pathlib import Path

from saganet.data.masks import mask_paths, resegment_from_click
from saganet.data.verify import TABLE_NAME, VerifyConfig, read_table, verify, write_table
from saganet.errors import InputError

DECISIONS = ("accept", "reject", "clear")
QUEUES = ("all", "rejected", "accepted", "pending")


class ReviewTable:
    """The verify table of one SMS root, for reviewing."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.path = self.root / TABLE_NAME
        self.rows = read_table(self.path)
        if not self.rows:
            raise InputError(f"{self.path} not found or empty: run `saganet data verify {self.root}` first")

    def ids(self, queue: str = "all", label: str | None = None) -> list[str]:
        """Clip ids of a queue: all, rejected / accepted (current decision), pending (no human review yet;
        automatic rejects first, so the doubtful clips are seen first)."""
        if queue not in QUEUES:
            raise InputError(f"unknown queue '{queue}': use one of {', '.join(QUEUES)}")
        rows = [r for r in self.rows.values() if label in (None, "", r["label"])]
        if queue == "rejected":
            rows = [r for r in rows if r["decision"] == "reject"]
        elif queue == "accepted":
            rows = [r for r in rows if r["decision"] == "accept"]
        elif queue == "pending":
            rows = sorted((r for r in rows if not r.get("review")), key=lambda r: r["auto"] != "reject")
            return [r["id"] for r in rows]
        return sorted(r["id"] for r in rows)

    def row(self, clip_id: str) -> dict:
        if clip_id not in self.rows:
            raise InputError(f"clip '{clip_id}' is not in {self.path}")
        return self.rows[clip_id]

    def decide(self, clip_id: str, decision: str, note: str | None = None) -> dict:
        """Store a human decision (accept / reject, or clear to fall back to the automatic result)."""
        if decision not in DECISIONS:
            raise InputError(f"unknown decision '{decision}': use accept, reject or clear")
        self.rows = read_table(self.path)  # another reviewer may have written meanwhile
        row = self.row(clip_id)
        row["review"] = "" if decision == "clear" else decision
        row["decision"] = row["review"] or row["auto"]
        if note is not None:
            row["note"] = note
        write_table(self.path, self.rows)
        return row

    def reclick(self, clip_id: str, x: float, y: float, time: float = 0.0, segmenter="color",
                palette: dict | None = None, cfg: VerifyConfig | None = None) -> dict:
        """Re-segment a clip from a click, re-run its automatic checks and clear its old review."""
        self.row(clip_id)
        resegment_from_click(self.root, clip_id, x, y, time, segmenter=segmenter, palette=palette)
        self.rows = verify(self.root, cfg, only=[clip_id], quiet=True)
        return self.decide(clip_id, "clear", note=f"re-clicked at {x:g},{y:g}@{time:g}")

    def class_stats(self) -> dict[str, dict[str, int]]:
        """Per label: clips, automatic accepts/rejects, human reviews, final accepts."""
        out: dict[str, dict[str, int]] = defaultdict(lambda: Counter())  # type: ignore[arg-type]
        for r in self.rows.values():
            s = out[r["label"]]
            s["clips"] += 1
            s[f"auto_{r['auto']}"] += 1
            s["reviewed"] += int(bool(r.get("review")))
            s["accepted"] += int(r["decision"] == "accept")
        return {k: {n: int(v.get(n, 0)) for n in ("clips", "auto_accept", "auto_reject", "reviewed", "accepted")}
                for k, v in sorted(out.items())}

    def reasons(self) -> dict[str, int]:
        """How often each check failed (automatic results)."""
        c: Counter = Counter()
        for r in self.rows.values():
            c.update(x for x in r.get("failed", "").split(";") if x)
        return dict(c.most_common())


def preview_clip(root: str | os.PathLike, clip_id: str, dest: str | os.PathLike) -> Path:
    """The clip with its mask outlined and its own audio, as an mp4 at `dest` (for the review page)."""
    from saganet.data.cut import read_audio_window
    from saganet.io.masks import MaskSpec, read_mask
    from saganet.io.mux import MaskOverlay, mux_video_with_audio
    from saganet.io.video import probe_video

    root = Path(root)
    video = root / f"{clip_id}.mp4"
    _, js = mask_paths(root, clip_id)
    raw = read_mask(MaskSpec(js), max_side=None)
    info = probe_video(video)
    wav, sr = read_audio_window(video, 0.0, info.duration)
    ov = MaskOverlay(raw.frames, raw.times, (255, 64, 64), clip_id.split("/")[0])
    return mux_video_with_audio(video, wav, sr, dest, overlays=[ov], thickness=1 if info.width < 200 else 3)
