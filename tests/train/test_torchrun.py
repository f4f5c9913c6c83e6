"""2-process torchrun (gloo, CPU) runs of the tiny variant through `python -m saganet.train`.

- trains, saves, is killed with SIGKILL, resumes, and ends with the same weights as an uninterrupted run
  (per-rank RNG states and the data position are part of the state);
- every rank's data and noise differ;
- the time budget is agreed across ranks: one rank over budget stops every rank at the same step;
- validation clips are sampled by both ranks and scored on rank 0, identically after a resume.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from saganet.train.state import load_state

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
COMMON = ["toy_n_train=12", "toy_n_val=3", "steps=6", "batch_size=4", "ckpt_every=2", "val_every=2"]
# validation clips sampled and scored every 2 steps, the 3 clips shared by the 2 ranks
SAMPLING = ["sample_every=2", "sample_n=3", "sample_batch_size=1", "sample_steps=2", "sample_metrics=panns",
            "sample_eval_weights=random", "sample_eval_size=tiny"]

SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    import torch
    torch.set_num_threads(1)
    import torch.distributed as dist
    from saganet.train import config, recipe, trainer as T

    mode, out = sys.argv[1], sys.argv[2]
    orig_step, orig_init = T.Trainer.train_step, T.Trainer.__init__

    def init(self, *a, **k):
        orig_init(self, *a, **k)
        if mode == "stop" and self.rank == 1:
            self.cfg.max_minutes = 1e-9  # only this rank is over budget
        # what each rank reads in epoch 0 and its first noise draw (on a copy of its generator)
        g = torch.Generator(device=self.device)
        g.set_state(self.rng.get_state())
        self.sampler.set_position(0, 0)
        rec = {"indices": list(iter(self.sampler)), "noise": torch.randn(4, generator=g).tolist()}
        with open(os.path.join(out, f"rank{self.rank}.json"), "w") as f:
            json.dump(rec, f)

    def step(self):
        if mode == "kill" and self.rank == 0 and self.step == 3:
            os.kill(os.getpid(), signal.SIGKILL)  # mid-epoch, one step after the checkpoint at step 2
        return orig_step(self)

    T.Trainer.__init__, T.Trainer.train_step = init, step
    cfg = config.load_config("tiny_test", sys.argv[3:] + [f"out_dir={out}"])
    hist = recipe.TrainingRecipe(cfg).run(quiet=True)
    sys.stdout.write(f"rank {os.environ['RANK']} stopped at step {hist[-1]['step']}\\n")
    sys.stdout.flush()
""")


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", *args],
                          capture_output=True, text=True, timeout=600, env=env, cwd=cwd)


def test_kill_resume_equals_uninterrupted(tmp_path):
    script = tmp_path / "run_train.py"
    script.write_text(SCRIPT)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir()
    killed.mkdir()
    r = _torchrun(["-m", "saganet.train", "tiny_test", f"out_dir={straight}", *COMMON, *SAMPLING, "-q"], tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]

    r = _torchrun([str(script), "kill", str(killed), *COMMON, *SAMPLING], tmp_path)
    assert r.returncode != 0  # rank 0 was SIGKILLed
    assert load_state(killed / "ckpt_last.pt")["step"] == 2
    r = _torchrun(["-m", "saganet.train", "tiny_test", f"out_dir={killed}", *COMMON, *SAMPLING, "-q"], tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]

    a, b = load_state(straight / "ckpt_last.pt"), load_state(killed / "ckpt_last.pt")
    assert a["step"] == b["step"] == 6 and a["world_size"] == 2
    for k, v in a["trainables"].items():
        torch.testing.assert_close(b["trainables"][k], v, rtol=0, atol=0, msg=k)
    for k, v in a["ema"].items():
        torch.testing.assert_close(b["ema"][k], v, rtol=0, atol=0, msg=k)
    ea, eb = torch.load(straight / "weights_final.pth"), torch.load(killed / "weights_final.pth")
    for k, v in ea["network"].items():
        assert torch.equal(eb["network"][k], v), k

    # every rank's data and noise differ (and each rank's own RNG state is what was saved)
    r0, r1 = (json.loads((killed / f"rank{i}.json").read_text()) for i in (0, 1))
    assert not set(r0["indices"]) & set(r1["indices"]) and len(r0["indices"]) == len(r1["indices"]) == 6
    assert r0["noise"] != r1["noise"]
    rng = a["rng"]
    assert len(rng) == 2 and not torch.equal(rng[0]["noise"], rng[1]["noise"])
    assert not list(killed.glob(".*"))  # no temp files left

    # both ranks generated validation clips at steps 2, 4, 6; rank 0 scored them; the resumed run's
    # samples equal the uninterrupted run's
    for step in (2, 4, 6):
        fa, fb = (run / "samples" / f"step_{step:08d}" for run in (straight, killed))
        names = sorted(p.name for p in (fa / "generated").glob("*.flac"))
        assert names == ["00000.flac", "00001.flac", "00002.flac"]
        assert json.loads((fa / "metrics.json").read_text())["n_items"] == 3
        for n in names:
            assert (fa / "generated" / n).read_bytes() == (fb / "generated" / n).read_bytes(), (step, n)
    logged = [json.loads(line) for line in (straight / "log.jsonl").read_text().splitlines()]
    assert [p["step"] for p in logged if "sample/n" in p] == [2, 4, 6]


def test_time_budget_is_agreed_across_ranks(tmp_path):
    script = tmp_path / "run_train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "stop"
    out.mkdir()
    r = _torchrun([str(script), "stop", str(out), *COMMON], tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]  # a rank waiting forever would time out
    assert "rank 0 stopped at step 1" in r.stdout and "rank 1 stopped at step 1" in r.stdout
    assert load_state(out / "ckpt_last.pt")["step"] == 1
