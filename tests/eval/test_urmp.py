"""The URMP protocol end to end on the shipped URMP clip with the toy model (`variant="toy"`).

The shipped clip has the mixture video and both players' masks but not their separated stems
(`AuSep_*`), so the test writes stand-in stems (tones) next to links to the shipped files: what is
tested is the protocol (rows, per-player generation with mask and label, scoring against the stem,
resume, outputs), not the scores."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from saganet.errors import InputError
from saganet.eval import EvalOptions
from saganet.eval.urmp import run_urmp, scan_urmp, urmp_rows

URMP = "media/urmp_09_jesus_tpt_vn"
pytestmark = pytest.mark.requires_reference_data(URMP)
FAST = dict(weights="random", size="tiny", progress=False)
STEMS = {"AuSep_1_tpt_09_Jesus_159092_164092.wav": 466.0, "AuSep_2_vn_09_Jesus_159092_164092.wav": 660.0}


@pytest.fixture(scope="module")
def urmp_root(tmp_path_factory, shared_dir):
    root = tmp_path_factory.mktemp("urmp") / "data"
    piece = root / "09_Jesus_tpt_vn"
    piece.mkdir(parents=True)
    for f in (shared_dir / URMP).glob("*.mp4"):
        os.symlink(f, piece / f.name)
    t = np.arange(48000 * 5) / 48000
    for name, hz in STEMS.items():
        sf.write(str(piece / name), (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), 48000)
    return root


@pytest.fixture(scope="module")
def urmp_run(urmp_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("urmp_out") / "out"
    opts = EvalOptions(families=("panns", "target_distractor"), **FAST)
    res = run_urmp(urmp_root, out, variant="toy", opts=opts, steps=2)
    return urmp_root, out, res


def test_rows_from_file_names(urmp_root):
    rows = scan_urmp(urmp_root)
    assert [(r.label, r.stem.name) for r in rows] == [("trumpet", "AuSep_1_tpt_09_Jesus_159092_164092.wav"),
                                                        ("violin", "AuSep_2_vn_09_Jesus_159092_164092.wav")]
    assert rows[0].scene == rows[1].scene == "09_Jesus_tpt_vn/Vid_09_Jesus_tpt_vn_159092_164092"


def test_end_to_end_generates_each_player_and_scores(urmp_run):
    _, out, res = urmp_run
    gen = sorted(p.name for p in (out / "generated").iterdir())
    assert gen == [n.replace(".wav", ".flac") for n in sorted(STEMS)]
    wav, sr = sf.read(str(out / "generated" / gen[0]))
    assert sr == 16000 and len(wav) > sr and np.abs(wav).max() > 0
    assert res["n_items"] == 2 and res["urmp"]["rows"] == 2
    for k in ("FD_PANNs", "KL_PANNs", "IS_PANNs", "TD_accuracy"):
        assert np.isfinite(res["metrics"][k])
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["urmp"]["variant"] == "toy" and (out / "metrics.md").is_file()


def test_resume_skips_generated_rows(urmp_run):
    root, out, _ = urmp_run
    before = {p.name: p.stat().st_mtime_ns for p in (out / "generated").iterdir()}
    res = run_urmp(root, out, variant="toy", opts=EvalOptions(families=("panns",), overwrite=True, **FAST), steps=2)
    after = {p.name: p.stat().st_mtime_ns for p in (out / "generated").iterdir()}
    assert before == after and res["cache"]["hits"] == 4  # embeddings come from the cache too


def test_missing_stem_is_a_listed_skip_and_metadata_rows(urmp_run, tmp_path):
    root, out, _ = urmp_run
    root2 = tmp_path / "data"
    shutil.copytree(root, root2, symlinks=True)
    (root2 / "09_Jesus_tpt_vn" / "AuSep_2_vn_09_Jesus_159092_164092.wav").unlink()
    shutil.copytree(out / "generated", tmp_path / "out" / "generated")
    res = run_urmp(root2, tmp_path / "out", variant="toy", opts=EvalOptions(families=("panns",), **FAST))
    assert res["skipped"] == {"AuSep_2_vn_09_Jesus_159092_164092": "no separated stem AuSep_2_vn_09_Jesus_159092_164092.wav"}
    tsv = tmp_path / "metadata.tsv"
    piece = "09_Jesus_tpt_vn"
    tsv.write_text("video\taudio\tmask\tx\tlabel\tx\ts\te\n"
                   f"{piece}/Vid_09_Jesus_tpt_vn_159092_164092\t{piece}/AuSep_1_tpt_09_Jesus_159092_164092\t"
                   f"{piece}/Masks_01_tpt_09_Jesus_159092_164092\t-\ttrumpet\t-\t159092\t164092\n")
    rows = urmp_rows(root2, tsv)
    assert len(rows) == 1 and rows[0].label == "trumpet" and rows[0].mask.is_file()


def test_bad_roots_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        urmp_rows(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no URMP rows"):
        urmp_rows(tmp_path / "empty")


@pytest.mark.slow
def test_torchrun_two_ranks_shard_rows_and_rank0_merges(urmp_root, tmp_path):
    out = tmp_path / "out"
    code = ("import sys; from saganet.eval import EvalOptions; from saganet.eval.urmp import run_urmp; "
            f"run_urmp({str(urmp_root)!r}, {str(out)!r}, variant='toy', steps=2, "
            "opts=EvalOptions(families=('panns',), weights='random', size='tiny', progress=False))")
    script = tmp_path / "run.py"
    script.write_text(code)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
                        str(script)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((out / "metrics.json").read_text())
    assert res["urmp"]["world_size"] == 2 and res["n_items"] == 2
    assert len(list((out / "generated").glob("*.flac"))) == 2
