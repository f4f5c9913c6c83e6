"""Where a model is read from: --model-dir over SAGANET_MODEL_DIR_* over models.toml over the caches."""

from __future__ import annotations

from pathlib import Path

import pytest

from saganet import weights
from saganet.errors import CheckpointError, InputError
from saganet.weights import HubModel


def _clip_folder(path):
    path.mkdir(parents=True)
    (path / "open_clip_config.json").write_text("{}")
    (path / "open_clip_pytorch_model.bin").write_bytes(b"x" * 1000)
    return path


def test_precedence_flag_env_config(tmp_path, monkeypatch):
    a, b, c = (_clip_folder(tmp_path / n) for n in "abc")
    cfg = weights.model_config_file()
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f'[models]\nclip = "{c}"\n')
    src = weights.model_source("clip")
    assert (src.origin, src.path, src.where, src.present) == ("config", c, str(cfg), True)
    assert src.size == 1000 + 2 and src.size_exact
    monkeypatch.setenv("SAGANET_MODEL_DIR_CLIP", str(b))
    assert weights.model_source("clip").path == b and weights.model_source("clip").where == "SAGANET_MODEL_DIR_CLIP"
    src = weights.model_source("clip", model_dirs={"clip": str(a)})
    assert src.path == a and src.origin == "model-dir" and src.where == f"--model-dir clip={a}"
    assert weights.resolve_hub("clip", model_dirs={"clip": str(a)}) == a


def test_aliases_and_unknown_keys(tmp_path, monkeypatch):
    big = tmp_path / "big"
    big.mkdir()
    (big / "config.json").write_text("{}")
    (big / "bigvgan_generator.pt").write_bytes(b"1")
    assert weights.model_source("bigvgan_v2", model_dirs={"bigvgan": str(big)}).path == big
    monkeypatch.setenv("SAGANET_MODEL_DIR_BIGVGAN", str(big))
    assert weights.model_source("bigvgan_v2").where == "SAGANET_MODEL_DIR_BIGVGAN"
    monkeypatch.setenv("SAGANET_MODEL_DIR_SAM2", str(big))
    assert weights.model_source("sam2.1-tiny").origin == "env"
    assert weights.env_var("sam2.1-base-plus") == "SAGANET_MODEL_DIR_SAM2_1_BASE_PLUS"
    with pytest.raises(InputError, match="unknown model 'clap'.*clip"):
        weights.model_source("clip", model_dirs={"clap": str(big)})


def test_config_file_errors(monkeypatch, tmp_path):
    cfg = tmp_path / "mine.toml"
    monkeypatch.setenv("SAGANET_MODEL_CONFIG", str(cfg))
    cfg.write_text("[models\nclip = 3")
    with pytest.raises(InputError, match="cannot read the model config"):
        weights.model_source("clip")
    cfg.write_text("[models]\nclip = 3\n")
    with pytest.raises(InputError, match=r"\[models\] table"):
        weights.model_source("clip")
    cfg.write_text('[models]\nclap = "/x"\n')
    with pytest.raises(InputError, match="mine.toml: unknown model 'clap'"):
        weights.model_source("clip")


def test_registry_file_given_as_file_or_folder(tmp_path):
    f = tmp_path / "renamed.pth"
    f.write_bytes(b"abc")
    src = weights.model_source("v1-44.pth", model_dirs={"v1-44.pth": str(f)})
    assert src.path == f and src.size == 3 and src.present
    with pytest.raises(CheckpointError, match=r"--model-dir v1-44.pth=.*v1-44.pth does not exist"):
        weights.resolve("v1-44.pth", model_dirs={"v1-44.pth": str(tmp_path)}, offline=True)


def test_all_folder_and_missing_entries(tmp_path):
    root = tmp_path / "all"
    root.mkdir()
    (root / "v1-44.pth").write_bytes(b"12")
    _clip_folder(root / "DFN5B-CLIP-ViT-H-14-384")
    dirs = {"all": str(root)}
    assert weights.model_source("v1-44.pth", dirs).path == root / "v1-44.pth"
    assert weights.model_source("clip", dirs).path == root / "DFN5B-CLIP-ViT-H-14-384"
    # what `all` lacks comes from the caches (it is a pool of files, not a promise of every model)
    src = weights.model_source("saganet.pth", dirs)
    assert src.origin == "download" and src.path == weights.cache_dir() / "saganet.pth" and not src.size_exact
    assert src.size == weights.REGISTRY["saganet.pth"].size


