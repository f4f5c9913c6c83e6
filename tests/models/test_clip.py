"""CLIP encoder on a tiny open_clip config (offline): frame and per-token text features."""

import json

import pytest
import torch
from safetensors.torch import save_file

from saganet.errors import CheckpointError
from saganet.models.clip import ClipEncoder, from_config, from_pretrained
from saganet.pretrained import clip_from_checkpoint as from_checkpoint

TINY_CFG = {
    "embed_dim": 16,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 24, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def enc() -> ClipEncoder:
    torch.manual_seed(0)
    return from_config(TINY_CFG)


def test_text_features_per_token(enc):
    feats = enc.encode_text(["a violin", "a trumpet", "a violin"])
    assert feats.shape == (3, 77, 24) and enc.text_dim == 24 and enc.context_length == 77
    assert torch.allclose(feats.norm(dim=-1), torch.ones(3, 77), atol=1e-5)
    assert not torch.allclose(feats[0], feats[1])
    assert torch.allclose(feats[0], feats[2])
    # causal mask: the first token (<start>) cannot see what follows, so it is the same for all texts
    assert torch.allclose(feats[0, 0], feats[1, 0], atol=1e-6)


def test_empty_text_features(enc):
    e = enc.empty_text_features(2)
    assert e.shape == (2, 77, 24)
    assert torch.allclose(e[0], enc.encode_text([""])[0])


def test_frame_features(enc):
    frames = torch.rand(2, 5, 3, 40, 56)
    feats = enc.encode_frames(frames)
    assert feats.shape == (2, 5, 16) and enc.image_dim == 16
    assert torch.allclose(feats.norm(dim=-1), torch.ones(2, 5), atol=1e-5)
    assert torch.allclose(enc.encode_frames(frames, batch_size=3), feats, atol=1e-5)  # batching over frames
    assert not torch.allclose(feats[0, 0], feats[0, 1])
    with pytest.raises(ValueError):
        enc.encode_frames(torch.rand(1, 2, 1, 32, 32))


def test_frames_at_model_size_are_not_resized(enc):
    frames = torch.rand(1, 2, 3, 32, 32)
    x = (frames[0] - enc.mean) / enc.std
    expected = enc.model.encode_image(x, normalize=True)
    assert torch.allclose(enc.encode_frames(frames)[0], expected, atol=1e-6)


def test_from_checkpoint_folder_and_file(enc, tmp_path):
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG}))
    save_file(enc.model.state_dict(), str(tmp_path / "open_clip_model.safetensors"))
    loaded = from_checkpoint(tmp_path, tokenizer=None)
    assert torch.allclose(loaded.encode_text(["a cello"]), enc.encode_text(["a cello"]), atol=1e-6)
    again = from_checkpoint(tmp_path / "open_clip_model.safetensors", model_cfg=TINY_CFG, tokenizer=None)
    frames = torch.rand(1, 2, 3, 32, 32)
    assert torch.allclose(again.encode_frames(frames), enc.encode_frames(frames), atol=1e-6)
    with pytest.raises(CheckpointError):
        from_checkpoint(tmp_path / "missing.safetensors", model_cfg=TINY_CFG)
    other = dict(TINY_CFG, embed_dim=8)
    with pytest.raises(CheckpointError, match="shape"):
        from_checkpoint(tmp_path / "open_clip_model.safetensors", model_cfg=other)


def test_from_pretrained_offline_is_one_line_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="cannot load CLIP") as e:
        from_pretrained("hf-hub:someone/not-cached-clip")
    assert "\n" not in str(e.value)


def test_from_checkpoint_dfn5b_folder_layout(tmp_path):
    """The released hub folder: open_clip_config.json ({"model_cfg", "preprocess_cfg"}) + a pickled
    open_clip_pytorch_model.bin, read with the released tokenizer (77 tokens)."""
    cfg = dict(TINY_CFG)
    torch.manual_seed(1)
    src = from_config(cfg)
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    torch.save(src.model.state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    enc = from_checkpoint(tmp_path)
    assert enc.context_length == 77 and enc.tokenize(["a violin"]).shape == (1, 77)
    assert torch.allclose(enc.encode_text(["a violin"]), src.encode_text(["a violin"]), atol=1e-6)
    (tmp_path / "open_clip_pytorch_model.bin").unlink()
    with pytest.raises(CheckpointError, match="no open_clip weights"):
        from_checkpoint(tmp_path)
