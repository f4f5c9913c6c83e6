"""Released-format files at a tiny size, and the architecture hook that loads them through the real code path.

`released_files` writes, once per session, every file the registry variants read, with the released file
names and top-level layouts (random weights of the real classes at tiny configs):

    saganet.pth / saganet_no_lora.pth   {"network": DiT state dict, "synchformer": ..., "lora": lora_A/B}
    mmaudio_*.pth                       a bare DiT state dict (latent_mean, empty_string_feat, ...)
    synchformer_state_dict.pth          Synchformer with `vfeat_extractor.*` keys
    v1-44.pth / v1-16.pth               a bare VAE state dict (raw weight-norm weights)
    best_netG.pt                        {"generator": BigVGAN v1 state dict}
    empty_string.pth                    a bare tensor
    bigvgan_v2/config.json + bigvgan_generator.pt    (nvidia/bigvgan_v2_44khz_128band_512x's files)
    clip/open_clip_config.json + open_clip_pytorch_model.bin  (apple/DFN5B-CLIP-ViT-H-14-384's files)

`tiny_arch` (autouse in this folder) replaces `saganet.builders.architecture`, the only place that knows the
released module sizes, so `build_variant` reads these files exactly as it reads the released ones.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from saganet import builders, registry
from saganet.builders import Architecture
from saganet.configs import DiTConfig, SequenceConfig, dit_config
from saganet.models import clip as clip_models
from saganet.models.bigvgan import BigVGAN, BigVGANConfig
from saganet.models.dit import MMDiT
from saganet.models.mel import MEL_PRESETS
from saganet.models.motionformer import MotionFormerConfig, Synchformer
from saganet.models.segaware import SynchformerWithContext
from saganet.models.vae import VAE, VAEConfig

TINY_CLIP = {"embed_dim": 16, "quick_gelu": True,
             "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 24, "heads": 2, "layers": 1}}
SYNC = MotionFormerConfig.tiny(depth=1)
LATENT = 8


def _vocoder(mode: str) -> BigVGANConfig:
    mel = MEL_PRESETS[mode]
    rates = [8, 8, 4] if mel.hop_size == 256 else [8, 8, 8]
    return BigVGANConfig(num_mels=mel.num_mels, upsample_rates=rates, upsample_kernel_sizes=[2 * r for r in rates],
                         upsample_initial_channel=16, resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
                         use_tanh_at_final=mode == "16k", use_bias_at_final=mode == "16k")


def _seq(codec: str) -> SequenceConfig:
    return SequenceConfig(1.0, 16000, 256) if codec == "16k" else SequenceConfig(1.0, 44100, 512)


def tiny_architecture(spec: registry.VariantSpec) -> Architecture:
    """The tiny stand-in of `spec`'s architecture (LoRA and v2 flags of the real DiT kept)."""
    real = dit_config(spec.dit)
    seq = _seq(spec.codec)
    dit = DiTConfig(latent_dim=LATENT, clip_dim=TINY_CLIP["embed_dim"], sync_dim=SYNC.embed_dim,
                    text_dim=TINY_CLIP["text_cfg"]["width"], hidden_dim=32, depth=2, fused_depth=1, num_heads=2,
                    v2=real.v2, use_lora=real.use_lora).with_seq(seq)
    return Architecture(dit, seq, SYNC, VAEConfig(MEL_PRESETS[spec.codec].num_mels, LATENT, 8), _vocoder("16k"),
                        clip_size=TINY_CLIP["vision_cfg"]["image_size"], sync_size=SYNC.img_size)


