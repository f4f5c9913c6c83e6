"""The empty-prompt rule of the released variants (RN-48): an empty positive prompt is the text encoder's
encoding of "" (the reference demo), a missing or empty negative prompt is the DiT's stored empty-string
feature (the reference's batch evaluation and CFG), and all-empty negatives use the DiT's own unconditional
branch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saganet.builders import build_tiny
from saganet.io.masks import MaskSpec
from saganet.io.writers import write_mask_video, write_video
from saganet.pipeline import GenerationOptions, SAGANetPipeline


@pytest.fixture(scope="module")
def model():
    m = build_tiny(seed=1)
    with torch.no_grad():  # make the stored feature differ from encode_text([""]) so the rule is visible
        m.dit.empty_string_feat.normal_(generator=torch.Generator().manual_seed(5))
    return m


def test_stored_and_encoded_empty_differ_here(model):
    assert not torch.allclose(model.dit.get_empty_string_sequence(1), model.encode_text([""]))


def test_empty_positive_prompt_is_encoded(model):
    assert model.empty_prompt == "encode"
    c = model.encode_conditions(["", "a violin"], clip_seq_len=8)
    assert torch.allclose(c.text_f[0], model.encode_text([""])[0], atol=1e-5)
    assert torch.allclose(c.text_f[1], model.encode_text(["a violin"])[0], atol=1e-5)
    c = model.encode_conditions([""], clip_seq_len=8)  # all rows empty: still encoded
    assert torch.allclose(c.text_f[0], model.encode_text([""])[0], atol=1e-5)


def test_missing_or_empty_negative_prompt_uses_the_stored_feature(model):
    stored = model.dit.get_empty_string_sequence(1)[0]
    for negatives in (None, ["", ""]):
        c = model.encode_conditions(["a", "b"], negative_prompts=negatives, clip_seq_len=8)
        assert c.negative_text_f is None  # the DiT's unconditional branch, whose text is the stored feature
    uncond = model.dit.get_empty_conditions(1)
    expected = model.dit.preprocess_conditions(model.dit.get_empty_clip_sequence(1),
                                               model.dit.get_empty_sync_sequence(1), stored[None])
    assert torch.allclose(uncond.text_f, expected.text_f)
    c = model.encode_conditions(["a", "b"], negative_prompts=["", "noise"], clip_seq_len=8)
    assert torch.allclose(c.negative_text_f[0], stored)
    assert torch.allclose(c.negative_text_f[1], model.encode_text(["noise"])[0], atol=1e-5)


def test_pipeline_default_prompts_follow_the_rule(model, tmp_path, monkeypatch):
    """`generate` with no prompt and no negative prompt: "" goes through the text encoder once (positive);
    the negative side is never encoded."""
    frames = np.random.default_rng(0).integers(0, 255, (25, 48, 64, 3), dtype=np.uint8)
    write_video(tmp_path / "v.mp4", frames, 25)
    m = np.zeros((25, 48, 64), bool)
    m[:, 10:30, 20:40] = True
    write_mask_video(tmp_path / "m.mp4", m, 25)
    pipe = SAGANetPipeline(model, "tiny")
    video = pipe.load_video(tmp_path / "v.mp4", quiet=True)
    masks = pipe.load_masks([MaskSpec(tmp_path / "m.mp4")], video)
    seen: list[list[str]] = []
    real = model.text_encoder.encode_text
    monkeypatch.setattr(model.text_encoder, "encode_text", lambda texts: seen.append(list(texts)) or real(texts))
    pipe.generate(video, masks, GenerationOptions(steps=1, progress=False))
    assert seen == [[""]]
