"""Metric maths with av-benchmark's definitions (pure functions on arrays; no models).

- `frechet_distance(gen, ref)`: Fréchet distance of Gaussians fitted to two embedding sets (mean,
  `np.cov(rowvar=False)`), with `scipy.linalg.sqrtm` of the covariance product as av-benchmark (after
  pytorch-fid) does (without the deprecated `disp` flag): an `eps` diagonal offset if the product is singular, the real part kept if the
  imaginary residue is small. Unpaired: the two sets may differ in size.
- `kl_paired(gen_logits, ref_logits)`: paired KL(ref || gen) of class posteriors, summed over classes and
  averaged over pairs (av-benchmark `compute_kl`: `kl_div(log p_gen, log p_ref, reduction="sum",
  log_target=True) / N`), with `softmax` (the "KL-…-softmax" numbers the papers report) or `sigmoid`.
- `inception_score(logits, splits=10, shuffle_seed=2020)`: av-benchmark's `compute_isc` (torch-fidelity):
  softmax posteriors in float64, rows shuffled with `np.random.RandomState(seed)`, `splits` chunks
  `i*N//splits:(i+1)*N//splits`, per chunk `exp(mean_i KL(p_i || mean p))`; returns (mean, std).
- `mean_cosine(a, b)`: paired cosine similarity averaged (IB-score, CLAP score).
- `desync(logits, grid)`: mean |offset| of the arg-max class of the Synchformer sync head.
- `target_vs_distractor(sim)`: the segmentation-aware score from a (stems x true stems) similarity matrix.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch
from scipy import linalg

from saganet.errors import InputError

log = logging.getLogger(__name__)

__all__ = [
    "gaussian_stats",
    "frechet_distance_from_stats",
    "frechet_distance",
    "kl_paired",
    "inception_score",
    "mean_cosine",
    "sync_offset_grid",
    "desync",
    "target_vs_distractor",
]


def _as2d(x, name: str) -> np.ndarray:
    a = x.detach().double().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)
    if a.ndim != 2:
        raise InputError(f"{name}: expected a 2-D array (N, D), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise InputError(f"{name}: holds NaN or inf values; check the inputs that produced it")
    return a


def gaussian_stats(emb) -> tuple[np.ndarray, np.ndarray]:
    """`(N, D)` -> (mean `(D,)`, covariance `(D, D)`) as av-benchmark (`np.cov(rowvar=False)`, N-1)."""
    a = _as2d(emb, "embeddings")
    if len(a) < 2:
        raise InputError(f"a Fréchet distance needs at least 2 embeddings per set, got {len(a)}")
    return a.mean(0), np.atleast_2d(np.cov(a, rowvar=False))


def frechet_distance_from_stats(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """d² = |mu1 - mu2|² + Tr(S1 + S2 - 2 sqrt(S1 S2))."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise InputError(f"embedding sizes differ: {mu1.shape} vs {mu2.shape}")
    diff = mu1 - mu2
    # scipy >= 1.16 dropped `disp`: sqrtm returns the root alone (NaNs when it fails)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # singular products are handled just below
        covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        log.warning("Fréchet distance: singular covariance product; adding %g to the diagonals", eps)
        off = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + off).dot(sigma2 + off))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Fréchet distance: imaginary component {np.max(np.abs(covmean.imag)):.3g}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def frechet_distance(gen, ref, eps: float = 1e-6) -> float:
    """Fréchet distance between the embedding sets `gen (N1, D)` and `ref (N2, D)` (unpaired)."""
    return frechet_distance_from_stats(*gaussian_stats(ref), *gaussian_stats(gen), eps=eps)


def kl_paired(gen_logits, ref_logits, activation: str = "softmax") -> float:
    """Mean over pairs of KL(p_ref || p_gen), summed over classes. Rows of the two arrays are pairs."""
    g = torch.from_numpy(_as2d(gen_logits, "generated logits"))
    r = torch.from_numpy(_as2d(ref_logits, "reference logits"))
    if g.shape != r.shape:
        raise InputError(f"paired logits differ in shape: {tuple(g.shape)} vs {tuple(r.shape)}")
    if activation == "softmax":
        lg, lr = torch.log_softmax(g, 1), torch.log_softmax(r, 1)
    elif activation == "sigmoid":
        lg, lr = torch.nn.functional.logsigmoid(g), torch.nn.functional.logsigmoid(r)
    else:
        raise ValueError(f"activation must be 'softmax' or 'sigmoid', got {activation!r}")
    kl = torch.nn.functional.kl_div(lg, lr, reduction="sum", log_target=True) / len(g)
    return float(kl)


def inception_score(logits, splits: int = 10, shuffle_seed: int | None = 2020) -> tuple[float, float]:
    """(mean, std) over `splits` chunks of exp(E_x KL(p(y|x) || p(y))). Fewer rows than splits -> fewer."""
    a = _as2d(logits, "logits")
    n = len(a)
    if n == 0:
        raise InputError("inception score of an empty set")
    if shuffle_seed is not None:
        a = a[np.random.RandomState(shuffle_seed).permutation(n)]
    t = torch.from_numpy(a)
    p, logp = t.softmax(1), t.log_softmax(1)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        if hi <= lo:
            continue
        q = p[lo:hi].mean(0, keepdim=True)
        # 0 * log(0 / 0) terms count 0 (their limit); av-benchmark would give NaN on such saturated rows
        kl = torch.where(p[lo:hi] > 0, p[lo:hi] * (logp[lo:hi] - q.log()), 0.0).sum(1).mean()
        scores.append(float(kl.exp()))
    return float(np.mean(scores)), float(np.std(scores))


def mean_cosine(a, b) -> float:
    """Mean of the row-wise cosine similarity of paired embeddings `(N, D)`."""
    x, y = torch.from_numpy(_as2d(a, "embeddings")), torch.from_numpy(_as2d(b, "embeddings"))
    if x.shape != y.shape:
        raise InputError(f"paired embeddings differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    return float(torch.cosine_similarity(x, y, dim=-1).mean())


def sync_offset_grid(left: float = -2.0, right: float = 2.0, n: int = 21) -> np.ndarray:
    """The Synchformer's offset classes in seconds: 21 values from -2 to 2 s (0.2 s apart)."""
    return np.linspace(left, right, n)


def desync(logits, grid: np.ndarray | None = None) -> float:
    """Mean |predicted offset| (seconds) over rows of sync-head logits `(N, n_classes)`."""
    a = _as2d(logits, "sync logits")
    g = sync_offset_grid() if grid is None else np.asarray(grid)
    if a.shape[1] != len(g):
        raise InputError(f"sync logits have {a.shape[1]} classes but the offset grid has {len(g)}")
    return float(np.abs(g[a.argmax(1)]).mean())


def target_vs_distractor(sim) -> dict[str, float]:
    """Segmentation-aware score from `sim (n, n)`: row i = generated stem of object i, column j = the
    true stem of object j. Accuracy: fraction of rows whose own stem (the diagonal) is the most
    similar; margin: mean of (own similarity - best other similarity). Needs n >= 2."""
    s = np.asarray(sim, np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape[0] < 2:
        raise InputError(f"target vs distractor needs a square similarity matrix with n >= 2, got {s.shape}")
    own = np.diag(s)
    other = np.where(np.eye(len(s), dtype=bool), -np.inf, s).max(1)
    return {"accuracy": float((own > other).mean()), "margin": float((own - other).mean())}
