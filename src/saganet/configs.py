"""Sequence lengths and MM-DiT configurations (RN-32, RN-33).

`SequenceConfig` turns a duration and an audio sample rate into the token counts of the four streams
(audio latent, CLIP frames, Synchformer features, waveform samples). `DiTConfig` holds the
architecture of the MM-DiT; `dit_config(name, duration)` returns a named variant, with the sequence
lengths recomputed for any duration.

Other components (VAE, vocoder, Synchformer, ...) define their own config dataclasses.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from saganet.errors import SaganetError

__all__ = [
    "SequenceConfig",
    "DiTConfig",
    "DIT_VARIANTS",
    "dit_variant_names",
    "dit_config",
    "sequence_config_for",
    "CONFIG_16K",
    "CONFIG_44K",
    "CONFIG_44K_SA",
]


@dataclass(frozen=True)
class SequenceConfig:
    """Token counts for one clip duration (RN-32).

    `spectrogram_frame_rate` is the mel hop length in samples (256 at 16 kHz, 512 at 44.1 kHz).
    """

    duration: float
    sampling_rate: int
    spectrogram_frame_rate: int
    latent_downsample_rate: int = 2
    clip_frame_rate: int = 8
    sync_frame_rate: int = 25
    sync_num_frames_per_segment: int = 16
    sync_step_size: int = 8
    sync_downsample_rate: int = 2

    @property
    def num_audio_frames(self) -> int:
        """Waveform samples produced by VAE + vocoder: a whole number of latent frames."""
        return self.latent_seq_len * self.spectrogram_frame_rate * self.latent_downsample_rate

    @property
    def latent_seq_len(self) -> int:
        return int(
            math.ceil(self.duration * self.sampling_rate / self.spectrogram_frame_rate / self.latent_downsample_rate)
        )

    @property
    def clip_seq_len(self) -> int:
        return int(self.duration * self.clip_frame_rate)

    @property
    def num_sync_segments(self) -> int:
        """Segments of 16 frames at 25 fps with step 8 (float floor division, as the reference)."""
        frames = self.duration * self.sync_frame_rate
        return int((frames - self.sync_num_frames_per_segment) // self.sync_step_size + 1)

    @property
    def sync_seq_len(self) -> int:
        """8 features per segment (16 frames / temporal downsampling 2)."""
        return int(
            ((self.duration * self.sync_frame_rate - self.sync_num_frames_per_segment) // self.sync_step_size + 1)
            * self.sync_num_frames_per_segment
            / self.sync_downsample_rate
        )

    def with_duration(self, duration: float) -> SequenceConfig:
        return replace(self, duration=float(duration))

    def validate(self) -> None:
        """Raise `SaganetError` when the duration is too short for one Synchformer segment."""
        if self.duration * self.sync_frame_rate < self.sync_num_frames_per_segment:
            min_s = self.sync_num_frames_per_segment / self.sync_frame_rate
            raise SaganetError(f"duration {self.duration:g} s is too short: at least {min_s:g} s is needed")


CONFIG_16K = SequenceConfig(duration=8.0, sampling_rate=16000, spectrogram_frame_rate=256)
CONFIG_44K = SequenceConfig(duration=8.0, sampling_rate=44100, spectrogram_frame_rate=512)
# SAGANet's only sequence config (5 s at 44.1 kHz: latent 216, clip 40, sync 112).
CONFIG_44K_SA = SequenceConfig(duration=5.0, sampling_rate=44100, spectrogram_frame_rate=512)


@dataclass(frozen=True)
class DiTConfig:
    """Architecture of the MM-DiT (`MMAudio` constructor arguments, RN-33).

    `depth` counts all blocks: `depth - fused_depth` joint (three-stream) blocks, the last one
    "pre-only", then `fused_depth` single-stream blocks. The head width is `hidden_dim // num_heads`.
    """

    latent_dim: int
    clip_dim: int
    sync_dim: int
    text_dim: int
    hidden_dim: int
    depth: int
    fused_depth: int
    num_heads: int
    mlp_ratio: float = 4.0
    latent_seq_len: int = 216
    clip_seq_len: int = 40
    sync_seq_len: int = 112
    text_seq_len: int = 77
    v2: bool = False
    use_lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32

    def __post_init__(self) -> None:
        if self.hidden_dim % self.num_heads:
            raise SaganetError(f"hidden_dim {self.hidden_dim} is not divisible by num_heads {self.num_heads}")
        if not 0 <= self.fused_depth < self.depth:
            raise SaganetError(f"need 0 <= fused_depth < depth, got {self.fused_depth} / {self.depth}")
        if self.sync_seq_len % 8:
            raise SaganetError(f"sync_seq_len must be a multiple of 8 (8 features per segment), got {self.sync_seq_len}")

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.num_heads

    @property
    def num_joint_blocks(self) -> int:
        return self.depth - self.fused_depth

    def with_seq(self, seq: SequenceConfig) -> DiTConfig:
        """The same architecture with the sequence lengths of `seq`."""
        seq.validate()
        return replace(
            self, latent_seq_len=seq.latent_seq_len, clip_seq_len=seq.clip_seq_len, sync_seq_len=seq.sync_seq_len
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DiTConfig:
        """Build from a dict of constructor arguments (unknown keys are an error, missing use defaults)."""
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(d) - known)
        if extra:
            raise SaganetError(f"unknown DiT config field(s): {', '.join(extra)}")
        return cls(**d)


def _mmaudio(num_heads: int, latent_dim: int, seq: SequenceConfig, depth: int = 12, fused_depth: int = 8,
             **kw) -> DiTConfig:
    base = DiTConfig(latent_dim=latent_dim, clip_dim=1024, sync_dim=768, text_dim=1024, hidden_dim=64 * num_heads,
                     depth=depth, fused_depth=fused_depth, num_heads=num_heads, **kw)
    return base.with_seq(seq)


# Tiny CPU test model: 16 kHz, 1 s by default (latent 32, clip 8, sync 16).
_CONFIG_TINY_SEQ = SequenceConfig(duration=1.0, sampling_rate=16000, spectrogram_frame_rate=256)

# name -> (config at its built-in duration, sequence config it was built with)
DIT_VARIANTS: dict[str, tuple[DiTConfig, SequenceConfig]] = {
    # MMAudio's own factory (8 s)
    "small_16k": (_mmaudio(7, 20, CONFIG_16K), CONFIG_16K),
    "small_44k": (_mmaudio(7, 40, CONFIG_44K), CONFIG_44K),
    "medium_44k": (_mmaudio(14, 40, CONFIG_44K), CONFIG_44K),
    "large_44k": (_mmaudio(14, 40, CONFIG_44K, depth=21, fused_depth=14), CONFIG_44K),
    "large_44k_v2": (_mmaudio(14, 40, CONFIG_44K, depth=21, fused_depth=14, v2=True), CONFIG_44K),
    # SAGANet's factory (5 s at 44.1 kHz); the `_sa` names carry LoRA on the latent/fused qkv
    "small_44k_sa": (_mmaudio(7, 40, CONFIG_44K_SA, use_lora=True), CONFIG_44K_SA),
    "small_44k_sa_no_lora": (_mmaudio(7, 40, CONFIG_44K_SA), CONFIG_44K_SA),
    "medium_44k_sa": (_mmaudio(14, 40, CONFIG_44K_SA, use_lora=True), CONFIG_44K_SA),
    "medium_44k_sa_no_lora": (_mmaudio(14, 40, CONFIG_44K_SA), CONFIG_44K_SA),
    # tiny, for tests and the synthetic world
    "tiny": (
        DiTConfig(latent_dim=8, clip_dim=16, sync_dim=16, text_dim=16, hidden_dim=64, depth=3, fused_depth=1,
                  num_heads=4, text_seq_len=8).with_seq(_CONFIG_TINY_SEQ),
        _CONFIG_TINY_SEQ,
    ),
}


def dit_variant_names() -> list[str]:
    return list(DIT_VARIANTS)


def _lookup(name: str) -> tuple[DiTConfig, SequenceConfig]:
    try:
        return DIT_VARIANTS[name]
    except KeyError:
        raise SaganetError(f"unknown DiT variant '{name}'; valid names: {', '.join(DIT_VARIANTS)}") from None


def sequence_config_for(name: str, duration: float | None = None) -> SequenceConfig:
    """The `SequenceConfig` of variant `name` (its sample rate and hop), at `duration` if given."""
    seq = _lookup(name)[1]
    return seq if duration is None else seq.with_duration(duration)


def dit_config(name: str, duration: float | None = None) -> DiTConfig:
    """Named DiT variant; with `duration`, sequence lengths are recomputed for that duration.

    Sequence lengths are not part of the weights, so e.g. `small_44k` (8 s) weights load into
    `dit_config("small_44k_sa")` (5 s) unchanged.
    """
    cfg, seq = _lookup(name)
    if duration is None:
        return cfg
    return cfg.with_seq(seq.with_duration(duration))
