"""An analytic audio codec for the toy world: log-mel latents and a Griffin-Lim vocoder.

The real codec (mel VAE + BigVGAN) has hundreds of millions of weights we cannot download or train
here. For the toy world a fixed, training-free codec suffices: the "latent" is a log-mel
spectrogram pooled 2x in time (like the VAE's 2x temporal downsampling), decoding repeats frames,
and vocoding inverts the mel with a pseudo-inverse followed by Griffin-Lim phase recovery.
It exposes the same methods as `saganet.codec` codecs, so the pipeline treats it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from saganet.models.mel import slaney_mel_filterbank


@dataclass
class DeterministicPosterior:
    """A posterior with zero spread: `sample()` and `mode()` both return the mean `(B, N, C)`."""

    mean: torch.Tensor

    @property
    def std(self) -> torch.Tensor:
        return torch.zeros_like(self.mean)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.mean

    def mode(self) -> torch.Tensor:
        return self.mean


class ToyMelCodec(nn.Module):
    """Waveform `(B, L)` <-> latent `(B, N, n_mels)` with N = L // (2 * hop)."""

    def __init__(self, sample_rate: int = 16_000, n_fft: int = 1024, hop: int = 256, n_mels: int = 64,
                 griffin_lim_iters: int = 32) -> None:
        super().__init__()
        self.sample_rate, self.n_fft, self.hop, self.n_mels = sample_rate, n_fft, hop, n_mels
        self.griffin_lim_iters = griffin_lim_iters
        basis = slaney_mel_filterbank(sample_rate, n_fft, n_mels, 0.0, sample_rate / 2)
        self.register_buffer("mel_basis", basis, persistent=False)
        self.register_buffer("mel_pinv", torch.linalg.pinv(basis), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    # -- the codec interface ------------------------------------------------------------------
    @property
    def hop_length(self) -> int:
        """Waveform samples per latent frame."""
        return 2 * self.hop

    @property
    def latent_dim(self) -> int:
        return self.n_mels

    def latent_len(self, num_samples: int) -> int:
        return num_samples // self.hop_length

    def mel(self, wav: torch.Tensor) -> torch.Tensor:
        """Log-mel `(B, n_mels, L // hop)`."""
        spec = torch.stft(wav.float(), self.n_fft, self.hop, window=self.window, center=True, return_complex=True)
        mag = spec.abs()[..., : wav.shape[-1] // self.hop]
        return torch.log(torch.clamp(self.mel_basis @ mag, min=1e-5))

    def encode(self, wav: torch.Tensor) -> DeterministicPosterior:
        mel = self.mel(wav)
        n = mel.shape[-1] // 2
        latent = mel[..., : 2 * n].unflatten(-1, (n, 2)).mean(-1)  # (B, n_mels, N)
        return DeterministicPosterior(latent.transpose(1, 2).contiguous())

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent `(B, N, n_mels)` -> log-mel `(B, n_mels, 2N)`."""
        return latent.transpose(1, 2).repeat_interleave(2, dim=-1)

    def vocode(self, mel: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Log-mel `(B, n_mels, F)` -> waveform `(B, F * hop)` by mel pseudo-inverse + Griffin-Lim."""
        mag = torch.clamp(self.mel_pinv @ torch.exp(mel.float()), min=0.0)
        mag = torch.cat([mag, mag[..., -1:]], dim=-1)  # center=True analysis has one extra frame
        length = mel.shape[-1] * self.hop
        phase = torch.rand(mag.shape, generator=generator, device=mag.device) * 2 * torch.pi
        spec = torch.polar(mag, phase)
        for _ in range(self.griffin_lim_iters):
            wav = torch.istft(spec, self.n_fft, self.hop, window=self.window, center=True, length=length)
            rebuilt = torch.stft(wav, self.n_fft, self.hop, window=self.window, center=True, return_complex=True)
            spec = mag * torch.exp(1j * torch.angle(rebuilt))
        wav = torch.istft(spec, self.n_fft, self.hop, window=self.window, center=True, length=length)
        return wav.clamp(-1.0, 1.0)

    def latents_to_wav(self, latent: torch.Tensor) -> torch.Tensor:
        return self.vocode(self.decode(latent))
