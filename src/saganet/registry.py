"""The one variant registry: every named model, what it is built from and which files it needs.

| variant                           | DiT                  | sync encoder                | codec                |
|-----------------------------------|----------------------|-----------------------------|----------------------|
| saganet_small (= small_44k_sa)    | small_44k_sa + LoRA  | segmentation-aware          | 44k VAE + BigVGAN v2 |
| saganet_small_no_lora             | small_44k_sa_no_lora | segmentation-aware          | 44k                  |
| small_16k                         | small_16k            | plain Synchformer (MMAudio) | 16k VAE + BigVGAN v1 |
| small_44k, medium_44k, large_44k(_v2) | MMAudio          | plain Synchformer           | 44k                  |
| toy, toy_baseline                 | tiny, trained on the toy world, shipped in `saganet/assets/toy`        |
| tiny (tests)                      | tiny random weights, real model classes (tiny CLIP, tiny codec)        |

Everything else (the CLI's variant list, `saganet weights`, which files a download fetches, whether a
variant takes masks) is derived from `VARIANTS`. Building a model from a spec lives in `builders.py`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from saganet import weights
from saganet.errors import SaganetError
from saganet.focal import DEFAULT_FOCAL_MODE, FocalMode

Source = Literal["released", "toy", "tiny"]


@dataclass(frozen=True)
class VariantSpec:
    """A named model.

    `dit` names the DiT architecture in `configs.DIT_VARIANTS`; `codec` is "16k" or "44k"; `checkpoint`
    is the registry file holding the DiT (and, for SAGANet, the segmentation-aware encoder);
    `files`/`hub_models` are everything generation reads; `training_files` the extra start points
    that training from MMAudio reads (RN-49).
    """

    name: str
    source: Source
    segaware: bool
    dit: str = "tiny"
    codec: str = "44k"
    checkpoint: str | None = None
    files: tuple[str, ...] = ()
    hub_models: tuple[str, ...] = ()
    training_files: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    focal_mode: FocalMode = DEFAULT_FOCAL_MODE
    frame_rule: str = "at_or_after"  # how video frames are picked at the model's frame rates (io.video)
    toy_asset: str | None = None
    description: str = ""


_44K_HUB = ("clip", "bigvgan_v2")
_SAGANET_TRAINING = ("synchformer_state_dict.pth", "empty_string.pth", "mmaudio_small_44k.pth")


def _mmaudio(name: str, codec: str = "44k") -> VariantSpec:
    vocoder = ("v1-16.pth", "best_netG.pt") if codec == "16k" else ("v1-44.pth",)
    return VariantSpec(name, "released", segaware=False, dit=name, codec=codec, checkpoint=f"mmaudio_{name}.pth",
                       files=(f"mmaudio_{name}.pth", *vocoder, "synchformer_state_dict.pth"),
                       hub_models=("clip",) if codec == "16k" else _44K_HUB,
                       description=f"MMAudio {name} (no masks: one stem for the whole scene)")


VARIANTS: dict[str, VariantSpec] = {v.name: v for v in (
    VariantSpec("saganet_small", "released", segaware=True, dit="small_44k_sa", checkpoint="saganet.pth",
                files=("saganet.pth", "v1-44.pth"), hub_models=_44K_HUB, training_files=_SAGANET_TRAINING,
                aliases=("small_44k_sa", "saganet"), focal_mode="reference",
                description="SAGANet small, 44.1 kHz, DiT LoRA (the paper's model)"),
    VariantSpec("saganet_small_no_lora", "released", segaware=True, dit="small_44k_sa_no_lora",
                checkpoint="saganet_no_lora.pth", files=("saganet_no_lora.pth", "v1-44.pth"), hub_models=_44K_HUB,
                training_files=_SAGANET_TRAINING, aliases=("small_44k_sa_no_lora", "saganet_no_lora"),
                focal_mode="reference", description="SAGANet small without the DiT LoRA"),
    _mmaudio("small_16k", "16k"),
    _mmaudio("small_44k"),
    _mmaudio("medium_44k"),
    _mmaudio("large_44k"),
    _mmaudio("large_44k_v2"),
    VariantSpec("toy", "toy", segaware=True, toy_asset="saganet_tiny", frame_rule="at_or_before",
                description="SAGANet-tiny trained on the toy world (ships with the package)"),
    VariantSpec("toy_baseline", "toy", segaware=False, toy_asset="baseline_tiny", frame_rule="at_or_before",
                description="the toy world's mask-free baseline (ships with the package)"),
    VariantSpec("tiny", "tiny", segaware=True, codec="16k", description="tiny random weights (tests)"),
)}

ALIASES: dict[str, str] = {a: v.name for v in VARIANTS.values() for a in v.aliases}


def variant_names() -> list[str]:
    return list(VARIANTS)


def canonical(variant: str) -> str:
    """The registry name of `variant` (aliases resolved); unknown names are a one-line error."""
    v = ALIASES.get(variant, variant)
    if v not in VARIANTS:
        raise SaganetError(f"unknown variant '{variant}'; choose one of: {', '.join(VARIANTS)}")
    return v


def get_variant(variant: str) -> VariantSpec:
    return VARIANTS[canonical(variant)]


def is_segaware(variant: str) -> bool:
    """Whether the variant's video encoder takes object masks (known without loading any weights)."""
    return get_variant(variant).segaware


def variant_files(variant: str, training: bool = False) -> list[str]:
    """Registry names of the files `variant` reads to generate (plus, with `training`, its start points)."""
    spec = get_variant(variant)
    files = list(spec.files)
    if training:
        files += [f for f in spec.training_files if f not in files]
    return files


def variant_hub_models(variant: str) -> list[str]:
    return list(get_variant(variant).hub_models)


def variant_for_file(name: str) -> str | None:
    """A variant whose generation needs registry file `name` (for messages that name a command)."""
    for v in VARIANTS.values():
        if name in v.files:
            return v.name
    for v in VARIANTS.values():
        if name in v.training_files:
            return f"{v.name} --for-training"
    return None


def variant_models(variant: str, training: bool = False) -> list[str]:
    """Every model `variant` reads, by key: its registry files, then its hub models."""
    return [*variant_files(variant, training), *variant_hub_models(variant)]


def variant_sources(variant: str, training: bool = False,
                    model_dirs: Mapping[str, str | os.PathLike] | None = None) -> list[weights.ModelSource]:
    """Where each model of `variant` is (or would be) read from, without network access."""
    return [weights.model_source(k, model_dirs) for k in variant_models(variant, training)]


def download_variant(variant: str, training: bool = False, quiet: bool = False, hub: bool = True,
                     model_dirs: Mapping[str, str | os.PathLike] | None = None,
                     on_start: Callable[[weights.ModelSource], None] | None = None) -> list[Path]:
    """Fetch what `variant` needs for generation (with `training`, also its start points); returns paths.

    Registry files in the cache are verified (MD5) and fetched again if bad; user-given local copies are
    used as they are; hub models already in the Hugging Face cache are not fetched again. `on_start` is
    called before each model is fetched or verified (the CLI prints a line).
    """
    v = get_variant(variant).name
    keys = variant_files(v, training) + (variant_hub_models(v) if hub else [])
    out = []
    for key in keys:
        src = weights.model_source(key, model_dirs)
        if on_start is not None:
            on_start(src)
        if src.local:
            out.append(weights.resolve_model(key, needed_by=v, model_dirs=model_dirs))
        elif src.kind == "file":
            out.append(weights.download(key, quiet=quiet))
        else:
            out.append(weights.resolve_hub(key, offline=False, needed_by=v, model_dirs=model_dirs, quiet=quiet))
    return out
