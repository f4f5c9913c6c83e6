"""Build an `AudioGenerator` for a registry variant: released weights, the shipped toy model, or tiny random.

What each variant is and which files it needs is in `registry.py`; this module only assembles modules.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from saganet import registry, weights
from saganet.checkpoint import load_strict, read_checkpoint
from saganet.codec import MelVAECodec
from saganet.configs import DiTConfig, SequenceConfig, dit_config, sequence_config_for
from saganet.errors import CheckpointError, InputError
from saganet.models import clip as clip_models
from saganet.models.bigvgan import BIGVGAN_V1_16K, BigVGANConfig
from saganet.models.dit import MMDiT, load_dit_state_dict
from saganet.models.generator import AudioGenerator
from saganet.models.lazy import LazyModule
from saganet.models.motionformer import MotionFormerConfig, Synchformer
from saganet.models.segaware import SynchformerWithContext
from saganet.models.sync_encoder import (
    SegAwareSyncEncoder,
    SyncEncoder,
    load_mmaudio_synchformer,
    load_saganet_synchformer,
)
from saganet.models.vae import VAE_PRESETS, VAEConfig
from saganet.pretrained import clip_from_checkpoint

log = logging.getLogger(__name__)
T = TypeVar("T")

@dataclass(frozen=True)
class Architecture:
    """Module configurations of a released variant: the files hold only tensors, the shapes come from here."""

    dit: DiTConfig
    seq: SequenceConfig
    sync: MotionFormerConfig
    vae: VAEConfig
    vocoder_v1: BigVGANConfig = field(default_factory=lambda: BIGVGAN_V1_16K)  # 16k only (v2: its config.json)
    clip_size: int = 384
    sync_size: int = 224


def architecture(spec: registry.VariantSpec) -> Architecture:
    """The released architecture of `spec` (CLIP's comes from its folder's open_clip_config.json).

    The one hook for tests: replacing this function loads tiny files of the released layout through
    exactly the code path of the real variant.
    """
    return Architecture(dit_config(spec.dit), sequence_config_for(spec.dit), MotionFormerConfig.full(),
                        VAE_PRESETS[spec.codec])


class _Sources:
    """Resolves a variant's models (user-given folders, caches, download) with messages naming the variant."""

    def __init__(self, variant: str, model_dirs: Mapping[str, str] | None) -> None:
        self.variant, self.model_dirs = variant, model_dirs

    def file(self, name: str) -> Path:
        return weights.resolve(name, needed_by=self.variant, model_dirs=self.model_dirs)

    def hub(self, key: str) -> Path:
        return weights.resolve_hub(key, needed_by=self.variant, model_dirs=self.model_dirs)


def _codec(mode: str, arch: Architecture, src: _Sources) -> MelVAECodec:
    if mode == "16k":
        return MelVAECodec.from_files("16k", src.file("v1-16.pth"), src.file("best_netG.pt"), need_encoder=False,
                                      vae_config=arch.vae, vocoder_v1_config=arch.vocoder_v1)
    return MelVAECodec.from_files("44k", src.file("v1-44.pth"), src.hub("bigvgan_v2"), need_encoder=False,
                                  vae_config=arch.vae)


def _read(path: Path) -> dict:
    try:
        return read_checkpoint(path)
    except CheckpointError as e:  # torch's unpickling message is long and suggests weights_only=False
        log.debug("%s", e)
        raise CheckpointError("not a readable PyTorch checkpoint") from e


def _load_released(name: str, src: _Sources, load: Callable[[dict], T]) -> T:
    """Read the registry file `name` and hand it to `load`; a failure names the file and the fix."""
    path = src.file(name)
    try:
        return load(_read(path))
    except CheckpointError as e:
        # Hash only on failure (the files are GBs): a file that fails its MD5 is corrupt or not the release.
        md5 = weights.REGISTRY[name].md5
        ok = md5 is None or weights.md5sum(path) == md5
        given = weights.model_source(name, src.model_dirs)
        if ok:
            fix = "it passes its MD5 check, so this is a bug in saganet: please report it"
        elif given.local:  # the user's own copy: never advise deleting it
            fix = (f"it fails its MD5 check (corrupt, or not the released file): replace the copy {given.where} "
                   f"names, or pass fine-tuned weights with --weights FILE")
        else:
            fix = (f"it fails its MD5 check (corrupt, tampered or another file): delete it and run "
                   f"`saganet weights download {src.variant}`")
        raise CheckpointError(f"cannot use {name} from {path.parent} ({str(e).splitlines()[0]}); {fix}") from e


