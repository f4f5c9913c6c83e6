"""Released-format files (tiny) loaded through the released code path from a plain folder, the weights cache
and the Hugging Face cache layout; what each variant reads equals what `weights download` fetches;
fine-tuned weights with --weights."""

from __future__ import annotations

import shutil

import pytest
import torch

from conftest import TINY_CLIP, hf_cache_layout, saganet_checkpoint
from saganet import builders, registry, weights
from saganet.errors import CheckpointError, InputError
from saganet.models import clip as clip_models

RELEASED = [v for v, s in registry.VARIANTS.items() if s.source == "released"]


def _dit_state(model) -> dict[str, torch.Tensor]:
    return model.dit.state_dict()


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_plain_folders_per_model(released):
    """`--model-dir` for each model separately: a file, a folder holding the file, and the hub folders."""
    dirs = {"saganet.pth": str(released["saganet.pth"]), "v1-44.pth": str(released["v1-44.pth"].parent),
            "clip": str(released["clip"]), "bigvgan": str(released["bigvgan_v2"])}
    model = builders.build_variant("saganet_small", model_dirs=dirs)
    saved = torch.load(released["saganet.pth"], weights_only=True)
    assert_same_state(_dit_state(model), saved["network"])  # merged LoRA used as is, never added twice
    assert_same_state(model.sync_encoder.model.state_dict(), saved["synchformer"])
    assert model.focal_mode == "reference" and model.empty_prompt == "encode"
    clip_sd = torch.load(released["clip"] / "open_clip_pytorch_model.bin", weights_only=True)
    assert_same_state(model.frame_encoder.model.state_dict(), clip_sd)


def test_cache_and_hf_cache_layout_give_the_same_model(released, tmp_path, monkeypatch):
    """Registry files in `$SAGANET_HOME/weights`, hub models as `models--org--name/snapshots/<rev>` + refs/main."""
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    for name in ("saganet.pth", "v1-44.pth"):
        shutil.copyfile(released[name], cache / name)
    hf = weights.hub_cache_dir()
    snap_clip = hf_cache_layout(hf, weights.HUB_MODELS["clip"].repo_id, released["clip"])
    hf_cache_layout(hf, weights.HUB_MODELS["bigvgan_v2"].repo_id, released["bigvgan_v2"])
    src = weights.model_source("clip")
    assert src.origin == "hf-cache" and src.present and src.path == snap_clip and src.size_exact
    assert weights.model_source("saganet.pth").origin == "cache"
    from_caches = builders.build_variant("saganet_small")
    from_folder = builders.build_variant("saganet_small", model_dirs={"all": str(released["saganet.pth"].parent)})
    assert_same_state(from_caches.state_dict(), from_folder.state_dict())


def test_env_and_config_file(released, tmp_path, monkeypatch):
    """`SAGANET_MODEL_DIR_ALL` and a models.toml with a relative path resolve like --model-dir all=..."""
    root = released["saganet.pth"].parent
    monkeypatch.setenv("SAGANET_MODEL_DIR_ALL", str(root))
    srcs = registry.variant_sources("saganet_no_lora")
    assert all(s.origin == "env" and s.present for s in srcs), srcs
    monkeypatch.delenv("SAGANET_MODEL_DIR_ALL")
    cfg = weights.model_config_file()
    cfg.parent.mkdir(parents=True)
    link = cfg.parent / "my_weights"
    link.symlink_to(root)
    cfg.write_text(f"[models]\nall = \"my_weights\"\nbigvgan = \"{released['bigvgan_v2']}\"\n")
    srcs = {s.key: s for s in registry.variant_sources("saganet_small_no_lora")}
    assert srcs["clip"].path == link / "DFN5B-CLIP-ViT-H-14-384" and srcs["clip"].origin == "config"
    assert srcs["bigvgan_v2"].path == released["bigvgan_v2"]
    model = builders.build_variant("saganet_small_no_lora")
    assert not any(".lora_" in k for k in model.dit.state_dict())


