"""The rest of Synchformer for DeSync: the audio branch (AST + frequency aggregation) and the
audio-visual sync head (`GlobalTransformer` over [OFF, 8 visual tokens x S, MOD, 6 audio tokens x S]
-> 21 offset classes, -2 ... 2 s). The visual branch is `saganet.models.motionformer` (key prefix
`vfeat_extractor.`); together they load `synchformer_state_dict.pth` strictly (MMAudio's loader keeps
only `vfeat_extractor.*`; these are the keys it drops).

av-benchmark's audio input (`encode_audio_with_sync`): 16 kHz waveform cut into 0.64 s segments
(10240 samples, step 5120), mel spectrogram (n_fft 1024, win 400, hop 160, 128 HTK mels, power 2,
no norm: torchaudio defaults), `log(mel + 1e-6)`, padded/truncated to 66 frames, normalised
`(x + 4.2677393) / (2 * 4.5689974)`. DeSync compares the first 14 and the last 14 segments of video
and audio (4.48 s each) and averages |offset of the arg-max class|.

The AST is written here (a plain ViT over 16x16 patches with stride 10, CLS + distillation tokens)
with the key names of transformers 4.27 that the released file stores: transformers 5 renamed them
(`layers.N.attention.q_proj`), so its `ASTModel` cannot load the checkpoint directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from saganet.eval.maths import sync_offset_grid

__all__ = ["SyncAVConfig", "AST", "AudioFeatureExtractor", "GlobalTransformer", "SynchformerAV",
           "sync_audio_input", "SEGMENT", "STEP"]

SEGMENT, STEP = 10240, 5120
SPEC_T = 66
_MEAN, _STD = -4.2677393, 4.5689974


@dataclass(frozen=True)
class SyncAVConfig:
    dim: int = 768
    ast_depth: int = 12
    ast_heads: int = 12
    ast_mlp: int = 3072
    n_mels: int = 128
    spec_t: int = SPEC_T
    patch: int = 16
    stride: int = 10
    head_layers: int = 3
    head_heads: int = 8
    n_classes: int = 21
    max_segments: int = 14
    vis_tokens: int = 8  # per segment, from the MotionFormer

    @property
    def grid(self) -> tuple[int, int]:
        """(f, t) patches: (12, 6) for 128 mels x 66 frames."""
        return ((self.n_mels - self.patch) // self.stride + 1, (self.spec_t - self.patch) // self.stride + 1)

    @property
    def seq_len(self) -> int:
        """Head sequence: OFF + S*8 visual + MOD + S*t audio = 198 for the release."""
        return 2 + self.max_segments * (self.vis_tokens + self.grid[1])

    @classmethod
    def tiny(cls) -> SyncAVConfig:
        return cls(dim=32, ast_depth=1, ast_heads=2, ast_mlp=64, head_layers=1, head_heads=2)


# --------------------------------------------------------------------------------------------- AST
class _ASTSelfAttention(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)


class _ASTDense(nn.Module):
    def __init__(self, din: int, dout: int):
        super().__init__()
        self.dense = nn.Linear(din, dout)


class _ASTAttention(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.attention = _ASTSelfAttention(dim)
        self.output = _ASTDense(dim, dim)


class _ASTLayer(nn.Module):
    def __init__(self, cfg: SyncAVConfig):
        super().__init__()
        self.heads = cfg.ast_heads
        self.attention = _ASTAttention(cfg.dim)
        self.intermediate = _ASTDense(cfg.dim, cfg.ast_mlp)
        self.output = _ASTDense(cfg.ast_mlp, cfg.dim)
        self.layernorm_before = nn.LayerNorm(cfg.dim, eps=1e-12)
        self.layernorm_after = nn.LayerNorm(cfg.dim, eps=1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        h = self.layernorm_before(x)
        sa = self.attention.attention

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, N, self.heads, D // self.heads).transpose(1, 2)

        a = F.scaled_dot_product_attention(split(sa.query(h)), split(sa.key(h)), split(sa.value(h)))
        x = x + self.attention.output.dense(a.transpose(1, 2).reshape(B, N, D))
        h = F.gelu(self.intermediate.dense(self.layernorm_after(x)))
        return x + self.output.dense(h)


class _ASTEmbeddings(nn.Module):
    def __init__(self, cfg: SyncAVConfig):
        super().__init__()
        f, t = cfg.grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.distillation_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.position_embeddings = nn.Parameter(torch.zeros(1, f * t + 2, cfg.dim))
        self.patch_embeddings = nn.Module()
        self.patch_embeddings.projection = nn.Conv2d(1, cfg.dim, cfg.patch, stride=(cfg.stride, cfg.stride))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """`(N, T, F)` -> tokens `(N, 2 + f*t, D)` (patches frequency-major, as AST)."""
        x = self.patch_embeddings.projection(spec.unsqueeze(1).transpose(2, 3)).flatten(2).transpose(1, 2)
        n = x.shape[0]
        x = torch.cat([self.cls_token.expand(n, -1, -1), self.distillation_token.expand(n, -1, -1), x], 1)
        return x + self.position_embeddings


class _ASTEncoder(nn.Module):
    def __init__(self, cfg: SyncAVConfig):
        super().__init__()
        self.layer = nn.ModuleList(_ASTLayer(cfg) for _ in range(cfg.ast_depth))


class AST(nn.Module):
    """Audio spectrogram transformer: `(N, T=66, F=128)` -> last hidden state `(N, 2 + 72, D)`."""

    def __init__(self, cfg: SyncAVConfig):
        super().__init__()
        self.embeddings = _ASTEmbeddings(cfg)
        self.encoder = _ASTEncoder(cfg)
        self.layernorm = nn.LayerNorm(cfg.dim, eps=1e-12)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(spec)
        for blk in self.encoder.layer:
            x = blk(x)
        return self.layernorm(x)


class _CLSAggregation(nn.TransformerEncoderLayer):
    """Synchformer's `BaseEncoderLayer`: prepend a learned CLS, one pre-norm encoder layer, keep CLS."""

    def __init__(self, dim: int, heads: int, mlp: int):
        super().__init__(d_model=dim, nhead=heads, dim_feedforward=mlp, dropout=0.0, activation=nn.GELU(),
                         batch_first=True, norm_first=True, layer_norm_eps=1e-6)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:  # type: ignore[override]
        x = torch.cat([self.cls_token.expand(x.shape[0], 1, x.shape[-1]), x], dim=1)
        return super().forward(x)[:, 0]