def _load_custom(path: Path, spec: registry.VariantSpec, load: Callable[[dict], T]) -> T:
    """`--weights FILE`: fine-tuned weights in the released layout; no MD5 (they are not a release)."""
    if not path.is_file():
        raise InputError(f"--weights {path}: no such file")
    log.info("%s: using the weights in %s in place of %s (custom weights: no MD5 check)", spec.name, path,
             spec.checkpoint)
    layout = "{\"network\", \"synchformer\", \"lora\"}" if spec.segaware else "a DiT state dict"
    try:
        return load(_read(path))
    except CheckpointError as e:
        raise CheckpointError(f"--weights {path} does not fit {spec.name} ({str(e).splitlines()[0]}); it must hold "
                              f"{layout} for this variant, as the reference trainer writes") from e


def build_released(variant: str, weights_file: str | os.PathLike | None = None,
                   model_dirs: Mapping[str, str] | None = None, lazy: bool = False) -> AudioGenerator:
    """The released SAGANet / MMAudio model. `weights_file` replaces the variant's own checkpoint (fine-tuned
    weights); `model_dirs` gives local folders/files per model key (see `saganet.weights`). `lazy`: every
    network is a `LazyModule`, read from disk when first used (low-memory generation)."""
    spec = registry.get_variant(variant)
    arch = architecture(spec)
    src = _Sources(spec.name, model_dirs)
    if lazy:
        return _build_released_lazy(spec, arch, src, weights_file, model_dirs)

    def load(ckpt_name: str, fn: Callable[[dict], T]) -> T:
        if weights_file is not None and ckpt_name == spec.checkpoint:
            return _load_custom(Path(weights_file), spec, fn)
        return _load_released(ckpt_name, src, fn)

    if spec.segaware:
        def load_saganet(ckpt: dict) -> tuple[MMDiT, SynchformerWithContext]:
            missing = [k for k in ("network", "synchformer") if not isinstance(ckpt.get(k), Mapping)]
            if missing:
                raise CheckpointError(f"no {' or '.join(repr(k) for k in missing)} entry (top-level keys "
                                      f"{sorted(map(str, ckpt))[:5]}): not a SAGANet checkpoint")
            dit = MMDiT(arch.dit)
            # released LoRA weights are already merged (RN-7)
            load_dit_state_dict(dit, ckpt, lora_merged=True)
            enc = SynchformerWithContext(arch.sync)
            load_saganet_synchformer(enc, ckpt["synchformer"])
            return dit, enc

        dit, enc = load(spec.checkpoint, load_saganet)
        sync: SegAwareSyncEncoder | SyncEncoder = SegAwareSyncEncoder(enc)
    else:
        dit = MMDiT(arch.dit)
        load(spec.checkpoint, lambda sd: load_dit_state_dict(dit, sd))
        plain = Synchformer(arch.sync)
        load("synchformer_state_dict.pth", lambda sd: load_mmaudio_synchformer(plain, sd))
        sync = SyncEncoder(plain)
    clip = clip_from_checkpoint(src.hub("clip"))
    return AudioGenerator(dit.eval(), sync.eval(), clip, clip, _codec(spec.codec, arch, src).eval(), arch.seq,
                          clip_size=arch.clip_size, sync_size=arch.sync_size, focal_mode=spec.focal_mode)


def build_released_codec(variant: str, model_dirs: Mapping[str, str] | None = None) -> MelVAECodec:
    """The released VAE decoder + vocoder of `variant` alone, without its DiT, encoders or CLIP (decoding
    latents outside a full model: the trainer's validation samples)."""
    spec = registry.get_variant(variant)
    if spec.source != "released":
        raise InputError(f"{spec.name} has no released codec files")
    return _codec(spec.codec, architecture(spec), _Sources(spec.name, model_dirs)).eval()


