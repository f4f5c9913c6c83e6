"""The review logic (decisions, queues, re-click, per-class stats) without a browser, and `saganet data ...`."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from saganet.data.masks import mask_paths, read_mask_meta
from saganet.data.review import ReviewTable
from saganet.data.verify import TABLE_NAME, read_table, verify
from saganet.errors import InputError
from saganet.io.masks import MaskSpec, read_mask


@pytest.fixture()
def verified(sms_root, tmp_path):
    root = tmp_path / "sms"
    shutil.copytree(sms_root, root)
    # one clip with a wrong mask (a second instance), so the queue holds an automatic reject
    mp4, js = mask_paths(root, "reed/ytsol00_0_2000")
    m = read_mask(MaskSpec(js), max_side=None).frames
    from saganet.data.masks import write_mask

    write_mask(mp4, js, m | np.roll(m, 32, axis=2), 25.0, {"grounding_score": 0.9, "consistency": 1.0})
    verify(root, quiet=True)
    return root


def test_decisions_queues_and_stats(verified):
    t = ReviewTable(verified)
    pending = t.ids("pending")
    assert pending[0] == "reed/ytsol00_0_2000"  # automatic rejects are reviewed first
    assert t.ids("rejected") == ["reed/ytsol00_0_2000"]
    t.decide("pluck/ytmus00_0_2000", "reject", note="wrong instrument")
    row = read_table(verified / TABLE_NAME)["pluck/ytmus00_0_2000"]
    assert (row["auto"], row["review"], row["decision"], row["note"]) == ("accept", "reject", "reject",
                                                                          "wrong instrument")
    assert "pluck/ytmus00_0_2000" not in ReviewTable(verified).ids("pending")
    stats = t.class_stats()
    assert stats["pluck"] == {"clips": 2, "auto_accept": 2, "auto_reject": 0, "reviewed": 1, "accepted": 1}
    assert stats["reed"]["auto_reject"] == 1 and t.reasons() == {"single": 1}
    t.decide("pluck/ytmus00_0_2000", "clear")
    assert read_table(verified / TABLE_NAME)["pluck/ytmus00_0_2000"]["decision"] == "accept"
    with pytest.raises(InputError):
        t.decide("pluck/ytmus00_0_2000", "maybe")
    with pytest.raises(InputError):
        t.decide("nope/clip", "accept")
    with pytest.raises(InputError):
        t.ids("someday")


def test_reclick_resegments_and_rechecks(verified, fake_world, palette):
    from saganet.app.data_review import ReviewSession

    s = ReviewSession(verified, segmenter="color", palette=palette)
    cid = "reed/ytsol00_0_2000"
    assert s.table.row(cid)["decision"] == "reject"
    truth = fake_world.truth["ytsol00"][0]
    ys, xs = np.nonzero(truth)
    shown = s.frame(cid, 0.0)
    assert shown.shape[0] == 320 and s.click_to_video(33.0, 65.0) == (33.0 / 5, 65.0 / 5)  # 64 px shown x5
    first = s.preview(cid)
    assert first.is_file()
    info = s.reclick(cid, float(np.median(xs)), float(np.median(ys)), 0.0)
    assert "decision **accept**" in info
    meta = read_mask_meta(mask_paths(verified, cid)[1])
    assert meta["source"] == "click"
    m = read_mask(MaskSpec(mask_paths(verified, cid)[1]), max_side=None).frames[0]
    assert np.logical_and(m, truth).sum() / np.logical_or(m, truth).sum() > 0.7
    second = s.preview(cid)
    assert second != first and second.is_file()  # a fresh preview of the new mask
    assert s.stats_rows()[[r[0] for r in s.stats_rows()].index("reed")][3] == 0  # no automatic reject left


def test_review_app_builds(verified, palette):
    import gradio  # noqa: F401  (a dependency of the data extra: a missing one is an error, not a skip)

    from saganet.app.data_review import build_review_app

    app = build_review_app(verified, segmenter="color", palette=palette)
    assert app is not None


def _cli(*args):
    from saganet.app.cli import main

    return main(["data", *args])


@pytest.mark.slow
def test_cli_end_to_end(fake_world, tmp_path, capsys):
    root, feats = tmp_path / "sms", tmp_path / "feats"
    src = fake_world.sources
    assert _cli("ingest", "sms", str(fake_world.sms_metadata), "-o", str(root), "--music21", str(src["music21"]),
                "--solos", str(src["solos"]), "--avsbench", str(src["avs-semantic"]), "--workers", "1", "-q") == 0
    out = capsys.readouterr().out
    assert "missing sources (1)" in out and "MISSING0000" in out and "failed reed/CORRUPT0000_0_2000" in out
    assert _cli("masks", str(root), "--segmenter", "color", "-q") == 0
    assert _cli("verify", str(root), "-q") == 0
    assert "10 accepted, 0 rejected" in capsys.readouterr().out
    assert _cli("focal", str(root), "--size", "64", "--min-size", "16", "-q") == 0
    assert _cli("extract", str(root), "-o", str(feats), "--variant", "tiny", "-q") == 0
    assert (feats / "train" / "index.json").is_file() and (feats / "val" / "index.json").is_file()
    capsys.readouterr()
    assert _cli("stats", str(root)) == 0
    out = capsys.readouterr().out
    assert "10 clips, 6 classes" in out and "missing source: 1" in out and "cannot read as a video: 1" in out
    assert _cli("stats", str(root), "--json") == 0
    import json

    s = json.loads(capsys.readouterr().out)
    assert s["per_class"]["pluck"]["train"] == {"clips": 2, "accepted": 2}


@pytest.mark.parametrize("args, needle", [
    (("masks", "/nonexistent/root"), "dataset root not found"),
    (("stats", "/"), "no clips.csv"),
    (("ingest", "sms", "/nonexistent/meta.csv", "-o", "OUT", "--solos", "."), "metadata file not found"),
    (("ingest", "sms", "meta.csv", "-o", "OUT"), "at least one raw folder"),
    (("ingest", "urmp", "meta.tsv", "-o", "OUT"), "--urmp"),
    (("ingest", "sms", "meta.csv", "-o", "OUT", "--solos", ".", "--crf", "99"), "--crf"),
])
def test_cli_bad_input_one_line(args, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _cli(*args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("saganet: error:") and needle in err[0]
    assert not (tmp_path / "OUT").exists()  # nothing written


def test_cli_bad_palette(sms_root, capsys):
    assert _cli("masks", str(sms_root), "--segmenter", "color", "--palette", "violin=1,2") == 2
    assert "bad --palette" in capsys.readouterr().err
