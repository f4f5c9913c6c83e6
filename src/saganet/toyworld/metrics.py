"""Analytic metrics for the toy world (no learned model).

- class accuracy: nearest-exemplar classification on spectral-shape features, exemplars built from
  clean stems of the world (`build_class_templates`);
- onset F1 at +-50 ms against the target's onsets (spectral-flux onset detector tuned on clean stems),
  and *distractor* onset F1 against the other objects' onsets (leakage);
- log-mel L1 distance to the target stem;
- bootstrap 95 % confidence intervals for the means (`bootstrap_ci`, `summarise`).

All functions take numpy arrays or torch tensors holding mono audio `(L,)` at the world's sample rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from saganet.toyworld.world import CLASS_NAMES, WorldConfig, get_class, render_stem, sample_object

__all__ = [
    "ClassTemplates",
    "logmel",
    "class_features",
    "build_class_templates",
    "classify",
    "SILENCE",
    "onset_strength",
    "detect_onsets",
    "onset_f1",
    "logmel_distance",
    "evaluate_target",
    "bootstrap_ci",
    "summarise",
]


def _np(x: np.ndarray | torch.Tensor) -> np.ndarray:
    a = x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    a = a.astype(np.float64)
    if a.ndim == 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 1:
        raise ValueError(f"expected mono audio (L,), got shape {a.shape}")
    return a


# ----------------------------------------------------------------------------------------------
# spectra


def _stft_mag(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred (zero-padded) Hann STFT magnitude in amplitude units (a full-scale sine -> ~1): `(F, N)`."""
    win = np.hanning(n_fft + 1)[:-1]
    xp = np.pad(x, (n_fft // 2, n_fft // 2))
    n = 1 + (len(xp) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    spec = np.fft.rfft(xp[idx] * win[None], axis=1)
    return (np.abs(spec) / (win.sum() / 2)).T


@lru_cache(maxsize=8)
def _mel_fb(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """HTK-style triangular mel filterbank `(n_mels, n_fft // 2 + 1)`."""

    def hz2mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    mels = np.linspace(hz2mel(np.array(fmin)), hz2mel(np.array(fmax)), n_mels + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    f = np.fft.rfftfreq(n_fft, 1.0 / sr)
    lo, ce, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    fb = np.maximum(0.0, np.minimum((f[None] - lo) / (ce - lo), (hi - f[None]) / (hi - ce)))
    return fb


def logmel(
    wav: np.ndarray | torch.Tensor, sr: int = 16000, n_fft: int = 1024, hop: int = 256, n_mels: int = 80
) -> np.ndarray:
    """log10 mel magnitude `(n_mels, N)`, clamped at 1e-5 (the 16 kHz MMAudio mel convention, HTK filters)."""
    mag = _stft_mag(_np(wav), n_fft, hop)
    return np.log10(np.maximum(_mel_fb(sr, n_fft, n_mels, 0.0, sr / 2) @ mag, 1e-5))


# ----------------------------------------------------------------------------------------------
# class templates


_N_CLASS_MELS = 48


def class_features(wav: np.ndarray | torch.Tensor, sr: int = 16000) -> np.ndarray:
    """Level-independent spectral-shape features `(48,)`: the unit-norm mel *magnitude* spectrum.

    Mel power (48 bands, 30 Hz - 8 kHz) is summed over active frames (within 30 dB of the loudest),
    square-rooted and L2-normalised. The square root (rather than a log) keeps the features dominated
    by the strong partials, so additive noise or artefacts barely move them (tuned: ~0.99 accuracy
    at 5 dB SNR white noise with 16 exemplars/class, where log-spectra fall to chance).
    """
    x = _np(wav)
    mag = _stft_mag(x, 1024, 256)
    mel = _mel_fb(sr, 1024, _N_CLASS_MELS, 30.0, sr / 2) @ (mag**2)  # (48, N) power
    e = mel.sum(0)
    if e.max() <= 1e-12:  # digital silence
        return np.zeros(_N_CLASS_MELS)
    spec = np.sqrt(mel[:, e > e.max() * 1e-3].sum(1))
    return spec / np.linalg.norm(spec)


@dataclass
class ClassTemplates:
    """Exemplar features `(N, D)` with labels `(N,)` (indices into `class_names`)."""

    features: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    sample_rate: int = 16000

    def to_dict(self) -> dict:
        return {
            "features": self.features.tolist(),
            "labels": self.labels.tolist(),
            "class_names": list(self.class_names),
            "sample_rate": self.sample_rate,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ClassTemplates:
        return cls(np.asarray(d["features"]), np.asarray(d["labels"]), tuple(d["class_names"]), d["sample_rate"])


def build_class_templates(world_cfg: WorldConfig | None = None, n_per_class: int = 24, seed: int = 0) -> ClassTemplates:
    """Exemplars from `n_per_class` clean stems per class (random pitch and rhythm), seeded."""
    cfg = world_cfg or WorldConfig()
    rng = np.random.default_rng(seed)
    feats, labels = [], []
    for ci, name in enumerate(cfg.classes):
        get_class(name)
        for _ in range(n_per_class):
            stem = render_stem(sample_object(rng, cfg, cls=name), cfg)
            feats.append(class_features(stem, cfg.sample_rate))
            labels.append(ci)
    return ClassTemplates(np.stack(feats), np.asarray(labels), tuple(cfg.classes), cfg.sample_rate)


SILENCE = "silence"
_SILENCE_RMS = 1e-3  # below -60 dBFS RMS a waveform gets no class


def classify(wav: np.ndarray | torch.Tensor, templates: ClassTemplates) -> str:
    """Class name of the nearest exemplar (Euclidean distance on `class_features`); near-silence -> "silence"."""
    x = _np(wav)
    if len(x) == 0 or np.sqrt(np.mean(x**2)) < _SILENCE_RMS:
        return SILENCE
    f = class_features(x, templates.sample_rate)
    d = np.linalg.norm(templates.features - f[None], axis=1)
    return templates.class_names[int(templates.labels[int(np.argmin(d))])]


# ----------------------------------------------------------------------------------------------
# onsets

_ONSET_NFFT, _ONSET_HOP = 512, 128  # 32 ms window, 8 ms hop at 16 kHz
_ONSET_GAMMA = 1000.0  # log compression: log1p(gamma * amplitude)
_ONSET_ABS = 0.15  # absolute flux floor (per bin, log units): below this it is silence / noise
_ONSET_REL = 0.2  # and at least this fraction of the clip's strongest onset
_ONSET_MEDIAN_RATIO = 1.5  # spike = flux - ratio * local median
_ONSET_LAG = 0.002  # the centred-window flux peaks this early (s) on average on clean stems: compensated


def onset_strength(wav: np.ndarray | torch.Tensor, sr: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """Spectral flux on log-compressed magnitude: (strength `(N,)`, frame times `(N,)` seconds)."""
    mag = _stft_mag(_np(wav), _ONSET_NFFT, _ONSET_HOP)
    comp = np.log1p(_ONSET_GAMMA * mag)
    flux = np.maximum(np.diff(comp, axis=1, prepend=comp[:, :1]), 0.0).mean(0) * 10.0
    times = np.arange(len(flux)) * _ONSET_HOP / sr
    return flux, times


def detect_onsets(wav: np.ndarray | torch.Tensor, sr: int = 16000, min_gap: float = 0.08) -> np.ndarray:
    """Onset times (seconds, sorted) by peak picking on `onset_strength`.

    spike = flux - 1.5 x (local median over +-250 ms): stationary sound (noise, drones) has flux near
    its median and gives no spikes. A frame is an onset if it is the maximum within +-50 ms, its spike
    exceeds max(absolute floor, 20 % of the clip's largest spike), and it is >= `min_gap` after the
    previous onset. Tuned on clean stems (F1 ~1.0) and stems + white noise (F1 ~0.97 at 20 dB SNR).
    """
    flux, times = onset_strength(wav, sr)
    if len(flux) == 0:
        return np.zeros(0)
    fps = sr / _ONSET_HOP
    w_max, w_med = max(1, int(round(0.05 * fps))), max(1, int(round(0.25 * fps)))
    win = np.lib.stride_tricks.sliding_window_view(np.pad(flux, (w_med, w_med), mode="edge"), 2 * w_med + 1)
    local_max = win[:, w_med - w_max : w_med + w_max + 1].max(1)
    spike = flux - _ONSET_MEDIAN_RATIO * np.median(win, axis=1)
    thresh = max(_ONSET_ABS, _ONSET_REL * spike.max())
    cand = np.flatnonzero((flux >= local_max) & (spike >= thresh))
    out: list[float] = []
    for i in cand:
        t = times[i] + _ONSET_LAG
        if not out or t - out[-1] >= min_gap:
            out.append(t)
    return np.clip(np.asarray(out), 0.0, None)


def onset_f1(pred_onsets: np.ndarray | list, ref_onsets: np.ndarray | list, tol: float = 0.05) -> float:
    """F1 of one-to-one matching (closest pairs first) within `tol` seconds.

    Both empty -> 1.0 (nothing to find, nothing found); exactly one empty -> 0.0.
    """
    p = np.sort(np.asarray(pred_onsets, np.float64).ravel())
    r = np.sort(np.asarray(ref_onsets, np.float64).ravel())
    if len(p) == 0 and len(r) == 0:
        return 1.0
    if len(p) == 0 or len(r) == 0:
        return 0.0
    d = np.abs(p[:, None] - r[None, :])
    ii, jj = np.nonzero(d <= tol + 1e-9)  # boundary inclusive despite float error
    order = np.argsort(d[ii, jj], kind="stable")
    used_p, used_r, hits = set(), set(), 0
    for k in order:
        i, j = int(ii[k]), int(jj[k])
        if i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
            hits += 1
    return 2.0 * hits / (len(p) + len(r))


# ----------------------------------------------------------------------------------------------
# per-target evaluation


def logmel_distance(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, sr: int = 16000) -> float:
    """Mean absolute difference of `logmel` (log10 units) over the common length."""
    x, y = _np(a), _np(b)
    n = min(len(x), len(y))
    return float(np.abs(logmel(x[:n], sr) - logmel(y[:n], sr)).mean())


def evaluate_target(
    gen_wav: np.ndarray | torch.Tensor,
    target_stem: np.ndarray | torch.Tensor,
    target_onsets: np.ndarray | list,
    distractor_onsets: np.ndarray | list | None,
    target_class: str,
    templates: ClassTemplates,
    tol: float = 0.05,
) -> dict[str, float]:
    """Metrics of one generated waveform against its target object.

    `distractor_onsets`: the other objects' onsets (one array, or a list of arrays); empty/None ->
    `distractor_f1` is NaN (not applicable; `summarise` skips NaNs).
    Returns class_correct (0/1), onset_f1, distractor_f1, logmel_dist, n_pred_onsets.
    """
    sr = templates.sample_rate
    pred = detect_onsets(gen_wav, sr)
    if distractor_onsets is None:
        dis = np.zeros(0)
    elif isinstance(distractor_onsets, (list, tuple)) and any(np.ndim(d) > 0 for d in distractor_onsets):
        dis = np.sort(np.concatenate([np.asarray(d, np.float64).ravel() for d in distractor_onsets]))
    else:
        dis = np.asarray(distractor_onsets, np.float64).ravel()
    return {
        "class_correct": float(classify(gen_wav, templates) == target_class),
        "onset_f1": onset_f1(pred, target_onsets, tol),
        "distractor_f1": onset_f1(pred, dis, tol) if len(dis) else float("nan"),
        "logmel_dist": logmel_distance(gen_wav, target_stem, sr),
        "n_pred_onsets": float(len(pred)),
    }


def bootstrap_ci(
    values: np.ndarray | list, n: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, lo, hi): percentile bootstrap (1 - alpha) CI of the mean; NaNs dropped; all-NaN -> NaNs."""
    v = np.asarray(values, np.float64).ravel()
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return (float("nan"),) * 3
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n, len(v)))].mean(1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    m = float(v.mean())
    return m, float(min(lo, m)), float(max(hi, m))


def summarise(rows: list[dict], n: int = 1000, alpha: float = 0.05, seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Per numeric key of `rows` (bools count as 0/1): (mean, lo, hi) with a bootstrap CI."""
    keys: list[str] = []
    for r in rows:
        for k, v in r.items():
            if k not in keys and isinstance(v, (int, float, bool, np.integer, np.floating)):
                keys.append(k)
    out = {}
    for k in keys:
        vals = [float(r[k]) for r in rows if k in r and isinstance(r[k], (int, float, bool, np.integer, np.floating))]
        out[k] = bootstrap_ci(vals, n=n, alpha=alpha, seed=seed)
    return out


# keep the class list importable from here too (handy for reports)
KNOWN_CLASSES = CLASS_NAMES
