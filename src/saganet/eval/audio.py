"""Audio preparation shared by the embedding models (av-benchmark's `AudioDataset` conventions).

A file is read (soundfile), averaged to mono, its DC offset removed (`wav - wav.mean()`), resampled to
the model's rate and truncated to the evaluated duration. av-benchmark resamples with torchaudio's
windowed-sinc `Resample`; we use `scipy.signal.resample_poly` (polyphase, Kaiser window): torchaudio
is not available here, and the two differ only near Nyquist (well outside every model's mel range).
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np
import torch
from scipy.signal import resample_poly

from saganet.errors import InputError

__all__ = ["resample", "prepare", "SILENCE_RMS"]

SILENCE_RMS = 1e-4  # below -80 dBFS RMS a file counts as silent


@lru_cache(maxsize=32)
def _ratio(src: int, dst: int) -> tuple[int, int]:
    f = Fraction(dst, src)
    return f.numerator, f.denominator


def resample(wav: np.ndarray | torch.Tensor, src: int, dst: int) -> np.ndarray:
    """Mono `(L,)` float waveform from `src` Hz to `dst` Hz -> float32 `(round(L * dst / src),)`."""
    x = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
    x = x.astype(np.float64)
    if src == dst:
        return x.astype(np.float32)
    up, down = _ratio(src, dst)
    y = resample_poly(x, up, down)
    n = int(round(len(x) * dst / src))
    return y[:n].astype(np.float32)


def prepare(wav: np.ndarray | torch.Tensor, sr: int, target_sr: int, duration: float | None,
            remove_dc: bool = True) -> np.ndarray:
    """Mono float32 `(L,)` at `target_sr`, DC removed, cut to `duration` seconds (None: whole file).

    NaN/inf samples are bad input (`InputError`)."""
    x = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav, np.float32)
    if x.ndim == 2:
        x = x.mean(0)
    if x.ndim != 1:
        raise InputError(f"expected mono (L,) or (C, L) audio, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("audio holds NaN or inf samples")
    if remove_dc and len(x):
        x = x - x.mean()
    y = resample(x, sr, target_sr)
    if duration is not None:
        y = y[: int(round(duration * target_sr))]
    return y