def _build_released_lazy(spec: registry.VariantSpec, arch: Architecture, src: _Sources,
                         weights_file: str | os.PathLike | None, model_dirs: Mapping[str, str] | None
                         ) -> AudioGenerator:
    """Each network built on demand; the checkpoint holding both the DiT and the encoder is read per part."""
    for key in ("clip", *(["bigvgan_v2"] if spec.codec == "44k" else [])):
        src.hub(key)  # resolve (download) everything up front: a missing model fails before any work
    for name in (spec.checkpoint, *(() if spec.segaware else ("synchformer_state_dict.pth",))):
        if weights_file is None or name != spec.checkpoint:
            src.file(name)

    def clip() -> nn.Module:
        return clip_from_checkpoint(src.hub("clip"))

    sync_cls = SegAwareSyncEncoder if spec.segaware else SyncEncoder
    text = LazyModule(clip, "CLIP")
    # the DiT and the sync encoder come from one checkpoint; building one part reads it and keeps that part
    dit = LazyModule(lambda: _released_part(spec, arch, src, weights_file, "dit"), "DiT", MMDiT)
    sync = LazyModule(lambda: _released_part(spec, arch, src, weights_file, "sync"), "sync encoder", sync_cls)
    codec = LazyModule(lambda: _codec(spec.codec, arch, src), "codec", MelVAECodec)
    return AudioGenerator(dit, sync, text, text, codec, arch.seq, clip_size=arch.clip_size, sync_size=arch.sync_size,
                          focal_mode=spec.focal_mode)


def _released_part(spec: registry.VariantSpec, arch: Architecture, src: _Sources,
                   weights_file: str | os.PathLike | None, which: str) -> nn.Module:
    """One network of a released variant: "dit" or "sync" (reads its checkpoint, keeps only that part)."""

    def load(ckpt_name: str, fn: Callable[[dict], T]) -> T:
        if weights_file is not None and ckpt_name == spec.checkpoint:
            return _load_custom(Path(weights_file), spec, fn)
        return _load_released(ckpt_name, src, fn)

    if spec.segaware:
        def load_part(ckpt: dict) -> nn.Module:
            missing = [k for k in ("network", "synchformer") if not isinstance(ckpt.get(k), Mapping)]
            if missing:
                raise CheckpointError(f"no {' or '.join(repr(k) for k in missing)} entry: not a SAGANet checkpoint")
            if which == "dit":
                dit = MMDiT(arch.dit)
                load_dit_state_dict(dit, ckpt, lora_merged=True)  # released LoRA weights are merged (RN-7)
                return dit
            enc = SynchformerWithContext(arch.sync)
            load_saganet_synchformer(enc, ckpt["synchformer"])
            return SegAwareSyncEncoder(enc)

        return load(spec.checkpoint, load_part)
    if which == "dit":
        dit = MMDiT(arch.dit)
        load(spec.checkpoint, lambda sd: load_dit_state_dict(dit, sd))
        return dit
    plain = Synchformer(arch.sync)
    load("synchformer_state_dict.pth", lambda sd: load_mmaudio_synchformer(plain, sd))
    return SyncEncoder(plain)


def toy_checkpoint_path(name: str) -> Path:
    return Path(str(resources.files("saganet") / "assets" / "toy" / f"{name}.safetensors"))


def _toy_config(variant: str):
    from saganet.models.toy import ToyModelConfig

    path = toy_checkpoint_path(registry.get_variant(variant).toy_asset)
    meta_file = path.with_suffix(".json")
    if not path.is_file() or not meta_file.is_file():
        raise CheckpointError(f"shipped toy checkpoint {path.name} is missing from the installation: "
                              "reinstall saganet, or train one with `saganet toyworld train`")
    return ToyModelConfig.from_dict(json.loads(meta_file.read_text())["model"])


def build_toy(variant: str = "toy") -> AudioGenerator:
    """The tiny model trained on the synthetic world, shipped inside the package."""
    cfg = _toy_config(variant)
    return load_toy_file(toy_checkpoint_path(registry.get_variant(variant).toy_asset), cfg)


def load_toy_file(path: str | Path, cfg) -> AudioGenerator:
    from saganet.models.toy import build_toy_model

    model = build_toy_model(cfg)
    load_strict(model, read_checkpoint(path), what=f"toy model ({'SAGANet' if cfg.segaware else 'baseline'})")
    return model.eval()


