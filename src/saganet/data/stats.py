"""`saganet data stats`: clips per class and split, durations, ingest failures and rejection reasons."""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from pathlib import Path

from saganet.data.ingest import MANIFEST_NAME, read_clip_table
from saganet.data.manifest import Manifest
from saganet.data.verify import TABLE_NAME, read_table


def _reason_kind(reason: str) -> str:
    """Group failure reasons: without file paths, the text before the first ':' or '(' ('missing source',
    'cannot read as a video', ...)."""
    text = re.sub(r"\s+", " ", re.sub(r"(?:[A-Za-z]:)?[/\\]\S+", "", reason))
    return text.split(":")[0].split("(")[0].strip()[:60] or "unknown"


def dataset_stats(root: str | os.PathLike) -> dict:
    """Counts of an ingested root (SMS or URMP): per class x split (ingested / accepted), durations,
    ingest failures by kind, verify rejections by check."""
    root = Path(root)
    clips = read_clip_table(root)
    table = read_table(root / TABLE_NAME)
    per: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    durations: dict[str, float] = Counter()
    for c in clips:
        labels = c["label"].split("+")  # URMP windows hold several players
        for lab in labels:
            per[lab][c["split"]]["clips"] += 1
            if table:
                per[lab][c["split"]]["accepted"] += int(table.get(c["id"], {}).get("decision") == "accept")
        durations[c["split"]] += float(c["duration"] or 0)
    rejections: Counter = Counter()
    for r in table.values():
        if r.get("decision") == "reject":
            rejections.update(x for x in (r.get("failed") or "human").split(";") if x)
    failures: Counter = Counter()
    man = root / MANIFEST_NAME
    if man.exists():
        failures.update(_reason_kind(v) for v in Manifest(man).failed().values())
    return {
        "clips": len(clips),
        "classes": len(per),
        "verified": bool(table),
        "accepted": sum(r.get("decision") == "accept" for r in table.values()) if table else None,
        "per_class": {k: {s: dict(c) for s, c in sorted(v.items())} for k, v in sorted(per.items())},
        "hours": {k: round(v / 3600, 4) for k, v in sorted(durations.items())},
        "mean_duration_s": round(sum(float(c["duration"] or 0) for c in clips) / max(len(clips), 1), 3),
        "ingest_failures": dict(failures.most_common()),
        "rejections": dict(rejections.most_common()),
    }


def format_stats(s: dict) -> str:
    """A plain-text table of `dataset_stats`."""
    splits = sorted({sp for v in s["per_class"].values() for sp in v})
    lines = [f"{s['clips']} clips, {s['classes']} classes, mean {s['mean_duration_s']} s; hours per split: "
             + ", ".join(f"{k} {v}" for k, v in s["hours"].items())]
    if s["verified"]:
        lines[0] += f"; accepted {s['accepted']}"
    head = f"{'class':<20}" + "".join(f"{sp:>18}" for sp in splits)
    lines += ["", head, "-" * len(head)]
    for cls, v in s["per_class"].items():
        cells = []
        for sp in splits:
            c = v.get(sp, {})
            cells.append(f"{c.get('clips', 0)}" + (f" ({c.get('accepted', 0)} ok)" if s["verified"] else ""))
        lines.append(f"{cls:<20}" + "".join(f"{x:>18}" for x in cells))
    if s["ingest_failures"]:
        lines += ["", "ingest failures: " + ", ".join(f"{k}: {v}" for k, v in s["ingest_failures"].items())]
    if s["rejections"]:
        lines += ["rejections by check: " + ", ".join(f"{k}: {v}" for k, v in s["rejections"].items())]
    return "\n".join(lines)
