"""Rectified-flow / flow-matching path, target and training loss (RN-39).

Convention: t = 0 is noise `x0`, t = 1 is data `x1` (the normalised VAE latent).
Path `x_t = (1 - (1 - σ) t) x0 + t x1`, target velocity `v = x1 - (1 - σ) x0`, σ = `min_sigma` (0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "flow_time_grid",
    "interpolate",
    "target_velocity",
    "flow_loss",
    "sample_logit_normal_t",
    "apply_cfg_dropout",
    "FlowLossOutput",
    "flow_matching_loss",
]


def flow_time_grid(num_steps: int, min_sigma: float = 0.0) -> torch.Tensor:
    """RN-13: reference grid `linspace(0, 1 - min_sigma, num_steps + 1)`, float32 on CPU. (num_steps + 1,)"""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    return torch.linspace(0, 1 - min_sigma, num_steps + 1, dtype=torch.float32)


def _bcast(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, *([1] * (like.ndim - 1)))


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, min_sigma: float = 0.0) -> torch.Tensor:
    """x_t for per-sample t (B,): `(1 - (1 - σ) t) x0 + t x1`. x0, x1 (B, ...)."""
    t = _bcast(t, x0)
    return (1 - (1 - min_sigma) * t) * x0 + t * x1


def target_velocity(x0: torch.Tensor, x1: torch.Tensor, min_sigma: float = 0.0) -> torch.Tensor:
    """d x_t / d t = `x1 - (1 - σ) x0`."""
    return x1 - (1 - min_sigma) * x0


def flow_loss(pred_v: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor, min_sigma: float = 0.0) -> torch.Tensor:
    """Per-sample MSE to the target velocity, mean over all but the batch axis. -> (B,)"""
    err = (pred_v - target_velocity(x0, x1, min_sigma)).pow(2)
    return err.mean(dim=tuple(range(1, err.ndim)))


def sample_logit_normal_t(bs: int, mean: float = 0.0, scale: float = 1.0, *,
                          generator: torch.Generator | None = None,
                          device: torch.device | str | None = None) -> torch.Tensor:
    """One t per sample, `sigmoid(N(mean, scale²))` (SD3 logit-normal). -> (bs,)"""
    dev = generator.device if generator is not None else device
    z = torch.randn(bs, generator=generator, device=dev) * scale + mean
    return torch.sigmoid(z).to(device)


def apply_cfg_dropout(net, clip_f: torch.Tensor, sync_f: torch.Tensor, text_f: torch.Tensor, *,
                      null_video: torch.Tensor | None = None, null_text: torch.Tensor | None = None,
                      null_video_p: float = 0.0, null_text_p: float = 0.0,
                      generator: torch.Generator | None = None):
    """Classifier-free-guidance dropout for training.

    Rows in `null_video` (bool (B,); drawn with probability `null_video_p` if not given) get the
    learned `empty_clip_feat` AND `empty_sync_feat`; rows in `null_text` (drawn independently with
    `null_text_p`) get `empty_string_feat`. Returns new tensors (inputs untouched) and the two masks.
    """
    bs = clip_f.shape[0]

    def draw(p: float) -> torch.Tensor:
        if p <= 0:
            return torch.zeros(bs, dtype=torch.bool, device=clip_f.device)
        dev = generator.device if generator is not None else clip_f.device
        return (torch.rand(bs, generator=generator, device=dev) < p).to(clip_f.device)

    null_video = draw(null_video_p) if null_video is None else null_video.to(clip_f.device, torch.bool)
    null_text = draw(null_text_p) if null_text is None else null_text.to(clip_f.device, torch.bool)
    mv, mt = null_video.view(-1, 1, 1), null_text.view(-1, 1, 1)
    clip_f = torch.where(mv, net.empty_clip_feat.to(clip_f.dtype).unsqueeze(0), clip_f)
    sync_f = torch.where(mv, net.empty_sync_feat.to(sync_f.dtype).unsqueeze(0), sync_f)
    text_f = torch.where(mt, net.empty_string_feat.to(text_f.dtype).unsqueeze(0), text_f)
    return clip_f, sync_f, text_f, null_video, null_text


@dataclass
class FlowLossOutput:
    loss: torch.Tensor  # (B,) per-sample loss
    mean_loss: torch.Tensor  # () the optimised quantity
    xt: torch.Tensor  # (B, N, C)
    pred_v: torch.Tensor  # (B, N, C)
    t: torch.Tensor  # (B,)
    x0: torch.Tensor  # (B, N, C) the noise used
    null_video: torch.Tensor  # (B,) bool
    null_text: torch.Tensor  # (B,) bool


def flow_matching_loss(net, x1: torch.Tensor, clip_f: torch.Tensor, sync_f: torch.Tensor, text_f: torch.Tensor,
                       *, x0: torch.Tensor | None = None, t: torch.Tensor | None = None, min_sigma: float = 0.0,
                       t_mean: float = 0.0, t_scale: float = 1.0,
                       null_video: torch.Tensor | None = None, null_text: torch.Tensor | None = None,
                       null_video_p: float = 0.0, null_text_p: float = 0.0,
                       generator: torch.Generator | None = None) -> FlowLossOutput:
    """One flow-matching training loss of `net` (an `MMDiT`) on normalised latents x1 (B, N, C).

    Missing `x0` (Gaussian) and `t` (logit-normal) are drawn from `generator`. Reference defaults for
    SAGANet training: `null_video_p=0.1`, `null_text_p=0.5`.
    """
    bs = x1.shape[0]
    if x0 is None:
        dev = generator.device if generator is not None else x1.device
        x0 = torch.randn(x1.shape, generator=generator, device=dev, dtype=x1.dtype).to(x1.device)
    if t is None:
        t = sample_logit_normal_t(bs, t_mean, t_scale, generator=generator, device=x1.device).to(x1.dtype)
    clip_f, sync_f, text_f, null_video, null_text = apply_cfg_dropout(
        net, clip_f, sync_f, text_f, null_video=null_video, null_text=null_text,
        null_video_p=null_video_p, null_text_p=null_text_p, generator=generator)
    xt = interpolate(x0, x1, t, min_sigma)
    pred_v = net(xt, clip_f, sync_f, text_f, t)
    loss = flow_loss(pred_v, x0, x1, min_sigma)
    return FlowLossOutput(loss, loss.mean(), xt, pred_v, t, x0, null_video, null_text)