class AudioFeatureExtractor(nn.Module):
    """`afeat_extractor`: segments' log-mels `(B, S, T, F)` -> `(B, S, t=6, D)`."""

    def __init__(self, cfg: SyncAVConfig):
        super().__init__()
        self.cfg = cfg
        self.ast = AST(cfg)
        self.freq_attn_agg = _CLSAggregation(cfg.dim, cfg.ast_heads, cfg.ast_mlp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, S, T, Fq = x.shape
        h = self.ast(x.reshape(B * S, T, Fq))[:, 2:]  # drop CLS and distillation tokens
        f, t = self.cfg.grid
        h = h.reshape(B * S, f, t, -1).transpose(1, 2).reshape(B * S * t, f, -1)  # time as batch
        return self.freq_attn_agg(h).reshape(B, S, t, -1)


# ------------------------------------------------------------------------------------ sync head
class _HeadAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.key, self.query, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, N, self.heads, D // self.heads).transpose(1, 2)

        a = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)))
        return self.proj(a.transpose(1, 2).reshape(B, N, D))


class _HeadBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = _HeadAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class _PosEmb(nn.Module):
    def __init__(self, n: int, dim: int):
        super().__init__()
        self.pos_emb = nn.Parameter(torch.randn(1, n, dim))


class GlobalTransformer(nn.Module):
    """`transformer`: visual `(B, S*8, D)` + audio `(B, S*6, D)` -> offset logits `(B, 21)`."""

    def __init__(self, cfg: SyncAVConfig):
        super().__init__()
        D = cfg.dim
        self.vis_in_lnorm, self.aud_in_lnorm = nn.LayerNorm(D), nn.LayerNorm(D)
        self.OFF_tok = nn.Parameter(torch.randn(1, 1, D))
        self.MOD_tok = nn.Parameter(torch.randn(1, 1, D))
        self.pos_emb_cfg = _PosEmb(cfg.seq_len, D)
        self.blocks = nn.Sequential(*[_HeadBlock(D, cfg.head_heads) for _ in range(cfg.head_layers)])
        self.ln_f = nn.LayerNorm(D)
        self.off_head = nn.Linear(D, cfg.n_classes)

    def forward(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        B = v.shape[0]
        x = torch.cat([self.OFF_tok.expand(B, -1, -1), self.vis_in_lnorm(v), self.MOD_tok.expand(B, -1, -1),
                       self.aud_in_lnorm(a)], dim=1)
        x = x + self.pos_emb_cfg.pos_emb[:, : x.shape[1]]
        return self.off_head(self.ln_f(self.blocks(x))[:, 0])


class SynchformerAV(nn.Module):
    """Audio branch + projections + sync head (everything of Synchformer but `vfeat_extractor`)."""

    def __init__(self, cfg: SyncAVConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or SyncAVConfig()
        self.afeat_extractor = AudioFeatureExtractor(cfg)
        self.vproj, self.aproj = nn.Linear(cfg.dim, cfg.dim), nn.Linear(cfg.dim, cfg.dim)
        self.transformer = GlobalTransformer(cfg)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        for p in (self.afeat_extractor.ast.embeddings.cls_token, self.afeat_extractor.ast.embeddings.distillation_token,
                  self.afeat_extractor.ast.embeddings.position_embeddings, self.afeat_extractor.freq_attn_agg.cls_token):
            nn.init.trunc_normal_(p, std=0.02)

    def extract_afeats(self, spec: torch.Tensor) -> torch.Tensor:
        """`(B, S, T=66, F=128)` normalised log-mels -> `(B, S, 6, D)`."""
        return self.afeat_extractor(spec)

    def compare_v_a(self, vis: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
        """vis `(B, S, 8, D)`, aud `(B, S, 6, D)` -> logits `(B, 21)`."""
        v, a = self.vproj(vis), self.aproj(aud)
        return self.transformer(v.flatten(1, 2), a.flatten(1, 2))

    def desync_logits(self, vis: torch.Tensor, aud: torch.Tensor) -> torch.Tensor:
        """av-benchmark: logits for the first and the last `max_segments` segments -> `(B, 2, 21)`."""
        n = self.cfg.max_segments
        if vis.shape[1] < n or aud.shape[1] < n:
            raise ValueError(f"DeSync needs >= {n} segments (4.48 s), got video {vis.shape[1]}, audio {aud.shape[1]}")
        return torch.stack([self.compare_v_a(vis[:, :n], aud[:, :n]),
                            self.compare_v_a(vis[:, -n:], aud[:, -n:])], 1)


def _htk_mel_fb(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """torchaudio `melscale_fbanks` defaults (HTK scale, no norm, 0 .. sr/2): `(n_fft // 2 + 1, n_mels)`."""
    from transformers.audio_utils import mel_filter_bank

    return mel_filter_bank(n_fft // 2 + 1, n_mels, 0.0, sr / 2, sr, norm=None, mel_scale="htk")


_FB = None


def sync_audio_input(wav: np.ndarray | torch.Tensor) -> torch.Tensor:
    """16 kHz `(L,)` -> normalised log-mels of 0.64 s segments `(S, 66, 128)` (S = (L - 10240) // 5120 + 1)."""
    global _FB
    x = torch.as_tensor(np.asarray(wav, np.float32))
    if len(x) < SEGMENT:
        raise ValueError(f"audio of {len(x)} samples is shorter than one sync segment ({SEGMENT})")
    if _FB is None:
        _FB = torch.from_numpy(_htk_mel_fb(16000, 1024, 128)).float()
    seg = x.unfold(0, SEGMENT, STEP)  # (S, 10240)
    win = torch.hann_window(400, periodic=True)
    spec = torch.stft(seg, n_fft=1024, hop_length=160, win_length=400, window=win, center=True,
                      pad_mode="reflect", return_complex=True).abs() ** 2  # (S, 513, 65)
    mel = torch.log(_FB.T @ spec + 1e-6)  # (S, 128, 65)
    mel = F.pad(mel, (0, SPEC_T - mel.shape[-1])) if mel.shape[-1] < SPEC_T else mel[..., :SPEC_T]
    return ((mel - _MEAN) / (2 * _STD)).transpose(1, 2).contiguous()  # (S, 66, 128)


OFFSETS = sync_offset_grid()
