"""Audio files via soundfile (wav/flac): read as float32, write atomically."""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf
import torch

from saganet.errors import InputError
from saganet.io.atomic import atomic_path


def write_audio(path: str | os.PathLike, wav: torch.Tensor | np.ndarray, sample_rate: int) -> None:
    """Write `wav` of shape `(L,)` (mono) or `(C, L)` to wav/flac (by suffix), atomically.

    Values are clipped to [-1, 1]; flac is written as 24-bit PCM, wav as 32-bit float.
    """
    a = wav.detach().float().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav, np.float32)
    if a.ndim == 2:
        a = a.T  # soundfile wants (L, C)
    a = np.clip(a, -1.0, 1.0)
    fmt = str(path).rsplit(".", 1)[-1].lower()
    subtype = {"flac": "PCM_24", "wav": "FLOAT"}.get(fmt)
    if subtype is None:
        raise InputError(f"unsupported audio format '.{fmt}' for {path}: use .flac or .wav")
    with atomic_path(path) as tmp:
        sf.write(str(tmp), a, sample_rate, subtype=subtype, format=fmt.upper())


def read_audio(path: str | os.PathLike, mono: bool = True) -> tuple[torch.Tensor, int]:
    """Read an audio file to float32 `(L,)` (mono, channel mean) or `(C, L)`; returns (wav, sample_rate)."""
    try:
        a, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        raise InputError(f"cannot read audio {path}: {e}".splitlines()[0]) from e
    t = torch.from_numpy(a.T.copy())
    return (t.mean(0) if mono else t), int(sr)
