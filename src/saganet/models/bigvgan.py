"""BigVGAN vocoders: v1 (MMAudio's 16 kHz `BigVGANVocoder`) and v2 (NVIDIA BigVGAN-v2, 44.1 kHz), RN-21.

Why we own this code instead of depending on a package: we need pure PyTorch (no CUDA extension
build), the exact state-dict key layout of both released checkpoints (weight-norm parametrisation
keys, persistent resampler `filter` buffers) and v1 + v2 in one place. The `bigvgan` PyPI package
(NVIDIA, 2.4.x) only covers v2 and pulls training/eval dependencies (librosa, nnaudio, pesq,
tensorboard, matplotlib, ninja, auraloss), which is far too heavy for an inference component.

Mel `(B, num_mels, frames)` -> waveform `(B, 1, frames * prod(upsample_rates))`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from saganet.models.state_dict import load_strict


@dataclass
class BigVGANConfig:
    num_mels: int
    upsample_rates: list[int]
    upsample_kernel_sizes: list[int]
    upsample_initial_channel: int
    resblock_kernel_sizes: list[int]
    resblock_dilation_sizes: list[list[int]]
    resblock: str = "1"
    activation: str = "snakebeta"  # "snake" or "snakebeta"
    snake_logscale: bool = True
    # v2 only; v1 (MMAudio's BigVGANVocoder) always ends with a biased conv and tanh.
    use_tanh_at_final: bool = True
    use_bias_at_final: bool = True
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, d: Mapping) -> BigVGANConfig:
        """Keep the generator fields of a (possibly training) config dict; the rest goes to `extra`."""
        names = {f for f in cls.__dataclass_fields__ if f != "extra"}
        known = {k: v for k, v in d.items() if k in names}
        return cls(**known, extra={k: v for k, v in d.items() if k not in names})

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_rates)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        return d


# Generator values of MMAudio's `bigvgan_vocoder.yml` (16 kHz, 80 mels, hop 256); v1 model.
BIGVGAN_V1_16K = BigVGANConfig(
    num_mels=80,
    upsample_rates=[4, 4, 2, 2, 2, 2],
    upsample_kernel_sizes=[8, 8, 4, 4, 4, 4],
    upsample_initial_channel=1536,
    resblock_kernel_sizes=[3, 7, 11],
    resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]],
)
# Generator values of nvidia/bigvgan_v2_44khz_128band_512x (44.1 kHz, 128 mels, hop 512).
BIGVGAN_V2_44K = BigVGANConfig(
    num_mels=128,
    upsample_rates=[8, 4, 2, 2, 2, 2],
    upsample_kernel_sizes=[16, 8, 4, 4, 4, 4],
    upsample_initial_channel=1536,
    resblock_kernel_sizes=[3, 7, 11],
    resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    use_tanh_at_final=False,
    use_bias_at_final=False,
)


# ------------------------------------------------------------------ activations (RN-21)


class Snake(nn.Module):
    """x + sin²(αx) / (α + 1e-9), α per channel (stored as log α with `logscale`)."""

    def __init__(self, channels: int, logscale: bool = True) -> None:
        super().__init__()
        self.logscale = logscale
        self.alpha = nn.Parameter(torch.zeros(channels) if logscale else torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None, :, None]
        if self.logscale:
            alpha = torch.exp(alpha)
        return x + (1.0 / (alpha + 1e-9)) * torch.sin(x * alpha).pow(2)


class SnakeBeta(nn.Module):
    """x + sin²(αx) / (β + 1e-9): separate frequency α and magnitude β per channel."""

    def __init__(self, channels: int, logscale: bool = True) -> None:
        super().__init__()
        self.logscale = logscale
        init = torch.zeros(channels) if logscale else torch.ones(channels)
        self.alpha = nn.Parameter(init.clone())
        self.beta = nn.Parameter(init.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha, beta = self.alpha[None, :, None], self.beta[None, :, None]
        if self.logscale:
            alpha, beta = torch.exp(alpha), torch.exp(beta)
        return x + (1.0 / (beta + 1e-9)) * torch.sin(x * alpha).pow(2)


def kaiser_sinc_filter1d(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Kaiser-windowed sinc low-pass `(1, 1, kernel_size)`, normalised to unit DC gain."""
    even = kernel_size % 2 == 0
    half_size = kernel_size // 2
    delta_f = 4 * half_width
    A = 2.285 * (half_size - 1) * math.pi * delta_f + 7.95  # Kaiser's attenuation estimate
    if A > 50.0:
        beta = 0.1102 * (A - 8.7)
    elif A >= 21.0:
        beta = 0.5842 * (A - 21) ** 0.4 + 0.07886 * (A - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    time = (torch.arange(-half_size, half_size) + 0.5) if even else (torch.arange(kernel_size) - half_size)
    filt = 2 * cutoff * window * torch.sinc(2 * cutoff * time)  # torch.sinc is bit-exact with the reference
    filt = filt / filt.sum()
    return filt.view(1, 1, kernel_size)


class UpSample1d(nn.Module):
    """x2 (by default) polyphase up-sampling with replicate padding; `filter` is a persistent buffer."""

    def __init__(self, ratio: int = 2, kernel_size: int = 12) -> None:
        super().__init__()
        self.ratio = ratio
        self.pad = kernel_size // ratio - 1
        self.pad_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.pad_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter1d(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(x, self.filter.expand(C, -1, -1), stride=self.ratio, groups=C)
        return x[..., self.pad_left : -self.pad_right]


class LowPassFilter1d(nn.Module):
    def __init__(self, cutoff: float, half_width: float, stride: int, kernel_size: int = 12) -> None:
        super().__init__()
        even = kernel_size % 2 == 0
        self.pad_left, self.pad_right = kernel_size // 2 - int(even), kernel_size // 2
        self.stride = stride
        self.register_buffer("filter", kaiser_sinc_filter1d(cutoff, half_width, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(C, -1, -1), stride=self.stride, groups=C)


class DownSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int = 12) -> None:
        super().__init__()
        self.lowpass = LowPassFilter1d(0.5 / ratio, 0.6 / ratio, stride=ratio, kernel_size=kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class Activation1d(nn.Module):
    """Anti-aliased activation: 2x up-sample -> snake -> 2x down-sample (12-tap kaiser-sinc filters)."""

    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.act = act
        self.upsample = UpSample1d(2, 12)
        self.downsample = DownSample1d(2, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


def _make_activation(cfg: BigVGANConfig, channels: int) -> Activation1d:
    if cfg.activation == "snake":
        return Activation1d(Snake(channels, cfg.snake_logscale))
    if cfg.activation == "snakebeta":
        return Activation1d(SnakeBeta(channels, cfg.snake_logscale))
    raise ValueError(f"unknown BigVGAN activation {cfg.activation!r} (snake or snakebeta)")


def _padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


def _wn_conv(*args, **kwargs) -> nn.Conv1d:
    return weight_norm(nn.Conv1d(*args, **kwargs))


# ----------------------------------------------------------------------------- AMP residual blocks


class AMPBlock1(nn.Module):
    """Per dilation d: x += conv2(act(conv1_d(act(x)))), all convs weight-normed, 'same' length."""

    def __init__(self, cfg: BigVGANConfig, channels: int, kernel_size: int, dilation: list[int]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            _wn_conv(channels, channels, kernel_size, 1, dilation=d, padding=_padding(kernel_size, d))
            for d in dilation
        )
        self.convs2 = nn.ModuleList(
            _wn_conv(channels, channels, kernel_size, 1, dilation=1, padding=_padding(kernel_size, 1))
            for _ in dilation
        )
        self.activations = nn.ModuleList(_make_activation(cfg, channels) for _ in range(2 * len(dilation)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acts1, acts2 = self.activations[::2], self.activations[1::2]
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, acts1, acts2, strict=True):
            x = x + c2(a2(c1(a1(x))))
        return x


class AMPBlock2(nn.Module):
    """Per dilation d: x += conv_d(act(x)). (The reference v2 `remove_weight_norm` crashes for it, RN-31;
    ours works.)"""

    def __init__(self, cfg: BigVGANConfig, channels: int, kernel_size: int, dilation: list[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            _wn_conv(channels, channels, kernel_size, 1, dilation=d, padding=_padding(kernel_size, d))
            for d in dilation
        )
        self.activations = nn.ModuleList(_make_activation(cfg, channels) for _ in dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c, a in zip(self.convs, self.activations, strict=True):
            x = x + c(a(x))
        return x


# ----------------------------------------------------------------------------- generator


class BigVGAN(nn.Module):
    """BigVGAN generator. `version=1`: MMAudio's BigVGANVocoder (bias + tanh at the end, whatever the config
    says); `version=2`: BigVGAN-v2 (`use_bias_at_final`, `use_tanh_at_final`, else clamp to [-1, 1])."""

    def __init__(self, cfg: BigVGANConfig, version: int = 2) -> None:
        super().__init__()
        if version not in (1, 2):
            raise ValueError(f"BigVGAN version must be 1 or 2, got {version}")
        if cfg.resblock not in ("1", "2"):
            raise ValueError(f"unknown BigVGAN resblock type {cfg.resblock!r}")
        self.cfg, self.version = cfg, version
        self.use_tanh = True if version == 1 else cfg.use_tanh_at_final
        use_bias = True if version == 1 else cfg.use_bias_at_final
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        ch0 = cfg.upsample_initial_channel

        self.conv_pre = _wn_conv(cfg.num_mels, ch0, 7, 1, padding=3)
        # Each upsampler sits in its own ModuleList (key `ups.<i>.0`), as in the reference.
        self.ups = nn.ModuleList(
            nn.ModuleList(
                [
                    weight_norm(
                        nn.ConvTranspose1d(ch0 // 2**i, ch0 // 2 ** (i + 1), k, u, padding=(k - u) // 2)
                    )
                ]
            )
            for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes, strict=True))
        )
        block = AMPBlock1 if cfg.resblock == "1" else AMPBlock2
        self.resblocks = nn.ModuleList()
        for i in range(len(self.ups)):
            ch = ch0 // 2 ** (i + 1)
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes, strict=True):
                self.resblocks.append(block(cfg, ch, k, d))
        self.activation_post = _make_activation(cfg, ch)
        self.conv_post = _wn_conv(ch, 1, 7, 1, padding=3, bias=use_bias)

    @property
    def hop_length(self) -> int:
        return self.cfg.hop_length

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up[0](x)
            # Multi-receptive-field fusion: mean of the resblocks of this level.
            xs = self.resblocks[i * self.num_kernels](x)
            for j in range(1, self.num_kernels):
                xs = xs + self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x) if self.use_tanh else x.clamp(-1.0, 1.0)

    def remove_weight_norm(self) -> BigVGAN:
        """Fold g * v / ||v|| into plain `weight` parameters (keys `<conv>.weight`)."""
        for m in self.modules():
            if parametrize.is_parametrized(m, "weight"):
                parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
        return self


def rename_legacy_weight_norm(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map old `torch.nn.utils.weight_norm` keys (`<conv>.weight_g` / `.weight_v`) to the parametrisation keys
    (`<conv>.parametrizations.weight.original0` / `original1`)."""
    out = {}
    for k, v in state_dict.items():
        if k.endswith(".weight_g"):
            k = k[: -len("weight_g")] + "parametrizations.weight.original0"
        elif k.endswith(".weight_v"):
            k = k[: -len("weight_v")] + "parametrizations.weight.original1"
        out[k] = v
    return out


def load_bigvgan_state_dict(model: BigVGAN, state_dict: Mapping[str, torch.Tensor]) -> BigVGAN:
    """Strictly load a weight-normed generator state dict (old or new weight-norm key names), then remove
    weight norm. Resampler `filter` buffers absent from an old checkpoint are taken from the module: they are
    computed constants, not learned."""
    sd = rename_legacy_weight_norm(state_dict)
    own = model.state_dict()
    for k in own:
        if k.endswith(".filter") and k not in sd:
            sd[k] = own[k]
    load_strict(model, sd, what=f"BigVGAN v{model.version}")
    model.remove_weight_norm()
    return model