# Tiny random models of the real classes (tests, benchmarks): tiny open_clip, MotionFormer and codec.
TINY_CLIP_CFG = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
                 "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
# Parameters that start at zero in a fresh model (adaLN-zero modulation, the DiT's final layer, the mask patch
# embedding and gates of the segmentation-aware encoder, RN-17). Left at zero, the random tiny model's
# velocity is 0 and its masks are ignored: its audio would not depend on the video, masks or text at all.
# They are drawn at random instead, and the DiT's sync input is amplified so that masks change the audio.
TINY_GATE_STD = 0.1
TINY_SYNC_GAIN = 10.0
TINY_ZERO_GATES = ("adaLN_modulation", "final_layer", "patch_embed_3d_mask", "attn_factor", "mlp_factor")


def _randomise_zero_gates(module: torch.nn.Module, std: float, generator: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in module.named_parameters():
            if any(k in name for k in TINY_ZERO_GATES) and not p.any():
                p.normal_(0.0, std, generator=generator)


def build_tiny(segaware: bool = True, seed: int = 0, duration: float = 2.0) -> AudioGenerator:
    """Random tiny model with every real class: open_clip CLIP, (seg-aware) MotionFormer, MM-DiT, VAE+BigVGAN."""
    torch.manual_seed(seed)
    clip = clip_models.from_config(TINY_CLIP_CFG)
    codec = MelVAECodec.tiny("16k", latent_dim=8, seed=seed)
    enc_cfg = MotionFormerConfig.tiny(depth=1)
    seq = SequenceConfig(duration=duration, sampling_rate=16000, spectrogram_frame_rate=256)
    width = TINY_CLIP_CFG["text_cfg"]["width"]
    cfg = dit_config("tiny").__class__(latent_dim=8, clip_dim=TINY_CLIP_CFG["embed_dim"], sync_dim=enc_cfg.embed_dim,
                                       text_dim=width, hidden_dim=64, depth=2, fused_depth=1, num_heads=2,
                                       text_seq_len=TINY_CLIP_CFG["text_cfg"]["context_length"]).with_seq(seq)
    dit = MMDiT(cfg, latent_mean=torch.zeros(8), latent_std=torch.ones(8), empty_string_feat=clip.encode_text([""])[0])
    sync = SegAwareSyncEncoder(SynchformerWithContext(enc_cfg)) if segaware else SyncEncoder(Synchformer(enc_cfg))
    g = torch.Generator().manual_seed(seed)
    _randomise_zero_gates(dit, TINY_GATE_STD, g)
    _randomise_zero_gates(sync, TINY_GATE_STD, g)
    with torch.no_grad():  # random sync features are small next to the timestep embedding: make masks audible
        dit.sync_input_proj[0].weight.mul_(TINY_SYNC_GAIN)
    return AudioGenerator(dit, sync, clip, clip, codec, seq, clip_size=32, sync_size=enc_cfg.img_size).eval()


def build_variant(variant: str, weights_file: str | os.PathLike | None = None,
                  model_dirs: Mapping[str, str] | None = None, lazy: bool = False) -> AudioGenerator:
    """Any registry variant. `weights_file`: fine-tuned weights in place of the variant's own (released:
    the reference layout; toy: a toy-model file of the shipped config; tiny: the reference layout or a full
    state dict). `lazy`:
    released networks are read when first used (low memory; the small toy/tiny models load at once)."""
    spec = registry.get_variant(variant)
    if spec.source == "released":
        return build_released(spec.name, weights_file, model_dirs, lazy=lazy)
    if model_dirs:
        log.warning("variant %s reads no downloaded models: --model-dir is ignored", spec.name)
    if spec.source == "toy":
        if weights_file is None:
            return build_toy(spec.name)
        return load_toy_file(weights_file, _toy_config(spec.name))
    model = build_tiny()
    if weights_file is not None:
        ckpt = read_checkpoint(weights_file)
        if isinstance(ckpt.get("network"), Mapping) and isinstance(ckpt.get("synchformer"), Mapping):
            # the reference layout that training exports: DiT (LoRA merged) + the sync encoder
            load_dit_state_dict(model.dit, ckpt, lora_merged=True)
            load_strict(model.sync_encoder.model, ckpt["synchformer"], what="tiny sync encoder")
        else:
            load_strict(model, ckpt, what="tiny model")
    return model
