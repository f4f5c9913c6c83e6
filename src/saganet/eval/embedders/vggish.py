"""VGGish as av-benchmark uses it (torchvggish layout, `postprocess=False`): 16 kHz audio framed into
0.96 s examples (96 log-mel frames of 10 ms, 64 HTK-mel bands 125-7500 Hz, 25 ms periodic-Hann windows,
|STFT| with a 512-point FFT, log(mel + 0.01)), each mapped to a 128-d embedding (after the last ReLU).
FD-VGG stacks the per-example embeddings of all files. Checkpoint: `vggish-10086976.pth`.

The log-mel front end follows the reference `mel_features.py` of VGGish (numpy, no resampling
library needed); it is written here because no maintained package ships it without TensorFlow or
torchaudio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from saganet.eval.embedders.base import check_keys, load_state_dict_file, resolve_eval_weights

__all__ = ["VGGishConfig", "VGGish", "VGGishEmbedder", "vggish_log_mel", "vggish_examples"]

SAMPLE_RATE = 16000
WIN, HOP, NFFT = 400, 160, 512
N_MELS, FMIN, FMAX = 64, 125.0, 7500.0
EXAMPLE_FRAMES = 96  # 0.96 s
LOG_OFFSET = 0.01


@dataclass(frozen=True)
class VGGishConfig:
    widths: tuple[int, ...] = (64, 128, 256, 512)
    hidden: int = 4096
    out: int = 128

    @classmethod
    def tiny(cls) -> VGGishConfig:
        return cls(widths=(4, 4, 8, 8), hidden=16, out=8)


def _hz_to_mel(f):
    return 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)


def _mel_matrix() -> np.ndarray:
    """VGGish `spectrogram_to_mel_matrix`: triangles in mel space, DC bin zeroed: `(257, 64)`."""
    bins_mel = _hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, NFFT // 2 + 1))
    edges = np.linspace(_hz_to_mel(FMIN), _hz_to_mel(FMAX), N_MELS + 2)
    lo, ce, hi = edges[:-2], edges[1:-1], edges[2:]
    lower = (bins_mel[:, None] - lo) / (ce - lo)
    upper = (hi - bins_mel[:, None]) / (hi - ce)
    w = np.maximum(0.0, np.minimum(lower, upper))
    w[0, :] = 0.0
    return w


_MEL = _mel_matrix()


def vggish_log_mel(wav: np.ndarray) -> np.ndarray:
    """16 kHz mono `(L,)` -> log-mel `(n_frames, 64)`, frames without centre padding."""
    x = np.asarray(wav, np.float64)
    if len(x) < WIN:
        return np.zeros((0, N_MELS))
    n = 1 + (len(x) - WIN) // HOP
    idx = np.arange(WIN)[None] + HOP * np.arange(n)[:, None]
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)  # periodic Hann
    mag = np.abs(np.fft.rfft(x[idx] * win, NFFT, axis=1))
    return np.log(mag @ _MEL + LOG_OFFSET)


def vggish_examples(wav: np.ndarray) -> np.ndarray:
    """`(L,)` at 16 kHz -> examples `(N, 1, 96, 64)` (non-overlapping 0.96 s; a remainder is dropped)."""
    mel = vggish_log_mel(wav)
    n = 0 if len(mel) < EXAMPLE_FRAMES else 1 + (len(mel) - EXAMPLE_FRAMES) // EXAMPLE_FRAMES
    ex = np.stack([mel[i * EXAMPLE_FRAMES:(i + 1) * EXAMPLE_FRAMES] for i in range(n)]) if n else \
        np.zeros((0, EXAMPLE_FRAMES, N_MELS))
    return ex[:, None].astype(np.float32)


class VGGish(nn.Module):
    """Examples `(N, 1, 96, 64)` -> embeddings `(N, 128)` (torchvggish key layout)."""

    def __init__(self, cfg: VGGishConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or VGGishConfig()
        c1, c2, c3, c4 = cfg.widths
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(), nn.Conv2d(c4, c4, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.embeddings = nn.Sequential(
            nn.Linear(c4 * 4 * 6, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.out), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, C, 6, 4)
        # flatten in TensorFlow's NHWC order, as the ported weights expect
        x = x.transpose(1, 3).transpose(1, 2).reshape(x.shape[0], -1)
        return self.embeddings(x)

    def load_official(self, path) -> None:
        sd = load_state_dict_file(path)
        sd = {k: v for k, v in sd.items() if not k.startswith("pproc")}
        check_keys(self, sd, "VGGish")
        self.load_state_dict(sd)


class VGGishEmbedder:
    """Clip -> {"frames": (N, 128)} (one row per 0.96 s example; none for clips under 0.975 s)."""

    name = "vggish"
    sample_rate = SAMPLE_RATE

    def __init__(self, model: VGGish | None = None, weights: str = "random"):
        self.model = (model or VGGish()).eval()
        self.weights = weights

    @classmethod
    def official(cls, path=None) -> VGGishEmbedder:
        m = VGGish()
        m.load_official(path or resolve_eval_weights("vggish-10086976.pth"))
        return cls(m, weights="vggish-10086976")

    @property
    def id(self) -> str:
        return f"vggish/{self.weights}"

    @torch.no_grad()
    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        ex = vggish_examples(wav)
        if len(ex) == 0:
            return {"frames": np.zeros((0, self.model.cfg.out), np.float32)}
        return {"frames": self.model(torch.from_numpy(ex)).numpy()}
