"""ingest: metadata + raw folders -> clips; missing and corrupt sources recorded; kill -9 and resume."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from saganet.data.cut import cut_clip, read_audio_window
from saganet.data.ingest import MANIFEST_NAME, ingest, read_clip_table
from saganet.data.manifest import Manifest, stale_temps
from saganet.data.metadata import SMSRow, read_sms_metadata, read_urmp_metadata, write_sms_metadata
from saganet.errors import InputError
from saganet.io.video import decode_video, probe_video

REPO = Path(__file__).resolve().parents[2]


def test_sms_ingest_layout_missing_and_corrupt(fake_world, tmp_path):
    root = tmp_path / "sms"
    rep = ingest("sms", fake_world.sms_metadata, root, fake_world.sources, workers=1, quiet=True)
    good = [r for r in fake_world.sms_rows if r.ytid not in (fake_world.missing_ytid, fake_world.corrupt_ytid)]
    assert len(rep.done) == len(good) and len(rep.failed) == 2
    assert any("MISSING0000" in m for m in rep.missing)
    corrupt = next(k for k in rep.failed if "CORRUPT" in k)
    assert "corrupt" in rep.failed[corrupt]
    for r in good:
        stem = r.filename if r.subset == "avs-semantic" else r.cut_stem
        p = root / r.label / f"{stem}.mp4"
        info = probe_video(p)
        assert info.has_audio and abs(info.duration - r.duration) < 0.05
    table = read_clip_table(root)
    assert sorted(t["id"] for t in table) == sorted(rep.done)
    assert {t["split"] for t in table} == {"train", "val"}
    man = Manifest(root / MANIFEST_NAME)
    assert man.failed().keys() == rep.failed.keys()
    # a second run changes nothing that is done and retries only the failures
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*.mp4")}
    rep2 = ingest("sms", fake_world.sms_metadata, root, fake_world.sources, workers=1, quiet=True)
    assert sorted(rep2.skipped) == sorted(rep.done) and rep2.failed.keys() == rep.failed.keys()
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.mp4")} == mtimes


def test_cut_matches_source_window(fake_world, tmp_path):
    src = next(fake_world.sources["music21"].rglob("ytmus00.mp4"))
    dest = tmp_path / "c.mp4"
    cut_clip(src, dest, 1.2, 3.2)
    a = decode_video(src, start=1.2, duration=2.0, clip_size=16, sync_size=64, quiet=True)
    b = decode_video(dest, clip_size=16, sync_size=64, quiet=True)
    assert b.sync_frames.shape == a.sync_frames.shape == (50, 3, 64, 64)
    assert (a.sync_frames - b.sync_frames).abs().mean() < 0.03  # frames of the same times (h264 noise only)
    x, _ = read_audio_window(src, 1.2, 3.2)
    y, _ = read_audio_window(dest, 0.0, 2.0)
    # same samples, no offset: AAC noise only, far below the signal
    assert np.abs(x - y).mean() < 0.1 * np.abs(x).mean()
    with pytest.raises(InputError):
        cut_clip(src, tmp_path / "late.mp4", 10.0, 12.0)
    assert not (tmp_path / "late.mp4").exists() and not list(tmp_path.glob(".late*"))


def test_urmp_ingest_cuts_video_and_stems(fake_world, tmp_path):
    root = tmp_path / "urmp"
    rep = ingest("urmp", fake_world.urmp_metadata, root, {"urmp": fake_world.urmp_source}, workers=1, quiet=True)
    assert not rep.failed and len(rep.done) == 2
    import soundfile as sf

    for r in read_urmp_metadata(fake_world.urmp_metadata):
        assert (root / f"{r.video_id}.mp4").is_file()
        a, sr = sf.read(root / f"{r.audio_id}.wav")
        assert sr == 16000 and len(a) == 32000
        # the stem window is the player's audio at that time (the source stem cut at the same window)
        full, _ = sf.read(next(fake_world.urmp_source.rglob(f"AuSep_{r.player}_*.wav")))
        np.testing.assert_allclose(a, full[r.start_ms * 16:r.end_ms * 16], atol=1e-6)


def test_metadata_errors(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="lacks the column"):
        read_sms_metadata(bad)
    write_sms_metadata(bad, [SMSRow("solos", "x", "", "violin", 10, 5, "train")])
    with pytest.raises(InputError, match="end_msec"):
        read_sms_metadata(bad)
    write_sms_metadata(bad, [SMSRow("solos", "x", "", "../etc", 0, 5, "train")])
    with pytest.raises(InputError, match="file name"):
        read_sms_metadata(bad)
    with pytest.raises(InputError, match="not found"):
        read_sms_metadata(tmp_path / "nope.csv")


def test_manifest_survives_torn_line(tmp_path):
    m = Manifest(tmp_path / "m.jsonl")
    m.record("a", "done")
    with open(tmp_path / "m.jsonl", "a") as f:
        f.write('{"id": "b", "stat')  # killed mid-write
    m2 = Manifest(tmp_path / "m.jsonl")
    assert m2.done() == {"a"}
    m2.record("b", "failed", "x")
    assert Manifest(tmp_path / "m.jsonl").failed() == {"b": "x"}


def _many_windows(fake_world, path: Path, n: int) -> list[SMSRow]:
    rows = []
    longs = [r for r in fake_world.sms_rows if r.subset != "avs-semantic" and r.ytid.startswith("yt")]
    for i in range(n):
        r = longs[i % len(longs)]
        a = 40 * i % 2000
        rows.append(SMSRow(r.subset, r.ytid, "", r.label, a, a + 2000, "train"))
    write_sms_metadata(path, rows)
    return rows


@pytest.mark.slow
def test_kill9_then_resume(fake_world, tmp_path):
    meta, root = tmp_path / "meta.csv", tmp_path / "sms"
    rows = _many_windows(fake_world, meta, 48)
    code = ("import sys; from pathlib import Path; from saganet.data.ingest import ingest; "
            f"ingest('sms', {str(meta)!r}, {str(root)!r}, "
            f"{ {k: str(v) for k, v in fake_world.sources.items()}!r}, workers=2, quiet=True)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    manifest = root / MANIFEST_NAME
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            if manifest.exists() and manifest.read_text().count('"done"') >= 6:
                break
            assert proc.poll() is None, "ingest finished before it could be killed: use more clips"
            time.sleep(0.02)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: parent and its worker processes
        proc.wait()
    before = Manifest(manifest).done()
    assert 6 <= len(before) < len(rows)
    done_mtimes = {c: (root / f"{c}.mp4").stat().st_mtime_ns for c in before}
    # plant a temporary like the one a kill during a write leaves behind
    final = root / rows[-1].label / f"{rows[-1].cut_stem}.mp4"
    final.parent.mkdir(parents=True, exist_ok=True)
    (final.parent / f".{final.stem}.k1ll3d00.mp4").write_bytes(b"partial")
    assert stale_temps([final])
    rep = ingest("sms", meta, root, fake_world.sources, workers=1, quiet=True)
    assert not rep.failed and not stale_temps([final])
    assert set(rep.skipped) <= before and len(rep.skipped) + len(rep.done) == len(rows)
    ids = [t["id"] for t in read_clip_table(root)]
    assert len(ids) == len(set(ids)) == len(rows)
    assert sorted(p.name for p in root.rglob(".*")) == []  # no temporaries left
    for c in ids:
        assert probe_video(root / f"{c}.mp4").n_frames == 50
    for c, t in done_mtimes.items():  # clips finished before the kill were not cut again
        assert (root / f"{c}.mp4").stat().st_mtime_ns == t
    recs = [json.loads(x) for x in manifest.read_text().splitlines() if x.strip()]
    assert {r["id"] for r in recs} == set(ids)
