"""Build an `AudioGenerator` for a registry variant: released weights, the shipped toy model, or tiny random.

What each variant is and which files it needs is in `registry.py`; this module only assembles modules.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TypeVar

import torch

from saganet import registry, weights
from saganet.checkpoint import load_strict, read_checkpoint
from saganet.codec import MelVAECodec
from saganet.configs import SequenceConfig, dit_config, sequence_config_for
from saganet.errors import CheckpointError
from saganet.models import clip as clip_models
from saganet.models.dit import MMDiT, load_dit_state_dict
from saganet.models.generator import AudioGenerator
from saganet.models.motionformer import MotionFormerConfig, Synchformer
from saganet.models.segaware import SynchformerWithContext
from saganet.models.sync_encoder import (
    SegAwareSyncEncoder,
    SyncEncoder,
    load_mmaudio_synchformer,
    load_saganet_synchformer,
)
from saganet.pretrained import clip_from_checkpoint

log = logging.getLogger(__name__)
T = TypeVar("T")

def _clip_encoder(variant: str) -> clip_models.ClipEncoder:
    folder = weights.resolve_hub("clip", needed_by=variant)
    return clip_from_checkpoint(folder)


def _codec(mode: str, variant: str) -> MelVAECodec:
    if mode == "16k":
        return MelVAECodec.from_files("16k", weights.resolve("v1-16.pth", needed_by=variant),
                                      weights.resolve("best_netG.pt", needed_by=variant), need_encoder=False)
    return MelVAECodec.from_files("44k", weights.resolve("v1-44.pth", needed_by=variant),
                                  weights.resolve_hub("bigvgan_v2", needed_by=variant), need_encoder=False)


def _load_cached(name: str, variant: str, load: Callable[[dict], T]) -> T:
    """Read the cached registry file `name` and hand it to `load`; a failure names the file and the fix."""
    path = weights.resolve(name, needed_by=variant)
    try:
        try:
            state = read_checkpoint(path)
        except CheckpointError as e:  # torch's unpickling message is long and suggests weights_only=False
            log.debug("%s", e)
            raise CheckpointError("not a readable PyTorch checkpoint") from e
        return load(state)
    except CheckpointError as e:
        # Hash only on failure (the files are GBs): a file that fails its MD5 is corrupt or not the release.
        fix = (f"it fails its MD5 check (corrupt, tampered or another file): delete it and run "
               f"`saganet weights download {variant}`") if not weights.verify(path) else (
               "it passes its MD5 check, so this is a bug in saganet: please report it")
        raise CheckpointError(f"cannot use {name} from {path.parent} ({str(e).splitlines()[0]}); {fix}") from e


def build_released(variant: str) -> AudioGenerator:
    """The released SAGANet / MMAudio model from the weights cache (downloading unless offline)."""
    spec = registry.get_variant(variant)
    v = spec.name
    if spec.segaware:
        def load_saganet(ckpt: dict) -> tuple[MMDiT, SynchformerWithContext]:
            if "network" not in ckpt or "synchformer" not in ckpt:
                raise CheckpointError("no 'network'/'synchformer' entries: not a SAGANet checkpoint")
            dit = MMDiT(dit_config(spec.dit))
            # released LoRA weights are already merged (RN-7)
            load_dit_state_dict(dit, ckpt, lora_merged=True)
            enc = SynchformerWithContext(MotionFormerConfig.full())
            load_saganet_synchformer(enc, ckpt["synchformer"])
            return dit, enc

        dit, enc = _load_cached(spec.checkpoint, v, load_saganet)
        sync: SegAwareSyncEncoder | SyncEncoder = SegAwareSyncEncoder(enc)
    else:
        dit = MMDiT(dit_config(spec.dit))
        _load_cached(spec.checkpoint, v, lambda sd: load_dit_state_dict(dit, sd))
        plain = Synchformer(MotionFormerConfig.full())
        _load_cached("synchformer_state_dict.pth", v, lambda sd: load_mmaudio_synchformer(plain, sd))
        sync = SyncEncoder(plain)
    seq = sequence_config_for(spec.dit)
    clip = _clip_encoder(v)
    return AudioGenerator(dit.eval(), sync.eval(), clip, clip, _codec(spec.codec, v).eval(), seq, clip_size=384,
                          sync_size=224, focal_mode=spec.focal_mode)


def toy_checkpoint_path(name: str) -> Path:
    return Path(str(resources.files("saganet") / "assets" / "toy" / f"{name}.safetensors"))


def build_toy(variant: str = "toy") -> AudioGenerator:
    """The tiny model trained on the synthetic world, shipped inside the package."""
    from saganet.models.toy import ToyModelConfig

    path = toy_checkpoint_path(registry.get_variant(variant).toy_asset)
    meta_file = path.with_suffix(".json")
    if not path.is_file() or not meta_file.is_file():
        raise CheckpointError(f"shipped toy checkpoint {path.name} is missing from the installation: "
                              "reinstall saganet, or train one with `saganet toyworld train`")
    return load_toy_file(path, ToyModelConfig.from_dict(json.loads(meta_file.read_text())["model"]))


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


def build_variant(variant: str) -> AudioGenerator:
    spec = registry.get_variant(variant)
    if spec.source == "toy":
        return build_toy(spec.name)
    if spec.source == "tiny":
        return build_tiny()
    return build_released(spec.name)
