"""ImageBind (huge) audio and vision towers for the IB-score (cosine of a generated file's audio
embedding and its video's vision embedding, av-benchmark).

The `imagebind` package is not on PyPI and needs torchaudio and pytorchvideo, so the two towers are
written here with the key names of `imagebind_huge.pth` (`modality_{preprocessors,trunks,heads,
postprocessors}.{vision,audio}.*`); the file's text/depth/thermal/IMU entries are ignored on load.

- vision: frames at 0.5 fps (2 frames for 5 s), shorter side resized to 224 (bicubic), CLIP mean/std,
  three 224 crops along the long side, clips of 2 consecutive frames -> Conv3d 2x14x14 tubelets,
  CLS + learned positions (257), pre-LayerNorm, 32 blocks (1280-d, 16 heads), LayerNorm, CLS ->
  Linear 1280 -> 1024 (no bias), L2 normalisation; the mean over crops x clips.
- audio: 16 kHz, three 2 s clips evenly spread (pytorchvideo `ConstantClipsPerVideoSampler`), Kaldi fbank
  (128 bins, 25 ms Hanning windows, 10 ms shift, no dither, DC and pre-emphasis as Kaldi) padded/cut to
  204 frames, `(x + 4.268) / 9.138` -> 16x16 patches with stride 10 + LayerNorm, CLS + positions (229),
  12 blocks (768-d, 12 heads, key/value bias tokens), LayerNorm, CLS -> Linear 768 -> 1024, L2
  normalisation (x 20, a fixed logit scale); the mean over the three clips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from saganet.eval.embedders.base import check_keys, load_state_dict_file
from saganet.eval.embedders.passt import kaldi_mel_banks

__all__ = ["ImageBindConfig", "ImageBindAV", "ImageBindEmbedder", "kaldi_fbank", "ib_audio_clips", "ib_video_clips"]

IB_AUDIO_SR = 16000
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ImageBindConfig:
    out_dim: int = 1024
    vision_dim: int = 1280
    vision_blocks: int = 32
    vision_heads: int = 16
    image_size: int = 224
    audio_dim: int = 768
    audio_blocks: int = 12
    audio_heads: int = 12
    mel_bins: int = 128
    audio_frames: int = 204

    @classmethod
    def tiny(cls) -> ImageBindConfig:
        return cls(out_dim=8, vision_dim=16, vision_blocks=1, vision_heads=2, image_size=28, audio_dim=16,
                   audio_blocks=1, audio_heads=2)


def kaldi_fbank(wav: np.ndarray, n_mels: int = 128, sr: int = IB_AUDIO_SR) -> np.ndarray:
    """torchaudio `kaldi.fbank` (htk_compat, no energy, hanning, no dither, 25/10 ms, low 20 Hz): `(T, n_mels)`."""
    x = np.asarray(wav, np.float64)
    win_len, shift, n_fft = int(0.025 * sr), int(0.010 * sr), 512
    if len(x) < win_len:
        return np.zeros((0, n_mels))
    n = 1 + (len(x) - win_len) // shift
    fr = x[np.arange(win_len)[None] + shift * np.arange(n)[:, None]]
    fr = fr - fr.mean(1, keepdims=True)
    fr = np.concatenate([fr[:, :1] * (1 - 0.97), fr[:, 1:] - 0.97 * fr[:, :-1]], axis=1)
    fr = fr * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win_len) / (win_len - 1)))
    power = np.abs(np.fft.rfft(fr, n_fft, axis=1)) ** 2
    mel = power @ kaldi_mel_banks(n_mels, n_fft, sr, 20.0, 0.0).T
    return np.log(np.maximum(mel, np.finfo(np.float32).eps))


def ib_audio_clips(wav: np.ndarray, cfg: ImageBindConfig, clips: int = 3, clip_s: float = 2.0) -> torch.Tensor:
    """16 kHz `(L,)` -> normalised fbank clips `(clips, 1, 128, 204)`."""
    x = np.asarray(wav, np.float64)
    dur = len(x) / IB_AUDIO_SR
    step = max(dur - clip_s, 0.0) / max(clips - 1, 1)
    out = []
    for i in range(clips):
        s = i * step
        seg = x[int(s * IB_AUDIO_SR): int((s + clip_s) * IB_AUDIO_SR)]
        fb = kaldi_fbank(seg - seg.mean() if len(seg) else seg, cfg.mel_bins).T  # (128, T)
        fb = np.pad(fb, ((0, 0), (0, max(cfg.audio_frames - fb.shape[1], 0))))[:, : cfg.audio_frames]
        out.append((fb + 4.268) / 9.138)
    return torch.from_numpy(np.stack(out)[:, None]).float()


def ib_video_clips(frames: torch.Tensor, cfg: ImageBindConfig) -> torch.Tensor:
    """Frames at 0.5 fps `(T, 3, H, W)` in [0, 1] -> clips `(3 * (T - 1), 3, 2, S, S)` (3 spatial crops)."""
    T, _, H, W = frames.shape
    if T < 2:
        raise ValueError(f"IB-score needs >= 2 frames at 0.5 fps (a video of >= 4 s), got {T}")
    S = cfg.image_size
    h, w = (S, max(S, round(W * S / H))) if H <= W else (max(S, round(H * S / W)), S)
    x = F.interpolate(frames.float(), size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    x = (x.clamp(0, 1) - torch.tensor(_CLIP_MEAN)[:, None, None]) / torch.tensor(_CLIP_STD)[:, None, None]
    crops = []
    for k in range(3):  # left / centre / right (or top / centre / bottom)
        off = [0, (max(h, w) - S) // 2, max(h, w) - S][k]
        crops.append(x[:, :, :, off:off + S] if w >= h else x[:, :, off:off + S, :])
    clips = [c[t:t + 2].transpose(0, 1) for c in crops for t in range(T - 1)]  # (3, 2, S, S) each
    return torch.stack(clips)


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, bias_kv: bool):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, bias=True, add_bias_kv=bias_kv, batch_first=True)
        self.norm_1, self.norm_2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Module()
        self.mlp.fc1, self.mlp.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm_2(x))))


class _Trunk(nn.Module):
    def __init__(self, dim: int, blocks: int, heads: int, pre_ln: bool, bias_kv: bool):
        super().__init__()
        self.pre_transformer_layer = nn.Sequential(nn.LayerNorm(dim, eps=1e-6) if pre_ln else nn.Identity())
        self.blocks = nn.Sequential(*[_Block(dim, heads, bias_kv) for _ in range(blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.pre_transformer_layer(x))


class _PosHelper(nn.Module):
    def __init__(self, n: int, dim: int):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.randn(1, n, dim) * dim**-0.5)


class _Stem(nn.Module):
    def __init__(self, proj: nn.Module, norm: nn.Module | None):
        super().__init__()
        self.proj = proj
        if norm is not None:
            self.norm_layer = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x).flatten(2).transpose(1, 2)
        return self.norm_layer(x) if hasattr(self, "norm_layer") else x


class _Preprocessor(nn.Module):
    def __init__(self, stem: _Stem, n_patches: int, dim: int):
        super().__init__()
        self.rgbt_stem = stem
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * dim**-0.5)
        self.pos_embedding_helper = _PosHelper(n_patches + 1, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.rgbt_stem(x)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], 1)
        return t + self.pos_embedding_helper.pos_embed


class _Head(nn.Sequential):
    def __init__(self, dim: int, out: int):
        super().__init__(nn.LayerNorm(dim, eps=1e-6), nn.Identity(), nn.Linear(dim, out, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # LayerNorm, CLS, projection
        return self[2](self[0](x)[:, 0])


class _LogitScale(nn.Module):
    def __init__(self, init: float):
        super().__init__()
        self.register_buffer("log_logit_scale", torch.tensor(float(np.log(init))))


class ImageBindAV(nn.Module):
    """`vision(clips (N, 3, 2, S, S)) -> (N, out)`, `audio(clips (N, 1, 128, 204)) -> (N, out)` (normalised)."""

    def __init__(self, cfg: ImageBindConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or ImageBindConfig()
        g = cfg.image_size // 14
        fa, ta = (cfg.mel_bins - 16) // 10 + 1, (cfg.audio_frames - 16) // 10 + 1
        vstem = _Stem(nn.Sequential(nn.Identity(), nn.Conv3d(3, cfg.vision_dim, (2, 14, 14), (2, 14, 14), bias=False)),
                      None)
        astem = _Stem(nn.Conv2d(1, cfg.audio_dim, 16, 10, bias=False), nn.LayerNorm(cfg.audio_dim))
        self.modality_preprocessors = nn.ModuleDict({"vision": _Preprocessor(vstem, g * g, cfg.vision_dim),
                                                     "audio": _Preprocessor(astem, fa * ta, cfg.audio_dim)})
        self.modality_trunks = nn.ModuleDict({
            "vision": _Trunk(cfg.vision_dim, cfg.vision_blocks, cfg.vision_heads, pre_ln=True, bias_kv=False),
            "audio": _Trunk(cfg.audio_dim, cfg.audio_blocks, cfg.audio_heads, pre_ln=False, bias_kv=True)})
        self.modality_heads = nn.ModuleDict({"vision": _Head(cfg.vision_dim, cfg.out_dim),
                                             "audio": _Head(cfg.audio_dim, cfg.out_dim)})
        self.modality_postprocessors = nn.ModuleDict({"audio": nn.Sequential(nn.Identity(), _LogitScale(20.0))})

    def _encode(self, m: str, x: torch.Tensor) -> torch.Tensor:
        h = self.modality_heads[m](self.modality_trunks[m](self.modality_preprocessors[m](x)))
        return F.normalize(h, dim=-1)

    def vision(self, clips: torch.Tensor) -> torch.Tensor:
        return self._encode("vision", clips)

    def audio(self, clips: torch.Tensor) -> torch.Tensor:
        return self._encode("audio", clips) * self.modality_postprocessors["audio"][1].log_logit_scale.exp()

    def load_official(self, path) -> None:
        sd = load_state_dict_file(path)
        keep = {k: v for k, v in sd.items() if k.split(".")[1:2] in (["vision"], ["audio"])}
        scale = "modality_postprocessors.audio.1.log_logit_scale"
        keep.setdefault(scale, self.state_dict()[scale])  # a fixed constant (log 20), a buffer in some versions
        check_keys(self, keep, "ImageBind (vision and audio towers)")
        self.load_state_dict(keep)


class ImageBindEmbedder:
    name = "imagebind"
    sample_rate = IB_AUDIO_SR

    def __init__(self, model: ImageBindAV, weights: str):
        self.model, self.weights = model.eval(), weights

    @classmethod
    def build(cls, weights: str = "official", size: str = "full") -> ImageBindEmbedder:
        if weights == "random":
            return cls(ImageBindAV(ImageBindConfig.tiny() if size == "tiny" else None), f"random-{size}")
        from saganet.eval.embedders.base import resolve_eval_weights

        m = ImageBindAV()
        m.load_official(resolve_eval_weights("imagebind_huge.pth") if weights == "official" else weights)
        return cls(m, "imagebind_huge")

    @property
    def id(self) -> str:
        return f"imagebind-huge/{self.weights}"

    @torch.no_grad()
    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        """16 kHz audio -> {"audio": (1024,)} (mean over three 2 s clips of the normalised embeddings)."""
        return {"audio": self.model.audio(ib_audio_clips(wav, self.model.cfg)).mean(0).numpy()}

    @torch.no_grad()
    def embed_frames(self, frames: torch.Tensor) -> np.ndarray:
        """Frames at 0.5 fps `(T, 3, H, W)` in [0, 1] -> `(1024,)` (mean over crops x clips)."""
        return self.model.vision(ib_video_clips(frames, self.model.cfg)).mean(0).numpy()


def read_frames_at(path, fps: float = 0.5, duration: float | None = None) -> torch.Tensor:
    """RGB frames `(T, 3, H, W)` in [0, 1] at times 0, 1/fps, ... (< duration): the first frame at or after
    each time, as a frame-rate filter picks them. PyAV, decoding stops after the last one needed."""
    import av

    from saganet.errors import InputError

    try:
        container = av.open(str(path))
    except Exception as e:
        raise InputError(f"cannot open video {path}: {e}".splitlines()[0]) from e
    out, k = [], 0
    with container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base) if frame.pts is not None else k / fps
            if duration is not None and k / fps >= duration:
                break
            if t + 1e-6 >= k / fps:
                out.append(torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1))
                k += 1
    if not out:
        raise InputError(f"no frames decoded from {path}")
    return torch.stack(out).float() / 255.0
