"""The two metadata files the datasets are rebuilt from (RN-45), read into plain records.

- SMS `metadata.csv` (comma; `.tsv` -> tab), read BY COLUMN NAME as the reference's `load_sms.py` does:
  `subset` (solos | avs-semantic | music21: which raw folder), `YTID`, `filename`, `redefined_label`,
  `start_msec`, `end_msec`, and the split column (`split`; train | val). The reference's extraction code reads
  the same file by position (RN-47); names are what its download script relies on, so we use names.
- URMP `metadata.tsv` (tab, header skipped), read BY POSITION as the reference's loaders do: `row[0]` mixture
  video id `{piece}/Vid_..._{s}_{e}`, `row[1]` the player's separated stem `{piece}/AuSep_..._{s}_{e}`,
  `row[2]` the player's mask `{piece}/Masks_..._{s}_{e}`, `row[4]` the label, `row[-2]`/`row[-1]` start/end
  in ms. One row per (window, player).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

from saganet.errors import InputError

SMS_SUBSETS = ("solos", "avs-semantic", "music21")
SMS_COLUMNS = ("subset", "YTID", "filename", "redefined_label", "start_msec", "end_msec")
SPLIT_COLUMNS = ("split", "set", "partition")


@dataclass(frozen=True)
class SMSRow:
    """One SMS clip: `label/stem` under the output root, cut from `[start_ms, end_ms)` of video `ytid`."""

    subset: str
    ytid: str
    filename: str
    label: str
    start_ms: int
    end_ms: int
    split: str

    @property
    def cut_stem(self) -> str:
        """Name of a clip cut from the long video (the reference's `{YTID}_{start}_{end}`)."""
        return f"{self.ytid}_{self.start_ms}_{self.end_ms}"

    @property
    def duration(self) -> float:
        return (self.end_ms - self.start_ms) / 1000.0


@dataclass(frozen=True)
class URMPRow:
    """One (window, player) row of the URMP test set; ids are relative paths without extension."""

    video_id: str  # {piece}/Vid_{n}_{name}_{instrs}_{s}_{e}
    audio_id: str  # {piece}/AuSep_{k}_{instr}_{n}_{name}_{s}_{e}
    mask_id: str  # {piece}/Masks_{kk}_{instr}_{n}_{name}_{s}_{e}
    label: str
    start_ms: int
    end_ms: int

    @property
    def piece(self) -> str:
        return self.video_id.split("/")[0]

    @property
    def player(self) -> int:
        """The player's index in the piece (the `k` of `AuSep_k_...`), 1-based."""
        try:
            return int(Path(self.audio_id).name.split("_")[1])
        except (IndexError, ValueError):
            return 0

    @property
    def duration(self) -> float:
        return (self.end_ms - self.start_ms) / 1000.0


def strip_window(stem: str) -> str:
    """`Vid_09_Jesus_tpt_vn_159092_164092` -> `Vid_09_Jesus_tpt_vn` (drop the last two `_` fields)."""
    parts = stem.split("_")
    return "_".join(parts[:-2]) if len(parts) > 2 else stem


def _ms(value: str, what: str, where: str) -> int:
    try:
        v = float(value)
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: {what} '{value}' is not a number of milliseconds; fix the metadata") from e
    if not math.isfinite(v) or v < 0:
        raise InputError(f"{where}: {what} '{value}' must be a finite number >= 0; fix the metadata")
    return int(round(v))


def _safe_part(value: str, what: str, where: str) -> str:
    """A path component from the metadata: no separators, no `..` (the metadata must not write elsewhere)."""
    v = value.strip()
    if not v or v in (".", "..") or "/" in v or "\\" in v or "\0" in v:
        raise InputError(f"{where}: {what} '{value}' cannot be used as a file name; fix the metadata")
    return v


def _safe_id(value: str, where: str, parts: int) -> str:
    v = value.strip().removesuffix(".mp4").removesuffix(".wav")
    pieces = v.split("/")
    if len(pieces) != parts:
        raise InputError(f"{where}: id '{value}' should look like PIECE/NAME; fix the metadata")
    return "/".join(_safe_part(p, "id part", where) for p in pieces)


def _open_table(path: Path, delimiter: str | None = None) -> list[list[str]]:
    if not path.is_file():
        raise InputError(f"metadata file not found: {path}: check the path")
    delim = delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [row for row in csv.reader(f, delimiter=delim) if row and any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"cannot read metadata {path} ({e}); expected a UTF-8 CSV/TSV file") from e


def read_sms_metadata(path: str | os.PathLike) -> list[SMSRow]:
    """Read SMS `metadata.csv` (or `.tsv`) by column name; raises `InputError` naming the bad row."""
    p = Path(path)
    rows = _open_table(p)
    if not rows:
        raise InputError(f"metadata {p} is empty; expected a header with {', '.join(SMS_COLUMNS)}, split")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in SMS_COLUMNS if c not in header]
    split_col = next((c for c in SPLIT_COLUMNS if c in header), None)
    if missing or split_col is None:
        need = missing + ([] if split_col else ["split"])
        raise InputError(f"metadata {p} lacks the column(s) {', '.join(need)}; its header is {header}: "
                         "this is not the SMS metadata.csv")
    col = {name: header.index(name) for name in (*SMS_COLUMNS, split_col)}
    out: list[SMSRow] = []
    for i, row in enumerate(rows[1:], start=2):
        where = f"{p.name} line {i}"
        if len(row) < len(header):
            raise InputError(f"{where} has {len(row)} fields, the header {len(header)}; fix the metadata")

        def get(name: str, row: list[str] = row) -> str:
            return row[col[name]].strip()

        subset = get("subset").lower()
        if subset not in SMS_SUBSETS:
            raise InputError(f"{where}: unknown subset '{get('subset')}'; expected one of {', '.join(SMS_SUBSETS)}")
        start, end = _ms(get("start_msec"), "start_msec", where), _ms(get("end_msec"), "end_msec", where)
        if end <= start:
            raise InputError(f"{where}: end_msec {end} <= start_msec {start}; fix the metadata")
        out.append(SMSRow(subset=subset, ytid=_safe_part(get("YTID"), "YTID", where),
                          filename=_safe_part(get("filename"), "filename", where) if get("filename") else "",
                          label=_safe_part(get("redefined_label"), "redefined_label", where),
                          start_ms=start, end_ms=end, split=get(split_col).lower() or "train"))
    return out


