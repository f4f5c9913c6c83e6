"""Embedding models of the evaluation, at their real architectures (random or official weights).

| key | model | rate | used for |
|---|---|---|---|
| `panns` | PANNs CNN14 (16 kHz checkpoint) | 16 kHz | FD_PANNs, KL_PANNs, IS_PANNs, target vs distractor |
| `passt` | PaSST-S (own module: hear21passt needs torchaudio) | 32 kHz | FD_PaSST, KL_PaSST, IS_PaSST |
| `vggish` | VGGish | 16 kHz | FD_VGGish |
| `clap` | LAION-CLAP HTSAT-base via `transformers.ClapModel` (`laion/larger_clap_music_and_speech`) | 48 kHz | CLAP score |
| `imagebind` | ImageBind huge, audio + vision towers only (own module: the package needs torchaudio) | 16 kHz / 0.5 fps | IB-score |
| `synchformer` | Synchformer audio branch + sync head (+ `saganet.models.motionformer` video) | 16 kHz / 25 fps | DeSync |

Packages checked and why each module is our own: docs/evaluation.md.
"""

from __future__ import annotations

from saganet.errors import InputError

__all__ = ["build_embedder", "check_weights", "EMBEDDERS", "WEIGHT_FILES"]

EMBEDDERS = ("panns", "passt", "vggish", "clap", "imagebind", "synchformer")


WEIGHT_FILES = {"panns": "Cnn14_16k_mAP=0.438.pth", "vggish": "vggish-10086976.pth",
                "passt": "passt-s-f128-p16-s10-ap.476-swa.pt", "synchformer": "synchformer_state_dict.pth",
                "imagebind": "imagebind_huge.pth"}


def check_weights(kinds, weights: str = "official") -> None:
    """Fail before any work (one-line `CheckpointError`) when official weights are missing and downloads are off."""
    if weights != "official":
        return
    from saganet.weights import cache_dir, is_offline

    if not is_offline():
        return
    from saganet.eval.embedders.base import resolve_eval_weights

    for k in sorted(kinds):
        if k in WEIGHT_FILES and not (cache_dir() / WEIGHT_FILES[k]).is_file():
            resolve_eval_weights(WEIGHT_FILES[k])  # raises the one-line error naming the URL
        if k == "clap":
            from saganet.eval.embedders.clap import CLAP_HUB
            from saganet.weights import resolve_hub

            resolve_hub(CLAP_HUB, offline=True)


def build_embedder(kind: str, weights: str = "official", size: str = "full"):
    """`weights`: "official" (resolved through saganet.weights), "random", or a checkpoint path.
    `size`: "full" (the real architecture) or "tiny" (random weights only; for tests)."""
    if size not in ("full", "tiny"):
        raise InputError(f"unknown model size '{size}': use full or tiny")
    if size == "tiny" and weights != "random":
        raise InputError("tiny models take random weights only")
    if kind == "panns":
        from saganet.eval.embedders.panns import Cnn14, Cnn14Config, PannsEmbedder

        if weights == "random":
            return PannsEmbedder(Cnn14(Cnn14Config.tiny() if size == "tiny" else None), weights=f"random-{size}")
        return PannsEmbedder.official(None if weights == "official" else weights)
    if kind == "passt":
        from saganet.eval.embedders.passt import PaSST, PaSSTConfig, PaSSTEmbedder

        if weights == "random":
            return PaSSTEmbedder(PaSST(PaSSTConfig.tiny() if size == "tiny" else None), weights=f"random-{size}")
        return PaSSTEmbedder.official(None if weights == "official" else weights)
    if kind == "vggish":
        from saganet.eval.embedders.vggish import VGGish, VGGishConfig, VGGishEmbedder

        if weights == "random":
            return VGGishEmbedder(VGGish(VGGishConfig.tiny() if size == "tiny" else None), weights=f"random-{size}")
        return VGGishEmbedder.official(None if weights == "official" else weights)
    if kind == "clap":
        from saganet.eval.embedders.clap import ClapEmbedder

        return ClapEmbedder.build(weights, size)
    if kind == "imagebind":
        from saganet.eval.embedders.imagebind import ImageBindEmbedder

        return ImageBindEmbedder.build(weights, size)
    if kind == "synchformer":
        from saganet.eval.embedders.sync import SyncEmbedder

        return SyncEmbedder.build(weights, size)
    raise InputError(f"unknown embedding model '{kind}': choose from {', '.join(EMBEDDERS)}")
