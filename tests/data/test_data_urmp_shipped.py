"""The shipped URMP clip (`../shared/media/urmp_09_jesus_tpt_vn`, 1080p h264 + AAC): cut a window from it as if
it were the whole performance, copy the pre-cut window with its shipped per-player masks, and read the test set.
The separated stems are not shipped: the tests make stand-ins from the clip's own audio (labelled as such)."""

from __future__ import annotations

import numpy as np
import pytest

from reference_data import require_reference_data
from saganet.data.cut import CutOptions, read_audio_window
from saganet.data.datasets import URMPTest
from saganet.data.detail import FocalOptions
from saganet.data.ingest import ingest
from saganet.data.metadata import URMPRow, write_urmp_metadata
from saganet.io.audio import write_audio
from saganet.io.video import decode_video, probe_video

PIECE = "09_Jesus_tpt_vn"
WIN = "159092_164092"


@pytest.fixture(scope="module")
def urmp_raw(media_dir, tmp_path_factory):
    src = media_dir / "urmp_09_jesus_tpt_vn"
    clip = src / f"Vid_{PIECE}_{WIN}.mp4"
    require_reference_data(clip)  # skips with the reason in a clone without ../shared; fails in CI
    base = tmp_path_factory.mktemp("urmp_shipped")
    pdir = base / "raw" / PIECE
    pdir.mkdir(parents=True)
    (pdir / f"Vid_{PIECE}.mp4").symlink_to(clip)  # "the whole performance" for the cut path
    (pdir / f"Vid_{PIECE}_{WIN}.mp4").symlink_to(clip)  # the pre-cut window for the copy path
    wav, sr = read_audio_window(clip, 0.0, 5.0, mono=True)
    for k, instr in ((1, "tpt"), (2, "vn")):  # stand-in stems: the mixture's audio, scaled per player
        write_audio(pdir / f"AuSep_{k}_{instr}_09_Jesus.wav", wav[0] * (0.5 if k == 1 else 0.25), sr)
        write_audio(pdir / f"AuSep_{k}_{instr}_09_Jesus_{WIN}.wav", wav[0] * (0.5 if k == 1 else 0.25), sr)
    rows = []
    for a, b in ((1000, 3000), (159092, 164092)):
        for k, instr, label in ((1, "tpt", "trumpet"), (2, "vn", "violin")):
            rows.append(URMPRow(f"{PIECE}/Vid_{PIECE}_{a}_{b}", f"{PIECE}/AuSep_{k}_{instr}_09_Jesus_{a}_{b}",
                                f"{PIECE}/Masks_{k:02d}_{instr}_09_Jesus_{a}_{b}", label, a, b))
    write_urmp_metadata(base / "metadata.tsv", rows)
    return base, src, clip


@pytest.mark.slow
def test_cut_and_copy_from_real_clip(urmp_raw):
    base, src, clip = urmp_raw
    root = base / "urmp"
    rep = ingest("urmp", base / "metadata.tsv", root, {"urmp": base / "raw"}, workers=1,
                 opts=CutOptions(max_side=256), quiet=True)
    assert not rep.failed and len(rep.done) == 2
    cut = root / PIECE / f"Vid_{PIECE}_1000_3000.mp4"
    info = probe_video(cut)
    assert (info.width, info.height) == (256, 144) and info.has_audio and abs(info.duration - 2.0) < 0.05
    a = decode_video(clip, start=1.0, duration=2.0, clip_size=16, sync_size=64, quiet=True)
    b = decode_video(cut, clip_size=16, sync_size=64, quiet=True)
    assert (a.sync_frames - b.sync_frames).abs().mean() < 0.05  # the same moments of the performance
    x, _ = read_audio_window(clip, 1.0, 3.0, mono=True)
    y, _ = read_audio_window(cut, 0.0, 2.0, mono=True)
    assert np.corrcoef(x[0], y[0])[0, 1] > 0.95
    copied = root / PIECE / f"Vid_{PIECE}_{WIN}.mp4"
    assert copied.read_bytes() == clip.read_bytes()

    # the shipped masks sit where the metadata says (as the SMS/URMP download ships them)
    for k, instr in ((1, "tpt"), (2, "vn")):
        (root / PIECE / f"Masks_{k:02d}_{instr}_09_Jesus_{WIN}.mp4").write_bytes(
            (src / f"Masks_{k:02d}_{instr}_09_Jesus_{WIN}.mp4").read_bytes())
    ds = URMPTest(root, duration=5.0, size=64, sample_rate=16000, clip_size=32,
                  focal_opts=FocalOptions("reference", 64, 16))
    assert len(ds) == 2  # only the window whose masks exist
    tpt, vn = ds[0], ds[1]
    assert tpt["label"] == "trumpet" and vn["label"] == "violin"
    assert tpt["sync_frames"].shape == (125, 3, 64, 64) and tpt["masks"].shape == (125, 1, 64, 64)
    assert 0 < tpt["masks"].mean() < 0.5 and 0 < vn["masks"].mean() < 0.5
    # the two players' masks are different regions of the frame
    inter = (tpt["masks"] * vn["masks"]).sum() / torch_min(tpt["masks"].sum(), vn["masks"].sum())
    assert inter < 0.1
    assert tpt["target"].shape == (80000,) and abs(float(tpt["target"].abs().mean() / vn["target"].abs().mean())
                                                 - 2.0) < 0.05


def torch_min(a, b):
    return a if a < b else b