def read_urmp_metadata(path: str | os.PathLike) -> list[URMPRow]:
    """Read URMP `metadata.tsv` by position (header line skipped)."""
    p = Path(path)
    rows = _open_table(p, delimiter="\t")
    out: list[URMPRow] = []
    for i, row in enumerate(rows[1:], start=2):
        where = f"{p.name} line {i}"
        if len(row) < 7:
            raise InputError(f"{where} has {len(row)} fields; URMP metadata rows have video id, audio id, "
                             "mask id, ..., label, ..., start ms, end ms (tab-separated)")
        start, end = _ms(row[-2], "start", where), _ms(row[-1], "end", where)
        if end <= start:
            raise InputError(f"{where}: end {end} <= start {start}; fix the metadata")
        out.append(URMPRow(video_id=_safe_id(row[0], where, 2), audio_id=_safe_id(row[1], where, 2),
                           mask_id=_safe_id(row[2], where, 2), label=row[4].strip(), start_ms=start, end_ms=end))
    return out


def write_sms_metadata(path: str | os.PathLike, rows: list[SMSRow]) -> None:
    """Write rows in the SMS `metadata.csv` layout (used by the tests' fake world and by `toy` tooling)."""
    from saganet.io.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*SMS_COLUMNS, "split"])
        for r in rows:
            w.writerow([r.subset, r.ytid, r.filename, r.label, r.start_ms, r.end_ms, r.split])


def write_urmp_metadata(path: str | os.PathLike, rows: list[URMPRow]) -> None:
    from saganet.io.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["video_id", "audio_id", "mask_id", "instrument", "label", "s_ts", "e_ts"])
        for r in rows:
            instr = Path(r.audio_id).name.split("_")[2] if r.audio_id.count("_") >= 2 else ""
            w.writerow([r.video_id, r.audio_id, r.mask_id, instr, r.label, r.start_ms, r.end_ms])
