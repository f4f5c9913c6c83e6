"""The tiny SAGANet of the toy world and its mask-free baseline: the real model classes, small sizes.

MM-DiT and (segmentation-aware) MotionFormer are the same classes as the released model. CLIP is
replaced by fixed features (no weights to train or ship): frames are average-pooled to a 4x4 RGB
thumbnail, text tokens get fixed pseudo-random vectors. The codec is the analytic `ToyMelCodec`.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from saganet.configs import DiTConfig, SequenceConfig
from saganet.models.dit import MMDiT
from saganet.models.generator import AudioGenerator
from saganet.models.motionformer import MotionFormerConfig, Synchformer
from saganet.models.segaware import SynchformerWithContext
from saganet.models.sync_encoder import SegAwareSyncEncoder, SyncEncoder
from saganet.models.toy_codec import ToyMelCodec


class ToyFrameFeatures(nn.Module):
    """Fixed CLIP stand-in: `frames (B, T, 3, H, W)` in [0, 1] -> `(B, T, 3*grid²)` unit vectors."""

    def __init__(self, grid: int = 4) -> None:
        super().__init__()
        self.grid = grid

    @property
    def dim(self) -> int:
        return 3 * self.grid**2

    def encode_frames(self, frames: torch.Tensor, batch_size: int = -1) -> torch.Tensor:
        """`batch_size` is accepted for the encoder protocol; pooling needs no batching."""
        B, T = frames.shape[:2]
        x = F.adaptive_avg_pool2d(frames.flatten(0, 1).float(), self.grid).flatten(1)  # (B*T, 3*g²)
        x = x - x.mean(-1, keepdim=True)
        return F.normalize(x, dim=-1).view(B, T, -1)


class ToyTextEncoder(nn.Module):
    """Fixed CLIP-text stand-in: each lower-case word gets a fixed random unit vector.

    `texts` -> `(B, seq_len, dim)`; unused positions are zero, so "" encodes to all zeros.
    """

    def __init__(self, dim: int = 32, seq_len: int = 4) -> None:
        super().__init__()
        self.dim, self.seq_len = dim, seq_len

    def word_vector(self, word: str) -> torch.Tensor:
        g = torch.Generator().manual_seed(zlib.crc32(word.encode()))
        return F.normalize(torch.randn(self.dim, generator=g), dim=0)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), self.seq_len, self.dim)
        for i, text in enumerate(texts):
            for j, word in enumerate(text.lower().split()[: self.seq_len]):
                out[i, j] = self.word_vector(word)
        return out


@dataclass
class ToyModelConfig:
    """Sizes of the toy model; `segaware=False` is the MMAudio-style baseline (no masks)."""

    segaware: bool = True
    use_clip_frames: bool = True  # False: the empty CLIP feature instead of frames, at training and generation
    duration: float = 2.56
    sample_rate: int = 16_000
    hop: int = 256
    n_mels: int = 64
    frame_size: int = 64  # sync frames and masks, and focal crops
    clip_size: int = 32  # frames for the fixed CLIP stand-in
    text_dim: int = 32
    text_seq_len: int = 4
    hidden_dim: int = 128
    depth: int = 4
    fused_depth: int = 2
    num_heads: int = 2
    encoder: dict = field(default_factory=lambda: dict(embed_dim=48, depth=2, num_heads=4, cross_attn_heads=12))

    def seq(self) -> SequenceConfig:
        return SequenceConfig(duration=self.duration, sampling_rate=self.sample_rate, spectrogram_frame_rate=self.hop)

    def encoder_config(self) -> MotionFormerConfig:
        return MotionFormerConfig(img_size=self.frame_size, **self.encoder)

    def dit_config(self) -> DiTConfig:
        enc = self.encoder_config()
        return DiTConfig(latent_dim=self.n_mels, clip_dim=ToyFrameFeatures().dim, sync_dim=enc.embed_dim,
                         text_dim=self.text_dim, hidden_dim=self.hidden_dim, depth=self.depth,
                         fused_depth=self.fused_depth, num_heads=self.num_heads,
                         text_seq_len=self.text_seq_len).with_seq(self.seq())

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ToyModelConfig:
        return cls(**d)


def build_toy_model(cfg: ToyModelConfig) -> AudioGenerator:
    """A randomly initialised toy model (SAGANet-tiny, or the baseline when `cfg.segaware` is False)."""
    enc_cfg = cfg.encoder_config()
    if cfg.segaware:
        sync_encoder: nn.Module = SegAwareSyncEncoder(SynchformerWithContext(enc_cfg), chunk_size=256)
    else:
        sync_encoder = SyncEncoder(Synchformer(enc_cfg), chunk_size=256)
    text = ToyTextEncoder(cfg.text_dim, cfg.text_seq_len)
    dit = MMDiT(cfg.dit_config(), latent_mean=torch.zeros(cfg.n_mels), latent_std=torch.ones(cfg.n_mels),
                empty_string_feat=text.encode_text([""])[0])
    codec = ToyMelCodec(cfg.sample_rate, n_fft=4 * cfg.hop, hop=cfg.hop, n_mels=cfg.n_mels)
    return AudioGenerator(dit, sync_encoder, ToyFrameFeatures(), text, codec, cfg.seq(),
                          clip_size=cfg.clip_size, sync_size=cfg.frame_size, use_clip_frames=cfg.use_clip_frames)