@pytest.mark.parametrize("variant", RELEASED)
def test_loader_reads_exactly_the_download_set(variant, released, monkeypatch):
    """Every registry file and hub model the builder resolves is in the variant's download set, and back."""
    read: list[str] = []
    real_resolve, real_hub = weights.resolve, weights.resolve_hub

    def spy_resolve(name, *a, **kw):
        read.append(name)
        assert kw.get("needed_by") == variant  # messages name the variant
        return real_resolve(name, *a, **kw)

    def spy_hub(model, *a, **kw):
        read.append(model if isinstance(model, str) else model.key)
        return real_hub(model, *a, **kw)

    monkeypatch.setattr(weights, "resolve", spy_resolve)
    monkeypatch.setattr(weights, "resolve_hub", spy_hub)
    builders.build_variant(variant, model_dirs={"all": str(released["saganet.pth"].parent)})
    assert sorted(read) == sorted(registry.variant_models(variant)), read
    if registry.is_segaware(variant):  # SAGANet generation never reads MMAudio's Synchformer (RN-49)
        assert "synchformer_state_dict.pth" not in read


def test_missing_user_folder_is_an_error_not_a_fallback(released, tmp_path):
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    shutil.copyfile(released["v1-44.pth"], cache / "v1-44.pth")
    empty = tmp_path / "empty_clip"
    empty.mkdir()
    with pytest.raises(CheckpointError) as e:
        builders.build_variant("saganet_small", model_dirs={"all": str(released["saganet.pth"].parent),
                                                            "clip": str(empty)})
    msg = str(e.value)
    assert "--model-dir clip=" in msg and "open_clip_config.json" in msg and "\n" not in msg


def test_offline_message_names_the_variant_and_real_options(monkeypatch):
    with pytest.raises(CheckpointError) as e:
        builders.build_variant("saganet_small")
    msg = str(e.value)
    assert "`saganet weights download saganet_small`" in msg and "HF_HUB_OFFLINE" in msg
    assert "VARIANT" not in msg and "--offline" not in msg and "\n" not in msg
    assert "--model-dir saganet.pth=PATH" in msg
    with pytest.raises(CheckpointError) as e:
        weights.resolve_hub("clip", needed_by="small_44k")
    msg = str(e.value)
    assert "apple/DFN5B-CLIP-ViT-H-14-384" in msg and "saganet weights download small_44k" in msg
    assert "--model-dir clip=PATH" in msg and "SAGANET_MODEL_DIR_CLIP" in msg
    with pytest.raises(CheckpointError) as e:  # no variant (e.g. the segmenter): no --model-dir flag named
        weights.resolve_hub("sam2.1-tiny")
    assert "saganet weights download sam2.1-tiny" in str(e.value) and "--model-dir" not in str(e.value)


# ------------------------------------------------------------------------------------------------ --weights
@pytest.fixture()
def finetuned(released, tmp_path):
    """A fine-tuned SAGANet checkpoint (reference layout, other weights), under a name no registry knows."""
    clip = clip_models.finish_encoder(clip_models.build_clip_model(TINY_CLIP), None)
    path = tmp_path / "my_finetune.pth"
    torch.save(saganet_checkpoint(registry.get_variant("saganet_small"), clip, seed=7), path)
    return path


def test_custom_weights_replace_the_checkpoint(released, finetuned, monkeypatch):
    def no_hashing(*a, **kw):
        raise AssertionError("custom weights must not be MD5-checked")

    monkeypatch.setattr(weights, "md5sum", no_hashing)
    root = str(released["saganet.pth"].parent)
    model = builders.build_variant("saganet_small", weights_file=finetuned, model_dirs={"all": root})
    saved = torch.load(finetuned, weights_only=True)
    assert_same_state(model.dit.state_dict(), saved["network"])
    assert_same_state(model.sync_encoder.model.state_dict(), saved["synchformer"])
    released_net = torch.load(released["saganet.pth"], weights_only=True)["network"]
    assert not torch.equal(model.dit.state_dict()["final_layer.conv.weight"], released_net["final_layer.conv.weight"])


