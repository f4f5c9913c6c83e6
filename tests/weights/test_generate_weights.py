"""`saganet generate --weights FILE --model-dir ...`: a tiny fine-tuned checkpoint in the reference layout
generates through the CLI; the released files come from one plain folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import TINY_CLIP, saganet_checkpoint
from saganet import registry
from saganet.app.cli import main
from saganet.io.writers import write_mask_video, write_video
from saganet.models import clip as clip_models


@pytest.fixture()
def clip_files(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (30, 48, 64, 3), dtype=np.uint8)
    write_video(tmp_path / "video.mp4", frames, 25)
    m = np.zeros((30, 48, 64), bool)
    m[:, 10:30, 20:40] = True
    write_mask_video(tmp_path / "violin.mp4", m, 25)
    return tmp_path / "video.mp4", tmp_path / "violin.mp4"


def _generate(capsys, video, mask, out, *extra) -> tuple[int, str]:
    code = main(["generate", str(video), "--mask", str(mask), "--variant", "saganet_small", "--steps", "1",
                 "--no-video", "--format", "wav", "-q", "-o", str(out), *map(str, extra)])
    return code, capsys.readouterr().err


def test_generate_with_finetuned_weights_and_one_model_dir(released, clip_files, tmp_path, capsys):
    video, mask = clip_files
    root = released["saganet.pth"].parent
    clip = clip_models.finish_encoder(clip_models.build_clip_model(TINY_CLIP), None)
    ft = tmp_path / "finetuned.pth"
    torch.save(saganet_checkpoint(registry.get_variant("saganet_small"), clip, seed=11), ft)
    code, err = _generate(capsys, video, mask, tmp_path / "a", "--model-dir", f"all={root}", "--weights", ft)
    assert code == 0, err
    wavs = sorted((tmp_path / "a").rglob("*.wav"))
    assert wavs, list((tmp_path / "a").rglob("*"))
    run = next((tmp_path / "a").rglob("run.json"), None)
    if run is not None:
        assert json.loads(run.read_text())["variant"] == "saganet_small"
    # the released file from the same folder gives other audio (the weights really were replaced)
    code, err = _generate(capsys, video, mask, tmp_path / "b", "--model-dir", f"all={root}")
    assert code == 0, err
    other = sorted((tmp_path / "b").rglob("*.wav"))
    assert [p.name for p in other] == [p.name for p in wavs]
    assert any(a.read_bytes() != b.read_bytes() for a, b in zip(wavs, other))


def test_generate_with_a_wrong_weights_file_is_one_line(released, clip_files, tmp_path, capsys):
    video, mask = clip_files
    root = released["saganet.pth"].parent
    code, err = _generate(capsys, video, mask, tmp_path / "o", "--model-dir", f"all={root}",
                          "--weights", released["v1-44.pth"])
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("saganet: error: --weights ")
    assert "not a SAGANet checkpoint" in lines[0] and "md5" not in lines[0].lower()
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.wav"))