def test_hf_cache_layout_and_snapshot_models(tmp_path):
    from conftest import hf_cache_layout

    src = tmp_path / "src"
    _clip_folder(src)
    snap = hf_cache_layout(weights.hub_cache_dir(), "apple/DFN5B-CLIP-ViT-H-14-384", src)
    s = weights.model_source("clip")
    assert s.origin == "hf-cache" and s.path == snap and s.size == 1002
    # a whole-snapshot model (SAM 2) and a caller-defined HubModel take the same route
    sam = tmp_path / "sam"
    sam.mkdir()
    (sam / "config.json").write_text("{}")
    (sam / "model.safetensors").write_bytes(b"w" * 10)
    snap = hf_cache_layout(weights.hub_cache_dir(), "facebook/sam2.1-hiera-tiny", sam)
    assert weights.resolve_hub("sam2.1-tiny", offline=True) == snap
    assert weights.resolve_hub(HubModel("sam2.1-tiny", "facebook/sam2.1-hiera-tiny"), offline=True) == snap
    assert weights.model_source("sam2").size == 12
    # the segment package's own HubModel objects pick up a user-given folder by key
    assert weights.resolve_hub(HubModel("sam2.1-tiny", "facebook/sam2.1-hiera-tiny"), offline=True,
                               model_dirs={"sam2": str(sam)}) == sam


def test_segment_hub_ids_registered():
    from saganet.segment.api import SAM2_MODELS
    from saganet.segment.grounding import GROUNDING_DINO

    for key, repo in SAM2_MODELS.items():
        assert weights.HUB_MODELS[key].repo_id == repo
    assert weights.HUB_MODELS[GROUNDING_DINO.key].repo_id == GROUNDING_DINO.repo_id


def test_offline_messages_name_what_is_set(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("SAGANET_OFFLINE", "1")
    with pytest.raises(CheckpointError) as e:
        weights.resolve("v1-44.pth", needed_by="small_44k")
    msg = str(e.value)
    assert "SAGANET_OFFLINE set" in msg and "HF_HUB_OFFLINE" not in msg
    assert "saganet weights download small_44k" in msg and "--model-dir v1-44.pth=PATH" in msg


def test_files_of_a_feature_registry_take_the_same_route(tmp_path, monkeypatch):
    """The evaluation's checkpoints (its own registry) resolve through --model-dir / env / `all` as well."""
    reg = {"Cnn14_16k_mAP=0.438.pth": weights.WeightFile("Cnn14_16k_mAP=0.438.pth", "http://127.0.0.1:9/x", None)}
    f = tmp_path / "pann.pth"
    f.write_bytes(b"p")
    assert weights.resolve("Cnn14_16k_mAP=0.438.pth", registry=reg, model_dirs={"Cnn14_16k_mAP=0.438.pth": str(f)},
                           offline=True) == f
    (tmp_path / "Cnn14_16k_mAP=0.438.pth").write_bytes(b"q")
    assert weights.resolve("Cnn14_16k_mAP=0.438.pth", registry=reg, model_dirs={"all": str(tmp_path)},
                           offline=True) == tmp_path / "Cnn14_16k_mAP=0.438.pth"
    monkeypatch.setenv(weights.env_var("Cnn14_16k_mAP=0.438.pth"), str(f))
    assert weights.env_var("Cnn14_16k_mAP=0.438.pth") == "SAGANET_MODEL_DIR_CNN14_16K_MAP_0_438_PTH"
    assert weights.resolve("Cnn14_16k_mAP=0.438.pth", registry=reg, offline=True) == f


def test_hub_download_goes_to_the_hf_cache_and_fails_in_one_line(monkeypatch, tmp_path):
    import huggingface_hub
    from huggingface_hub.utils import are_progress_bars_disabled

    calls = []

    def fake_download(repo_id, filename, cache_dir=None, **kw):
        calls.append((repo_id, filename, Path(cache_dir)))
        p = Path(cache_dir) / "snap" / filename
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
        return str(p)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    folder = weights.resolve_hub("bigvgan", quiet=True)
    assert folder == weights.hub_cache_dir() / "snap"
    assert calls == [("nvidia/bigvgan_v2_44khz_128band_512x", f, weights.hub_cache_dir())
                     for f in ("config.json", "bigvgan_generator.pt")]
    assert not are_progress_bars_disabled()  # quiet is undone afterwards

    def failing(*a, **kw):
        raise OSError("connection refused\nmore detail")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", failing)
    with pytest.raises(CheckpointError) as e:
        weights.resolve_hub("grounding-dino-tiny")
    msg = str(e.value)
    assert "\n" not in msg and "download failed (connection refused)" in msg
    assert "saganet weights download grounding-dino-tiny" in msg and "SAGANET_MODEL_DIR_GROUNDING_DINO_TINY" in msg


def test_clip_under_its_other_hub_name(tmp_path):
    """The DFN5B CLIP files fetched as apple/DFN5B-CLIP-ViT-H-14-378 (the hub's listed name) are found too."""
    from conftest import hf_cache_layout

    src = _clip_folder(tmp_path / "src")
    snap = hf_cache_layout(weights.hub_cache_dir(), "apple/DFN5B-CLIP-ViT-H-14-378", src)
    assert weights.resolve_hub("clip", offline=True) == snap
    root = tmp_path / "all"
    _clip_folder(root / "DFN5B-CLIP-ViT-H-14-378")
    assert weights.model_source("clip", {"all": str(root)}).path == root / "DFN5B-CLIP-ViT-H-14-378"
