"""PANNs CNN14 as av-benchmark uses it: 16 kHz input, 2048-d embedding (`fc1` after ReLU) and 527
AudioSet logits (`fc_audioset`, before the sigmoid). Checkpoint: `Cnn14_16k_mAP=0.438.pth` (Zenodo
3987831; `{"model": state_dict}`), window 512, hop 160, 64 mel bands 50-8000 Hz.

Written here rather than taken from `panns-inference`/`torchlibrosa`: those pull librosa (and numba) for
two fixed matrices; the network is 6 conv blocks. The state-dict layout is the official one,
including torchlibrosa's front end stored as weights (`spectrogram_extractor.stft.conv_real/imag` =
Hann-windowed DFT rows, `logmel_extractor.melW` = librosa's Slaney mel filterbank), so the released
file loads strictly and its stored front end is used as is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from saganet.eval.embedders.base import check_keys, load_state_dict_file, resolve_eval_weights

__all__ = ["Cnn14Config", "Cnn14", "PannsEmbedder", "slaney_mel_filterbank"]


@dataclass(frozen=True)
class Cnn14Config:
    sample_rate: int = 16000
    window_size: int = 512
    hop_size: int = 160
    mel_bins: int = 64
    fmin: float = 50.0
    fmax: float = 8000.0
    classes_num: int = 527
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)

    @classmethod
    def tiny(cls) -> Cnn14Config:
        return cls(widths=(4, 4, 8, 8, 8, 16), classes_num=10)


def slaney_mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """librosa.filters.mel defaults (Slaney mel scale, Slaney area norm): `(n_mels, n_fft // 2 + 1)`."""
    from transformers.audio_utils import mel_filter_bank

    return mel_filter_bank(n_fft // 2 + 1, n_mels, fmin, fmax, sr, norm="slaney", mel_scale="slaney").T


class _STFT(nn.Module):
    """torchlibrosa's STFT as two Conv1d (real/imaginary DFT rows times a periodic Hann window)."""

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        n_bins = n_fft // 2 + 1
        self.conv_real = nn.Conv1d(1, n_bins, n_fft, stride=hop, bias=False)
        self.conv_imag = nn.Conv1d(1, n_bins, n_fft, stride=hop, bias=False)
        n = np.arange(n_fft)
        win = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)
        ang = 2 * np.pi * np.outer(np.arange(n_bins), n) / n_fft
        with torch.no_grad():
            self.conv_real.weight.copy_(torch.from_numpy(np.cos(ang) * win)[:, None].float())
            self.conv_imag.weight.copy_(torch.from_numpy(-np.sin(ang) * win)[:, None].float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, L)` -> power spectrogram `(B, 1, T, F)` (centred, reflect padding)."""
        x = F.pad(x[:, None], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        re, im = self.conv_real(x), self.conv_imag(x)
        return (re**2 + im**2).transpose(1, 2)[:, None]


class _Spectrogram(nn.Module):
    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.stft = _STFT(n_fft, hop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stft(x)


class _LogMel(nn.Module):
    def __init__(self, cfg: Cnn14Config):
        super().__init__()
        fb = slaney_mel_filterbank(cfg.sample_rate, cfg.window_size, cfg.mel_bins, cfg.fmin, cfg.fmax)
        self.melW = nn.Parameter(torch.from_numpy(fb.T.copy()).float(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """power `(B, 1, T, F)` -> dB `(B, 1, T, mel)` (ref 1, amin 1e-10, no top_db)."""
        return 10.0 * torch.log10(torch.clamp(x @ self.melW, min=1e-10))


class _ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return F.avg_pool2d(x, pool)


class Cnn14(nn.Module):
    """`(B, L)` waveform at 16 kHz -> {"2048": `(B, 2048)`, "logits": `(B, 527)`} (eval mode)."""

    def __init__(self, cfg: Cnn14Config | None = None):
        super().__init__()
        self.cfg = cfg = cfg or Cnn14Config()
        self.spectrogram_extractor = _Spectrogram(cfg.window_size, cfg.hop_size)
        self.logmel_extractor = _LogMel(cfg)
        self.bn0 = nn.BatchNorm2d(cfg.mel_bins)
        chans = (1, *cfg.widths)
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", _ConvBlock(chans[i], chans[i + 1]))
        self.fc1 = nn.Linear(cfg.widths[-1], cfg.widths[-1])
        self.fc_audioset = nn.Linear(cfg.widths[-1], cfg.classes_num)
        for m in self.modules():  # PANNs init (xavier, zero bias); matters only for random-weight runs
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, wav: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.logmel_extractor(self.spectrogram_extractor(wav))  # (B, 1, T, 64)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(6):
            x = getattr(self, f"conv_block{i + 1}")(x, (2, 2) if i < 5 else (1, 1))
        x = x.mean(3)
        x = x.max(2).values + x.mean(2)
        h = F.relu(self.fc1(x))
        return {"2048": h, "logits": self.fc_audioset(h)}

    def load_official(self, path) -> None:
        sd = load_state_dict_file(path, key="model")
        check_keys(self, sd, "PANNs CNN14")
        self.load_state_dict(sd)


class PannsEmbedder:
    """PANNs CNN14 embedder: whole prepared clip -> {"embedding": (2048,), "logits": (527,)}."""

    name = "panns"

    def __init__(self, model: Cnn14 | None = None, weights: str = "random"):
        self.model = (model or Cnn14()).eval()
        self.sample_rate = self.model.cfg.sample_rate
        self.weights = weights

    @classmethod
    def official(cls, path=None) -> PannsEmbedder:
        m = Cnn14()
        m.load_official(path or resolve_eval_weights("Cnn14_16k_mAP=0.438.pth"))
        return cls(m, weights="Cnn14_16k_mAP=0.438")

    @property
    def id(self) -> str:
        return f"panns-cnn14-16k/{self.weights}"

    @torch.no_grad()
    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        # five 2x2 poolings need >= 32 frames: shorter clips (< 0.32 s) are zero-padded to that
        x = torch.as_tensor(np.asarray(wav, np.float32))
        min_len = 32 * self.model.cfg.hop_size
        if len(x) < min_len:
            x = F.pad(x, (0, min_len - len(x)))
        out = self.model(x[None])
        return {"embedding": out["2048"][0].numpy(), "logits": out["logits"][0].numpy()}
