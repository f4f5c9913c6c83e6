"""The code cites the reference behaviours through docs/reference_notes.md, never through outside documents.

Comments used to cite quirk numbers (`Q12`), pitfall numbers and `§` sections of reference documents
that are not in the repository. They now point at entries `RN-n` of docs/reference_notes.md. These
tests fail when such an outside citation comes back, or when an `RN-n` pointer names no entry.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTES = ROOT / "docs" / "reference_notes.md"
SCANNED = ("src", "tests", "benchmarks")
SKIP_PARTS = {"__pycache__", ".pytest_cache"}

# Citations of documents outside the repository.
OUTSIDE = {
    "quirk number (Q<n>)": re.compile(r"\bQ\d+\b"),
    "pitfall number": re.compile(r"\bPitfalls?\b"),
    "section sign": re.compile("§"),
    "reference document name": re.compile(r"\bSAGANET_REFERENCE\b|\bSPEC(\.md)?\b"),
}
POINTER = re.compile(r"\bRN-(\d+)\b")
NAMED_POINTER = re.compile(r"\bRN-[A-Za-z][\w-]*")  # entries are numbered; a name would dangle
HEADING = re.compile(r"^## RN-(\d+) \S", re.M)
ANCHOR = re.compile(r'^<a id="rn-(\d+)"></a>\n## RN-(\d+) ', re.M)


def _text_files(top: str) -> list[Path]:
    out = []
    for p in sorted((ROOT / top).rglob("*")):
        if not p.is_file() or SKIP_PARTS & set(p.parts) or any(s.endswith(".egg-info") for s in p.parts):
            continue
        if p == Path(__file__).resolve():
            continue
        data = p.read_bytes()
        if b"\x00" in data:
            continue  # binary (checkpoints, images)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        out.append(p)
    return out


def _entries() -> set[int]:
    return {int(n) for n in HEADING.findall(NOTES.read_text(encoding="utf-8"))}


def test_notes_have_numbered_entries_with_stable_anchors():
    text = NOTES.read_text(encoding="utf-8")
    numbers = [int(n) for n in HEADING.findall(text)]
    assert numbers, "docs/reference_notes.md has no '## RN-<n> <title>' entries"
    assert len(numbers) == len(set(numbers)), "an RN number is used for two entries"
    anchored = {int(a) for a, h in ANCHOR.findall(text) if a == h}
    missing = sorted(set(numbers) - anchored)
    assert not missing, f'entries without a matching <a id="rn-N"></a> line right above: RN-{missing}'
    for section in ("## Behaviours we keep", "## Behaviours we fix", "## Constants and layouts"):
        assert section in text, f"missing section {section!r}"


@pytest.mark.parametrize("top", SCANNED)
def test_no_citations_of_outside_documents(top):
    found = []
    for p in _text_files(top):
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            for what, rx in OUTSIDE.items():
                if rx.search(line):
                    found.append(f"{p.relative_to(ROOT)}:{i}: {what}: {line.strip()[:100]}")
    assert not found, ("cite docs/reference_notes.md ('(RN-n)') instead of outside documents:\n"
                       + "\n".join(found))


@pytest.mark.parametrize("top", SCANNED)
def test_every_pointer_names_an_existing_entry(top):
    entries = _entries()
    bad = []
    for p in _text_files(top):
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            bad += [f"{p.relative_to(ROOT)}:{i}: RN-{n}" for n in POINTER.findall(line) if int(n) not in entries]
            bad += [f"{p.relative_to(ROOT)}:{i}: {m} (use the entry number)" for m in NAMED_POINTER.findall(line)]
    assert not bad, "pointers to entries that docs/reference_notes.md does not have:\n" + "\n".join(bad)


def test_src_points_at_the_notes():
    cited = {int(n) for p in _text_files("src") for n in POINTER.findall(p.read_text(encoding="utf-8"))}
    assert cited, "no comment in src/ points at docs/reference_notes.md"


def test_the_checks_catch_what_they_should():
    """The patterns themselves: outside citations are caught, ordinary words and names are not."""
    caught = ["see Q17", "(Pitfall 13)", "reference §6.1", "SAGANET_REFERENCE.md", "SPEC §7", "SPEC.md"]
    ignored = ["ASPECT_TOLERANCE = 0.02", "QKV bias", "quantile Q", "RN-3", "a pitfall of floats"]
    assert all(any(rx.search(s) for rx in OUTSIDE.values()) for s in caught)
    assert not any(rx.search(s) for s in ignored for rx in OUTSIDE.values())
    assert POINTER.findall("(RN-7, RN-12)") == ["7", "12"]
    assert NAMED_POINTER.findall("(reference notes RN-LORA-MERGED; RN-7)") == ["RN-LORA-MERGED"]