@pytest.fixture(autouse=True)
def tiny_arch(monkeypatch):
    monkeypatch.setattr(builders, "architecture", tiny_architecture)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Empty weights cache, empty HF cache, no config file, no SAGANET_MODEL_DIR_* variables, offline."""
    monkeypatch.setenv("SAGANET_HOME", str(tmp_path / "saganet_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for var in ("SAGANET_OFFLINE", "SAGANET_WEIGHTS_URL", "SAGANET_MODEL_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    import os

    for var in [v for v in os.environ if v.startswith("SAGANET_MODEL_DIR_")]:
        monkeypatch.delenv(var)


def random_dit(spec: registry.VariantSpec, clip: clip_models.ClipEncoder, seed: int) -> MMDiT:
    torch.manual_seed(seed)
    cfg = tiny_architecture(spec).dit
    dit = MMDiT(cfg, latent_mean=torch.randn(LATENT) * 0.1, latent_std=torch.rand(LATENT) + 0.5,
                empty_string_feat=clip.encode_text([""])[0])
    g = torch.Generator().manual_seed(seed)
    builders._randomise_zero_gates(dit, 0.1, g)
    with torch.no_grad():
        for name, p in dit.named_parameters():
            if name.endswith("lora_B"):
                p.normal_(0.0, 0.01, generator=g)  # trained LoRA: ΔW != 0 (already merged into qkv by the release)
    return dit.eval()


def saganet_checkpoint(spec: registry.VariantSpec, clip, seed: int) -> dict:
    """The reference layout `{"network", "synchformer", "lora"}` (lora: only the lora_A/lora_B tensors)."""
    dit = random_dit(spec, clip, seed)
    torch.manual_seed(seed + 1)
    enc = SynchformerWithContext(SYNC)
    g = torch.Generator().manual_seed(seed + 1)
    builders._randomise_zero_gates(enc, 0.1, g)
    network = dit.state_dict()
    return {"network": network, "synchformer": enc.state_dict(),
            "lora": {k: v for k, v in network.items() if ".lora_" in k}}


def write_released(root: Path, seed: int = 0) -> dict[str, Path]:
    """Every registry file + both hub folders under `root` (files flat, hub models in sub-folders)."""
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    clip_model = clip_models.build_clip_model(TINY_CLIP)
    clip = clip_models.finish_encoder(clip_model, clip_models.DEFAULT_TOKENIZER)
    out: dict[str, Path] = {}
    for name in ("saganet_small", "saganet_small_no_lora"):
        spec = registry.get_variant(name)
        torch.save(saganet_checkpoint(spec, clip, seed), root / spec.checkpoint)
        out[spec.checkpoint] = root / spec.checkpoint
    for name in ("small_16k", "small_44k", "medium_44k", "large_44k", "large_44k_v2"):
        spec = registry.get_variant(name)
        torch.save(random_dit(spec, clip, seed).state_dict(), root / spec.checkpoint)
        out[spec.checkpoint] = root / spec.checkpoint
    torch.manual_seed(seed)
    torch.save(Synchformer(SYNC).state_dict(), root / "synchformer_state_dict.pth")
    for mode, name in (("16k", "v1-16.pth"), ("44k", "v1-44.pth")):
        torch.save(VAE(**asdict(VAEConfig(MEL_PRESETS[mode].num_mels, LATENT, 8))).state_dict(), root / name)
    torch.save({"generator": BigVGAN(_vocoder("16k"), version=1).state_dict()}, root / "best_netG.pt")
    torch.save(clip.encode_text([""]), root / "empty_string.pth")
    for name in ("synchformer_state_dict.pth", "v1-16.pth", "v1-44.pth", "best_netG.pt", "empty_string.pth"):
        out[name] = root / name
    big = root / "bigvgan_v2_44khz_128band_512x"
    big.mkdir()
    cfg = _vocoder("44k")
    (big / "config.json").write_text(json.dumps({**cfg.to_dict(), "sampling_rate": 44100}))
    torch.save({"generator": BigVGAN(cfg, version=2).state_dict()}, big / "bigvgan_generator.pt")
    out["bigvgan_v2"] = big
    cl = root / "DFN5B-CLIP-ViT-H-14-384"
    cl.mkdir()
    (cl / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP, "preprocess_cfg": {}}))
    torch.save(clip_model.state_dict(), cl / "open_clip_pytorch_model.bin")
    out["clip"] = cl
    return out


@pytest.fixture(scope="session")
def released(tmp_path_factory) -> dict[str, Path]:
    """Read-only: tests copy what they change."""
    return write_released(tmp_path_factory.mktemp("released"))


def hf_cache_layout(cache: Path, repo_id: str, folder: Path, rev: str = "0123456789abcdef") -> Path:
    """Put `folder`'s files into a Hugging Face cache at `cache` the way huggingface_hub does (blobs are
    copied under snapshots/<rev>/, refs/main names the revision). Returns the snapshot folder."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    for f in folder.iterdir():
        shutil.copyfile(f, snap / f.name)
    return snap