def test_custom_weights_need_no_released_checkpoint(released, finetuned, tmp_path):
    """Only the other files must exist: saganet.pth itself is never looked up."""
    for name in ("v1-44.pth",):
        (tmp_path / "rest").mkdir(exist_ok=True)
        shutil.copyfile(released[name], tmp_path / "rest" / name)
    dirs = {"all": str(tmp_path / "rest"), "clip": str(released["clip"]), "bigvgan_v2": str(released["bigvgan_v2"])}
    builders.build_variant("saganet_small", weights_file=finetuned, model_dirs=dirs)


def test_custom_weights_with_the_wrong_layout(released, tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "md5sum", lambda *a: (_ for _ in ()).throw(AssertionError("no MD5")))
    root = {"all": str(released["saganet.pth"].parent)}
    only_network = tmp_path / "half.pth"
    torch.save({"network": torch.load(released["saganet.pth"], weights_only=True)["network"]}, only_network)
    with pytest.raises(CheckpointError) as e:
        builders.build_variant("saganet_small", weights_file=only_network, model_dirs=root)
    msg = str(e.value)
    assert "'synchformer'" in msg and "--weights" in msg and "network" in msg and "md5" not in msg.lower()
    # an MMAudio DiT file given to a SAGANet variant, and a SAGANet file given to an MMAudio variant
    with pytest.raises(CheckpointError, match="not a SAGANet checkpoint"):
        builders.build_variant("saganet_small", weights_file=released["mmaudio_small_44k.pth"], model_dirs=root)
    with pytest.raises(CheckpointError, match="does not fit small_44k"):
        builders.build_variant("small_44k", weights_file=released["saganet.pth"], model_dirs=root)
    with pytest.raises(InputError, match="no such file"):
        builders.build_variant("saganet_small", weights_file=tmp_path / "nope.pth", model_dirs=root)


def test_mmaudio_custom_dit(released, tmp_path):
    root = {"all": str(released["saganet.pth"].parent)}
    sd = torch.load(released["mmaudio_large_44k_v2.pth"], weights_only=True)
    sd = {k: v + 1.0 if k == "final_layer.conv.bias" else v for k, v in sd.items()}
    path = tmp_path / "ft.pth"
    torch.save(sd, path)
    model = builders.build_variant("large_44k_v2", weights_file=path, model_dirs=root)
    assert torch.equal(model.dit.state_dict()["final_layer.conv.bias"], sd["final_layer.conv.bias"])


def test_released_file_that_fails_md5_names_the_fix(released, monkeypatch):
    """A broken cached saganet.pth: the message says it fails its MD5 and names the variant's download."""
    cache = weights.cache_dir()
    cache.mkdir(parents=True)
    torch.save({"network": {}}, cache / "saganet.pth")
    with pytest.raises(CheckpointError) as e:
        builders.build_variant("saganet_small", model_dirs={"clip": str(released["clip"])})
    msg = str(e.value)
    assert "fails its MD5" in msg and "saganet weights download saganet_small" in msg and "\n" not in msg


def test_user_copy_that_fails_md5_is_not_to_be_deleted(released, tmp_path):
    bad = tmp_path / "saganet.pth"
    torch.save({"network": {}}, bad)
    dirs = {"all": str(released["saganet.pth"].parent), "saganet.pth": str(bad)}
    with pytest.raises(CheckpointError) as e:
        builders.build_variant("saganet_small", model_dirs=dirs)
    msg = str(e.value)
    assert "fails its MD5" in msg and f"--model-dir saganet.pth={bad}" in msg and "delete" not in msg


def test_released_codec_alone_equals_the_full_models(released):
    """`build_released_codec` (the trainer's decoder of validation samples) reads the same VAE and vocoder
    as the whole variant, and decodes a latent to the same waveform."""
    dirs = {"all": str(released["saganet.pth"].parent), "clip": str(released["clip"]),
            "bigvgan": str(released["bigvgan_v2"])}
    full = builders.build_variant("saganet_small", model_dirs=dirs).codec
    alone = builders.build_released_codec("saganet_small", model_dirs=dirs)
    assert_same_state(alone.state_dict(), full.state_dict())
    latent = torch.randn(1, 8, full.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(alone.latents_to_wav(latent), full.latents_to_wav(latent))
    with pytest.raises(InputError, match="no released codec"):
        builders.build_released_codec("toy")
