"""PaSST-S (`passt-s-f128-p16-s10-ap.476-swa.pt`) as av-benchmark uses it through `hear21passt`
(`get_basic_model(mode="all")`): 32 kHz audio zero-padded / cut to 10 s -> 527 AudioSet logits and a
768-d embedding (the mean of the CLS and distillation tokens after the final norm).

Written here because `hear21passt` imports torchaudio at module level (its mel front end uses
`torchaudio.compliance.kaldi.get_mel_banks` and torchaudio's masking transforms), and torchaudio does
not load beside our torch. The front end is reproduced in eval mode: pre-emphasis [-0.97, 1], |STFT|²
(n_fft 1024, symmetric Hann of 800, hop 320, centred), Kaldi mel banks (128 bands, 0-15 kHz, HTK mel),
`(log(mel + 1e-5) + 4.5) / 5`. The network is PaSST's ViT (DeiT-B, 16x16 patches with stride 10,
separate frequency and time position embeddings, no patchout at inference); key names follow the
released checkpoint (`patch_embed.proj`, `freq_new_pos_embed`, `time_new_pos_embed`, `new_pos_embed`,
`blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}`, `norm`, `head.{0,1}`, `head_dist`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from saganet.eval.embedders.base import check_keys, load_state_dict_file, resolve_eval_weights

__all__ = ["PaSSTConfig", "PaSST", "PaSSTMel", "PaSSTEmbedder", "kaldi_mel_banks"]

SAMPLE_RATE = 32000
CLIP_SAMPLES = 320000  # av-benchmark pads or cuts to 10 s


@dataclass(frozen=True)
class PaSSTConfig:
    dim: int = 768
    depth: int = 12
    heads: int = 12
    mlp_ratio: int = 4
    n_mels: int = 128
    t_patches: int = 99  # 998 frames (10 s)
    patch: int = 16
    stride: int = 10
    classes: int = 527

    @property
    def f_patches(self) -> int:
        return (self.n_mels - self.patch) // self.stride + 1

    @classmethod
    def tiny(cls) -> PaSSTConfig:
        return cls(dim=16, depth=1, heads=2, classes=10)


def kaldi_mel_banks(n_mels: int, n_fft: int, sr: int, fmin: float, fmax: float) -> np.ndarray:
    """`torchaudio.compliance.kaldi.get_mel_banks` (no VTLN warp), padded to `(n_mels, n_fft // 2 + 1)`."""
    def mel(f):
        return 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)

    n_bins = n_fft // 2
    lo, hi = mel(fmin), mel(fmax if fmax > 0 else sr / 2 + fmax)
    delta = (hi - lo) / (n_mels + 1)
    b = np.arange(n_mels)[:, None]
    left, centre, right = lo + b * delta, lo + (b + 1) * delta, lo + (b + 2) * delta
    m = mel(sr / n_fft * np.arange(n_bins))[None]
    banks = np.maximum(0.0, np.minimum((m - left) / (centre - left), (right - m) / (right - centre)))
    return np.pad(banks, ((0, 0), (0, 1)))


class PaSSTMel(nn.Module):
    """`(B, L)` at 32 kHz -> normalised log-mel `(B, 128, T)` (eval mode of hear21passt's AugmentMelSTFT)."""

    def __init__(self, n_mels: int = 128, n_fft: int = 1024, win: int = 800, hop: int = 320,
                 fmin: float = 0.0, fmax: float = 15000.0):
        super().__init__()
        self.n_fft, self.win, self.hop = n_fft, win, hop
        self.register_buffer("window", torch.hann_window(win, periodic=False), persistent=False)
        self.register_buffer("preemphasis", torch.tensor([[[-0.97, 1.0]]]), persistent=False)
        fb = kaldi_mel_banks(n_mels, n_fft, SAMPLE_RATE, fmin, fmax)
        self.register_buffer("mel_basis", torch.from_numpy(fb).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv1d(x[:, None], self.preemphasis)[:, 0]
        spec = torch.stft(x, self.n_fft, self.hop, self.win, window=self.window, center=True, normalized=False,
                          return_complex=True).abs() ** 2
        return (torch.log(self.mel_basis @ spec + 1e-5) + 4.5) / 5.0


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, D))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, cfg: PaSSTConfig):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(cfg.dim, eps=1e-6), nn.LayerNorm(cfg.dim, eps=1e-6)
        self.attn = _Attention(cfg.dim, cfg.heads)
        self.mlp = _Mlp(cfg.dim, cfg.mlp_ratio * cfg.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PaSST(nn.Module):
    """Log-mel `(B, 1, 128, T)` -> (logits `(B, 527)`, embedding `(B, 768)`)."""

    def __init__(self, cfg: PaSSTConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or PaSSTConfig()
        D = cfg.dim
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(1, D, cfg.patch, stride=cfg.stride)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, D))
        self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, D))
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, D, cfg.f_patches, 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, D, 1, cfg.t_patches))
        self.blocks = nn.Sequential(*[_Block(cfg) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(D, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, cfg.classes))
        self.head_dist = nn.Linear(D, cfg.classes)
        for p in (self.cls_token, self.dist_token, self.new_pos_embed, self.freq_new_pos_embed,
                  self.time_new_pos_embed):
            nn.init.trunc_normal_(p, std=0.02)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.patch_embed.proj(mel)  # (B, D, F', T')
        t = min(x.shape[-1], self.cfg.t_patches)  # longer inputs are cut to 10 s, as PaSST does in eval
        x = x[..., :t] + self.time_new_pos_embed[..., :t] + self.freq_new_pos_embed
        x = x.flatten(2).transpose(1, 2)
        B = x.shape[0]
        cls = (self.cls_token + self.new_pos_embed[:, :1]).expand(B, -1, -1)
        dist = (self.dist_token + self.new_pos_embed[:, 1:]).expand(B, -1, -1)
        x = self.norm(self.blocks(torch.cat([cls, dist, x], 1)))
        logits = (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2
        return logits, (x[:, 0] + x[:, 1]) / 2

    def load_official(self, path) -> None:
        sd = load_state_dict_file(path)
        sd = {k.removeprefix("net."): v for k, v in sd.items() if not k.startswith("mel.")}
        check_keys(self, sd, "PaSST")
        self.load_state_dict(sd)


class PaSSTEmbedder:
    name = "passt"
    sample_rate = SAMPLE_RATE

    def __init__(self, model: PaSST | None = None, weights: str = "random"):
        self.model = (model or PaSST()).eval()
        self.mel = PaSSTMel(n_mels=self.model.cfg.n_mels)
        self.weights = weights

    @classmethod
    def official(cls, path=None) -> PaSSTEmbedder:
        m = PaSST()
        m.load_official(path or resolve_eval_weights("passt-s-f128-p16-s10-ap.476-swa.pt"))
        return cls(m, weights="passt-s-f128-p16-s10-ap.476-swa")

    @property
    def id(self) -> str:
        return f"passt-s/{self.weights}"

    @torch.no_grad()
    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        x = torch.as_tensor(np.asarray(wav, np.float32))[:CLIP_SAMPLES]
        x = F.pad(x, (0, CLIP_SAMPLES - len(x)))
        logits, emb = self.model(self.mel(x[None])[:, None])
        return {"embedding": emb[0].numpy(), "logits": logits[0].numpy()}
