"""Flow-matching trainer for `AudioGenerator` models.

One step: sync features are computed from frames + masks (the video encoder trains end to end),
CLIP/text features and audio latents come precomputed with the batch, then the flow-matching loss
with CFG dropout (RN-39). AdamW, linear warm-up then step decay, gradient clipping,
periodic validation on fixed noise, checkpoints (atomic) that resume exactly where they stopped.
Runs under `torchrun` too: the loss module is wrapped in DistributedDataParallel when a process
group is up, each rank draws its own batches, rank 0 logs and saves. Start with `init_distributed()`,
end with `trainer.close()` and `shutdown_distributed()`.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch import nn
from tqdm import tqdm

from saganet.io.atomic import atomic_path, atomic_write_text
from saganet.models.generator import AudioGenerator
from saganet.models.lora import mark_only_lora_trainable
from saganet.models.sync_encoder import set_trainable
from saganet.sampling import flow_matching_loss

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]
DiTMode = Literal["full", "lora", "frozen"]
EncoderMode = Literal["all", "additions", "none"]


@dataclass
class TrainConfig:
    out_dir: str
    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 1e-6
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 100
    lr_milestones: list[int] = field(default_factory=list)  # step decay by `lr_gamma` at these steps
    lr_gamma: float = 0.1
    clip_grad_norm: float = 1.0
    null_video_p: float = 0.1  # clip AND sync replaced by the learned empty features
    null_text_p: float = 0.5
    dit_mode: DiTMode = "full"
    encoder_mode: EncoderMode = "additions"
    val_every: int = 200
    ckpt_every: int = 200
    log_every: int = 20
    seed: int = 0
    max_minutes: float | None = None  # stop (and save) when this wall-time budget is spent

    def to_dict(self) -> dict:
        return asdict(self)


class FlowTrainModule(nn.Module):
    """Wraps an `AudioGenerator` so that one forward returns the flow-matching loss (DDP-friendly)."""

    def __init__(self, model: AudioGenerator) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch, cfg: TrainConfig, generator: torch.Generator | None = None,
                x0: torch.Tensor | None = None, t: torch.Tensor | None = None) -> torch.Tensor:
        m = self.model
        latent = batch["latent_mean"]
        if "latent_std" in batch:  # reparameterised posterior sample, fresh noise every step
            eps = torch.randn(latent.shape, generator=generator, device=latent.device)
            latent = latent + batch["latent_std"] * eps
        x1 = m.dit.normalize(latent)
        sync_f = m.encode_sync(batch["sync_frames"], batch.get("masks"), batch.get("detail_frames"),
                               batch.get("detail_masks"))
        # a model that does not use CLIP frames gets the learned empty CLIP feature (one rule, in the model)
        conds = m.encode_conditions(clip_f=batch["clip_f"], text_f=batch["text_f"])
        out = flow_matching_loss(m.dit, x1, conds.clip_f, sync_f, conds.text_f, x0=x0, t=t,
                                 null_video_p=cfg.null_video_p, null_text_p=cfg.null_text_p, generator=generator)
        return out.mean_loss


def set_trainable_parts(model: AudioGenerator, dit_mode: DiTMode, encoder_mode: EncoderMode) -> list[nn.Parameter]:
    """Freeze everything, then enable the chosen parts. Returns the trainable parameters."""
    model.requires_grad_(False)
    if dit_mode == "full":
        for name, p in model.dit.named_parameters():
            # latent statistics and the empty text feature are data facts, not learned
            p.requires_grad_(name not in ("latent_mean", "latent_std", "empty_string_feat"))
    elif dit_mode == "lora":
        mark_only_lora_trainable(model.dit, bias="lora_only")
    elif dit_mode != "frozen":
        raise ValueError(f"unknown dit_mode {dit_mode!r} (full, lora, frozen)")
    set_trainable(model.sync_encoder.model, encoder_mode)
    return [p for p in model.parameters() if p.requires_grad]


def _lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    def f(step: int) -> float:
        warm = min(1.0, (step + 1) / (cfg.warmup_steps + 1))
        return warm * cfg.lr_gamma ** sum(step >= m for m in cfg.lr_milestones)

    return f


def _is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


class Trainer:
    """`Trainer(model, sample_batch, cfg, val_batches).fit()`.

    `sample_batch(batch_size, generator) -> Batch` draws a training batch with keys `latent_mean`
    (`(B, N, C)`, VAE units), optional `latent_std`, `clip_f`, `text_f`, `sync_frames`, and for
    segmentation-aware models `masks` (+ optional precomputed `detail_frames`, `detail_masks`).
    """

    def __init__(self, model: AudioGenerator, sample_batch: Callable[[int, torch.Generator], Batch],
                 cfg: TrainConfig, val_batches: list[Batch] | None = None,
                 on_checkpoint: Callable[[AudioGenerator, int], None] | None = None) -> None:
        self.model, self.sample_batch, self.cfg = model, sample_batch, cfg
        self.val_batches = val_batches or []
        self.on_checkpoint = on_checkpoint
        self.out = Path(cfg.out_dir)
        self.params = set_trainable_parts(model, cfg.dit_mode, cfg.encoder_mode)
        if not self.params:
            raise ValueError("nothing to train: every part is frozen")
        self.module: nn.Module = FlowTrainModule(model)
        rank = 0
        if dist.is_initialized():
            from torch.nn.parallel import DistributedDataParallel

            rank = dist.get_rank()
            self.module = DistributedDataParallel(self.module, find_unused_parameters=True)
        self.opt = torch.optim.AdamW(self.params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, _lr_lambda(cfg))
        self.rng = torch.Generator().manual_seed(cfg.seed + rank)
        self.step = 0
        self.history: list[dict] = []

    # -- checkpoints --------------------------------------------------------------------------------
    @property
    def ckpt_path(self) -> Path:
        return self.out / "ckpt_last.pt"

    def save(self) -> None:
        if not _is_main():
            return
        state = {"step": self.step, "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                 "scheduler": self.sched.state_dict(), "rng": self.rng.get_state(),
                 "torch_rng": torch.get_rng_state(), "history": json.dumps(self.history)}
        with atomic_path(self.ckpt_path) as tmp:
            torch.save(state, tmp)
        weights = {k: v.contiguous() for k, v in self.model.state_dict().items()}
        with atomic_path(self.out / "weights_last.safetensors") as tmp:
            save_file(weights, str(tmp))
        atomic_write_text(self.out / "train_config.json", json.dumps(self.cfg.to_dict(), indent=2))
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.model, self.step)

    def try_resume(self) -> bool:
        if not self.ckpt_path.is_file():
            return False
        state = torch.load(self.ckpt_path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])
        self.history = json.loads(state["history"])
        log.info("resumed from %s at step %d", self.ckpt_path, self.step)
        return True

    # -- loop ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> float:
        """Mean loss on the validation batches with fixed noise and times (comparable across steps)."""
        if not self.val_batches:
            return float("nan")
        self.model.eval()
        g = torch.Generator().manual_seed(12345)
        losses = [float(FlowTrainModule(self.model)(b, self.cfg, generator=g)) for b in self.val_batches]
        self.model.train()
        return sum(losses) / len(losses)

    def train_step(self) -> float:
        batch = self.sample_batch(self.cfg.batch_size, self.rng)
        loss = self.module(batch, self.cfg, generator=self.rng)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.clip_grad_norm)
        self.opt.step()
        self.sched.step()
        self.step += 1
        return loss.item()

    def fit(self, quiet: bool = False) -> list[dict]:
        """Train to `cfg.steps` (resuming if a checkpoint exists). Returns the history of logged points."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.try_resume()
        self.model.train()
        start, running = time.time(), []
        bar = tqdm(total=self.cfg.steps, initial=self.step, desc="train", disable=quiet or not _is_main())
        while self.step < self.cfg.steps:
            running.append(self.train_step())
            bar.update(1)
            out_of_time = self.cfg.max_minutes is not None and (time.time() - start) / 60 > self.cfg.max_minutes
            last = self.step >= self.cfg.steps or out_of_time
            if self.step % self.cfg.log_every == 0 or last:
                point = {"step": self.step, "loss": sum(running) / len(running), "lr": self.sched.get_last_lr()[0],
                         "minutes": round((time.time() - start) / 60, 2)}
                running = []
                if self.val_batches and (self.step % self.cfg.val_every == 0 or last):
                    point["val_loss"] = self.validate()
                self.history.append(point)
                bar.set_postfix(loss=f"{point['loss']:.4f}")
                log.info("step %d %s", self.step, {k: v for k, v in point.items() if k != "step"})
            if self.step % self.cfg.ckpt_every == 0 or last:
                self.save()
            if out_of_time:
                log.info("time budget of %.1f min spent at step %d", self.cfg.max_minutes, self.step)
                break
        bar.close()
        return self.history

    def close(self) -> None:
        """Drop the DDP wrapper, so its reducer (which holds the process group) is freed before the group is.

        Left to interpreter exit, gloo's worker threads can be torn down after Python is gone and abort
        the process ("terminate called without an active exception").
        """
        if isinstance(self.module, torch.nn.parallel.DistributedDataParallel):
            self.module = self.module.module


def init_distributed() -> tuple[int, int]:
    """Initialise torch.distributed from torchrun's environment (gloo on CPU, nccl on GPUs)."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1 or dist.is_initialized():
        return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def shutdown_distributed() -> None:
    """End a torchrun job cleanly: free unreachable DDP objects, wait for every rank, destroy the group."""
    if not dist.is_initialized():
        return
    gc.collect()  # a DDP reducer kept alive by a reference cycle would outlive the group otherwise
    dist.barrier()
    dist.destroy_process_group()


