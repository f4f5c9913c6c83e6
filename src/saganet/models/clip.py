"""CLIP image and per-token text features through open_clip (RN-37).

The module itself does no file I/O except `from_pretrained` (open_clip's own hub loader); weights on disk are
read by `saganet.pretrained.clip_from_checkpoint`. Failures become one-line `CheckpointError`s.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from saganet.errors import CheckpointError

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_HUB_ID = "hf-hub:apple/DFN5B-CLIP-ViT-H-14-384"
DEFAULT_TOKENIZER = "ViT-H-14-378-quickgelu"


class ClipEncoder(nn.Module):
    """Wraps an open_clip `CLIP` model and its tokenizer (a callable `list[str] -> (B, context) int64`)."""

    def __init__(self, model: nn.Module, tokenizer: Callable[[list[str]], torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def image_size(self) -> tuple[int, int]:
        size = self.model.visual.image_size
        return (size, size) if isinstance(size, int) else tuple(size)

    @property
    def image_dim(self) -> int:
        """Dimension of the frame features (the joint embedding size)."""
        return int(self.model.visual.output_dim)

    @property
    def text_dim(self) -> int:
        """Dimension of the per-token text features (the text transformer width)."""
        return int(self.model.ln_final.normalized_shape[0])

    @property
    def context_length(self) -> int:
        return int(self.model.positional_embedding.shape[0])

    @torch.no_grad()
    def encode_frames(self, frames: torch.Tensor, batch_size: int = -1) -> torch.Tensor:
        """Frames `(B, T, 3, H, W)` float in [0, 1] -> L2-normalised features `(B, T, D)`.

        Frames are squashed (no crop) to the model's image size with antialiased bicubic resampling and
        clamped to [0, 1], like the reference's uint8 `Resize((384, 384), bicubic)`, then normalised with
        the CLIP mean/std. `batch_size` frames are encoded at a time (-1: all at once).
        """
        B, T, C, H, W = frames.shape
        if C != 3:
            raise ValueError(f"expected RGB frames (B, T, 3, H, W), got {tuple(frames.shape)}")
        x = frames.reshape(B * T, C, H, W).to(self.mean.dtype)
        if (H, W) != self.image_size:
            x = F.interpolate(x, size=self.image_size, mode="bicubic", align_corners=False, antialias=True)
            x = x.clamp(0.0, 1.0)
        x = (x - self.mean) / self.std
        step = B * T if batch_size <= 0 else batch_size
        with sdpa_attention():
            feats = [self.model.encode_image(x[i : i + step], normalize=True) for i in range(0, B * T, step)]
        return torch.cat(feats).reshape(B, T, -1)

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        return self.tokenizer(list(texts)).to(self.model.positional_embedding.device)

    @torch.no_grad()
    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids `(B, context)` -> per-token features `(B, context, width)`, L2-normalised per token.

        As the reference's patched `encode_text`: token + positional embedding -> transformer with the
        causal mask -> `ln_final`; no pooling and no text projection.
        """
        m = self.model
        cast_dtype = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast_dtype) + m.positional_embedding.to(cast_dtype)
        x = m.transformer(x, attn_mask=m.attn_mask)
        x = m.ln_final(x)
        return F.normalize(x, dim=-1)

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """List of B strings -> `(B, 77, width)` per-token features."""
        return self.encode_tokens(self.tokenize(texts))

    def empty_text_features(self, batch_size: int = 1) -> torch.Tensor:
        """Features of the empty string `(batch_size, context, width)` (MMAudio's `empty_string_feat`)."""
        return self.encode_text([""]).expand(batch_size, -1, -1)


# ----------------------------------------------------------------------------- builders


@contextlib.contextmanager
def sdpa_attention():
    """Run `nn.MultiheadAttention` through `F.scaled_dot_product_attention` (the fused CPU kernel) instead of
    its inference "fast path" (`_native_multi_head_attention`: unfused bmm + softmax). The ViT's image
    attention is ~1.5x faster this way on CPU (tests/models/test_fused_attention.py, benchmarks/)."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def _tokenizer_for(name: str | None, context_length: int):
    import open_clip

    if name is None:
        # open_clip's SimpleTokenizer ships its BPE vocabulary inside the package: works offline.
        return open_clip.SimpleTokenizer(context_length=context_length)
    return open_clip.get_tokenizer(name)


def finish_encoder(model: nn.Module, tokenizer_name: str | None) -> ClipEncoder:
    model.eval().requires_grad_(False)
    context = int(model.positional_embedding.shape[0])
    return ClipEncoder(model, _tokenizer_for(tokenizer_name, context))


def materialize_buffers(model: nn.Module) -> None:
    """Rebuild the non-persistent buffers a meta-device build leaves empty (open_clip's text causal mask)."""
    for name, buf in list(model.named_buffers()):
        if not buf.is_meta:
            continue
        if name == "attn_mask" and buf.ndim == 2 and buf.shape[0] == buf.shape[1]:
            # open_clip's causal mask: -inf above the diagonal, 0 elsewhere (TextTransformer.build_causal_mask)
            mask = torch.full(tuple(buf.shape), float("-inf"), dtype=buf.dtype).triu_(1)
            model.register_buffer("attn_mask", mask, persistent=False)
        else:
            raise ValueError(f"cannot rebuild the buffer {name} of a meta-device CLIP model")


def build_clip_model(model_cfg: Mapping) -> nn.Module:
    """An open_clip `CLIP` with random weights from a model config dict (the `model_cfg` of an
    `open_clip_config.json`: `embed_dim`, `vision_cfg`, `text_cfg`, optional `quick_gelu`).

    We instantiate open_clip's public `CLIP` class directly: the name registry (`add_model_config`)
    only accepts files, and a config given as a dict must not depend on global state.
    """
    import open_clip

    cfg = dict(model_cfg)
    if cfg.get("custom_text") or "hf_model_name" in cfg.get("text_cfg", {}):
        raise CheckpointError("only open_clip configs with the built-in text tower are supported")
    cfg.pop("custom_text", None)
    return open_clip.CLIP(**cfg)


def from_config(model_cfg: Mapping, tokenizer: str | None = None) -> ClipEncoder:
    """Random-weight encoder from a config dict (tiny test models); the default tokenizer works offline."""
    return finish_encoder(build_clip_model(model_cfg), tokenizer)


def from_pretrained(hub_id: str = DEFAULT_HUB_ID, tokenizer: str = DEFAULT_TOKENIZER) -> ClipEncoder:
    """Encoder from the HF hub (or the local hub cache when offline), as the reference does."""
    import open_clip

    try:
        model = open_clip.create_model_from_pretrained(hub_id, return_transform=False)
    except Exception as e:  # offline without cache, network failure, corrupt download
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
        hint = " (HF_HUB_OFFLINE is set and the weights are not in the local cache)" if offline else ""
        raise CheckpointError(
            f"cannot load CLIP weights {hub_id}{hint}: {type(e).__name__}: {e}".splitlines()[0]
        ) from e
    return finish_encoder(model, tokenizer)
