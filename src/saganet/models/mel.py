"""Log-mel spectrogram front end of the audio VAE (RN-19).

Pure torch: the Slaney mel filterbank is written here by hand instead of calling
`librosa.filters.mel`, because librosa (and numba behind it) is a heavy dependency for one small
function. The buffers `mel_basis` / `hann_window` are persistent, exactly as in the reference
checkpoints, so loading a state dict restores the reference values bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class MelConfig:
    sampling_rate: int
    n_fft: int
    num_mels: int
    hop_size: int
    win_size: int
    fmin: float
    fmax: float
    norm_fn: str  # "log10" (16k) or "log" (44k)


MEL_PRESETS: dict[str, MelConfig] = {
    "16k": MelConfig(16_000, 1024, 80, 256, 1024, 0, 8000, "log10"),
    "44k": MelConfig(44_100, 2048, 128, 512, 2048, 0, 22050.0, "log"),
}


def _hz_to_mel_slaney(f: torch.Tensor) -> torch.Tensor:
    """Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    mels = f / f_sp
    return torch.where(f >= min_log_hz, min_log_mel + torch.log(f / min_log_hz) / logstep, mels)


def _mel_to_hz_slaney(m: torch.Tensor) -> torch.Tensor:
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    freqs = f_sp * m
    return torch.where(m >= min_log_mel, min_log_hz * torch.exp(logstep * (m - min_log_mel)), freqs)


def slaney_mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> torch.Tensor:
    """Mel filterbank `(n_mels, n_fft // 2 + 1)` equal to `librosa.filters.mel` defaults (htk=False, norm="slaney").

    Computed in float64 like librosa; the triangles are rounded to float32 before the Slaney area
    normalisation, as librosa does (its weight array is float32 and normalised in place).
    """
    fft_freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * (1.0 / (n_fft * (1.0 / sr)))  # rfftfreq
    mel_pts = torch.linspace(
        float(_hz_to_mel_slaney(torch.tensor(float(fmin), dtype=torch.float64))),
        float(_hz_to_mel_slaney(torch.tensor(float(fmax), dtype=torch.float64))),
        n_mels + 2,
        dtype=torch.float64,
    )
    mel_f = _mel_to_hz_slaney(mel_pts)  # (n_mels + 2,) band edges in Hz
    fdiff = mel_f[1:] - mel_f[:-1]
    ramps = mel_f[:, None] - fft_freqs[None, :]  # (n_mels + 2, n_freq)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0).to(torch.float32)
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])  # Slaney: constant energy per band
    return (weights.double() * enorm[:, None]).to(torch.float32)


class MelConverter(nn.Module):
    """Waveform `(B, L)` in [-1, 1] -> log-mel `(B, num_mels, frames)`, frames = L // hop_size (RN-19)."""

    def __init__(
        self,
        sampling_rate: int,
        n_fft: int,
        num_mels: int,
        hop_size: int,
        win_size: int,
        fmin: float,
        fmax: float,
        norm_fn: str,
    ) -> None:
        super().__init__()
        if norm_fn not in ("log10", "log"):
            raise ValueError(f"norm_fn must be 'log10' or 'log', got {norm_fn!r}")
        self.config = MelConfig(sampling_rate, n_fft, num_mels, hop_size, win_size, fmin, fmax, norm_fn)
        self.sampling_rate, self.n_fft, self.num_mels = sampling_rate, n_fft, num_mels
        self.hop_size, self.win_size, self.norm_fn = hop_size, win_size, norm_fn
        self.register_buffer("mel_basis", slaney_mel_filterbank(sampling_rate, n_fft, num_mels, fmin, fmax))
        self.register_buffer("hann_window", torch.hann_window(win_size))  # periodic Hann

    @classmethod
    def from_preset(cls, name: str) -> MelConverter:
        if name not in MEL_PRESETS:
            raise ValueError(f"unknown mel preset {name!r} (known: {sorted(MEL_PRESETS)})")
        return cls(**asdict(MEL_PRESETS[name]))

    def magnitude(self, waveform: torch.Tensor) -> torch.Tensor:
        """Linear magnitude spectrogram `(B, n_fft // 2 + 1, frames)`."""
        x = waveform.clamp(-1.0, 1.0)
        pad = (self.n_fft - self.hop_size) // 2  # reflect pad instead of center=True (RN-19)
        x = nn.functional.pad(x.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            x,
            self.n_fft,
            hop_length=self.hop_size,
            win_length=self.win_size,
            window=self.hann_window,
            center=False,
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        spec = torch.view_as_real(spec)
        return torch.sqrt(spec.pow(2).sum(-1) + 1e-9)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        mel = torch.matmul(self.mel_basis, self.magnitude(waveform))
        mel = mel.clamp(min=1e-5)
        return torch.log10(mel) if self.norm_fn == "log10" else torch.log(mel)
