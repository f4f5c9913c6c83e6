"""Flow-matching trainer for `AudioGenerator` models: one loop for the released recipes and the toy world.

One step: sync features are computed from frames + masks (the video encoder's additions train), CLIP/text
features and the VAE posterior come precomputed with the batch, then the flow-matching loss with CFG
dropout (RN-39). AdamW (fused on CUDA), linear warm-up then step decay counted after the warm-up (the
reference's SequentialLR), gradient clipping, bf16 autocast, EMA of the trainable weights (ema-pytorch).
Validation: the loss with frozen noise every `val_every` steps, and every `sample_every` steps clips
generated with the EMA weights and scored by the evaluation suite (`val_sampling.py`, RN-51).

Distributed: under `torchrun` the loss module is wrapped in DistributedDataParallel, each rank reads its
own share of the data (DistributedSampler) and draws its own noise (a generator on the model's device
seeded `seed + rank`); decisions that must agree (stop on the time budget) are all-reduced. Rank 0 logs
and writes. Checkpoints hold only the trainable tensors plus optimizer, scheduler, EMA, every rank's RNG
state, the step and the data position, so a run killed at any point resumes to the same weights.

LoRA bookkeeping: during training every LoRA layer stays UN-merged (its `merge_on_eval` is switched off,
so `.eval()` for validation does not rewrite `qkv.weight` in place, and a model handed over in eval mode
is un-merged first). Exports merge on a copy; `close()` restores the layers' normal behaviour.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset
from tqdm import tqdm

from saganet.errors import InputError
from saganet.io.atomic import atomic_write_text
from saganet.models.generator import AudioGenerator
from saganet.models.lora import lora_layers, mark_only_lora_trainable
from saganet.models.sync_encoder import set_trainable
from saganet.sampling import flow_matching_loss
from saganet.train.config import DiTMode, EncoderMode, TrainConfig, dump_config
from saganet.train.data import batch_to_device, make_loader
from saganet.train.state import (
    STATE_FORMAT,
    STATE_VERSION,
    check_trainables,
    clean_stale_temps,
    export_weights,
    load_state,
    save_state,
)
from saganet.train.val_sampling import ValidationSampler

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]


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
        return out.mean_loss.float()


def set_trainable_parts(model: AudioGenerator, dit_mode: DiTMode, encoder_mode: EncoderMode) -> list[nn.Parameter]:
    """Freeze everything, then enable the chosen parts. Returns the trainable parameters."""
    model.requires_grad_(False)
    if dit_mode == "full":
        for name, p in model.dit.named_parameters():
            # latent statistics and the empty text feature are data facts, not learned
            p.requires_grad_(name not in ("latent_mean", "latent_std", "empty_string_feat"))
    elif dit_mode == "lora":
        if not any(True for _ in lora_layers(model.dit)):
            raise InputError("dit_mode=lora but the DiT has no LoRA layers: set use_lora=true")
        mark_only_lora_trainable(model.dit, bias="lora_only")
    elif dit_mode != "frozen":
        raise ValueError(f"unknown dit_mode {dit_mode!r} (full, lora, frozen)")
    set_trainable(model.sync_encoder.model, encoder_mode)
    return [p for p in model.parameters() if p.requires_grad]


def lr_factor(step: int, warmup_steps: int, milestones: list[int], gamma: float) -> float:
    """The reference schedule: `(step+1)/(warmup+1)` during the warm-up, then ×gamma at each milestone,
    milestones counted from the END of the warm-up (SequentialLR restarts MultiStepLR's counter)."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    return gamma ** sum(step - warmup_steps >= m for m in milestones)


def resolve_device(name: str) -> torch.device:
    """auto -> cuda, else mps, else cpu; an unavailable device is one InputError line."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise InputError(f"unknown device '{name}': use auto, cpu, cuda, cuda:N or mps") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device {name}: this machine has no CUDA GPU; use device=cpu or auto")
        if dev.index is None:
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        elif dev.index >= torch.cuda.device_count():
            raise InputError(f"device {name}: only {torch.cuda.device_count()} GPU(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {name}: MPS is not available here; use device=cpu or auto")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"device {name}: use cpu, cuda or mps")
    return dev


def _is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def _rank_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


class TrainableEMA:
    """EMA (ema-pytorch) of the trainable parameters only; frozen parts are never copied."""

    def __init__(self, named: dict[str, nn.Parameter], cfg: TrainConfig) -> None:
        from ema_pytorch import EMA

        # ParameterDict names cannot hold dots; it holds the SAME Parameter objects as the model
        self.names = list(named)
        self.online = nn.ParameterDict({k.replace(".", "__"): p for k, p in named.items()})
        self.ema = EMA(self.online, beta=cfg.ema_beta, update_after_step=cfg.ema_update_after_step,
                       update_every=cfg.ema_update_every, include_online_model=False)

    def update(self) -> None:
        self.ema.update()

    def averaged(self) -> dict[str, torch.Tensor]:
        params = dict(self.ema.ema_model.named_parameters())
        return {k: params[k.replace(".", "__")] for k in self.names}

    def state_dict(self) -> dict:
        return {k: v.detach().cpu() for k, v in self.ema.state_dict().items()}

    def load_state_dict(self, sd: dict) -> None:
        self.ema.load_state_dict(sd, strict=False)  # strict=False: the online model is not part of it

    @contextlib.contextmanager
    def swapped_in(self, named: dict[str, nn.Parameter]):
        """Temporarily put the averaged values into the model (restored exactly afterwards)."""
        backup = {k: p.detach().clone() for k, p in named.items()}
        avg = self.averaged()
        with torch.no_grad():
            for k, p in named.items():
                p.copy_(avg[k])
        try:
            yield
        finally:
            with torch.no_grad():
                for k, p in named.items():
                    p.copy_(backup[k])


class Trainer:
    """`Trainer(model, cfg, train_set, val_set).fit()`.

    Items of `train_set`/`val_set` are dicts with `latent_mean` `(N, C)` (VAE units), optional
    `latent_std`, `clip_f`, `text_f`, `sync_frames`, and for segmentation-aware models `masks` (+ optional
    precomputed `detail_frames`, `detail_masks`); other fields are ignored.
    """

    def __init__(self, model: AudioGenerator, cfg: TrainConfig, train_set: Dataset, val_set: Dataset | None = None,
                 on_checkpoint: Callable[[AudioGenerator, int], None] | None = None,
                 codec_factory: Callable[[], nn.Module] | None = None) -> None:
        cfg.validate()
        self.model, self.cfg = model, cfg
        self.train_set, self.val_set = train_set, val_set
        self.on_checkpoint = on_checkpoint
        self.out = Path(cfg.out_dir)
        self.rank, self.world = _rank_world()
        self.device = resolve_device(cfg.device)
        if cfg.batch_size % self.world:
            raise InputError(f"batch_size {cfg.batch_size} (global) is not divisible by the {self.world} ranks")
        self.local_batch = cfg.batch_size // self.world
        self.autocast_dtype = torch.bfloat16 if cfg.precision == "bf16" else None

        # LoRA: train un-merged; a model handed over in eval mode (merged) is un-merged first
        self._lora = [layer for _, layer in lora_layers(model.dit)]
        self._lora_merge_on_eval = [layer.merge_on_eval for layer in self._lora]
        for layer in self._lora:
            layer.unmerge()
            layer.merge_on_eval = False
        # only what trains (and what the loss runs through) moves to the device
        model.dit.to(self.device)
        model.sync_encoder.to(self.device)
        params = set_trainable_parts(model, cfg.dit_mode, cfg.encoder_mode)
        if not params:
            raise InputError("nothing to train: every part is frozen")
        self.named = {n: p for n, p in model.named_parameters() if p.requires_grad}
        self.params = list(self.named.values())
        self.module: nn.Module = FlowTrainModule(model)
        if dist.is_initialized():
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.module = DistributedDataParallel(self.module, device_ids=ids, find_unused_parameters=True,
                                                  broadcast_buffers=False)
        fused = self.device.type == "cuda"
        self.opt = torch.optim.AdamW(self.params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.adam_eps,
                                     weight_decay=cfg.weight_decay, fused=fused or None)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_factor(s, cfg.warmup_steps, list(cfg.lr_milestones), cfg.lr_gamma))
        self.ema = TrainableEMA(self.named, cfg) if cfg.ema else None
        # noise for this rank, on the device the noise is used on
        self.rng = torch.Generator(device=self.device).manual_seed(cfg.seed + self.rank)
        self.loader, self.sampler = make_loader(train_set, self.local_batch, self.rank, self.world, cfg.seed,
                                                cfg.num_workers, shuffle=True, drop_last=True,
                                                pin_memory=self.device.type == "cuda")
        self.batches_per_epoch = len(self.loader)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.history: list[dict] = []
        self.top_k: list[dict] = []  # [{"step", "val_loss", "file"}], best first
        self._iter = None
        self._tb = None
        # periodic sampling scored by the evaluation suite; its set-up is checked now, not at the first sampling
        self.val_sampler: ValidationSampler | None = None
        if cfg.sample_every and val_set is not None and cfg.sample_every <= cfg.steps:
            self.val_sampler = ValidationSampler(cfg, self.out, codec_factory)
            self.val_sampler.check(model, fetch=self.rank == 0)

    # -- distributed helpers --------------------------------------------------------------------------
    def _agree_any(self, flag: bool) -> bool:
        """True on every rank if it is True on any rank (so all ranks take the same branch)."""
        if not dist.is_initialized():
            return flag
        dev = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
        t = torch.tensor([1 if flag else 0], device=dev)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def _gather(self, obj):
        if not dist.is_initialized():
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def _rng_state(self) -> dict:
        s = {"noise": self.rng.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            s["cuda"] = torch.cuda.get_rng_state(self.device)
        return s

    # -- checkpoints ----------------------------------------------------------------------------------
    @property
    def ckpt_path(self) -> Path:
        return self.out / "ckpt_last.pt"

    def training_state(self) -> dict:
        """Every rank must call this (the RNG states are gathered); the result is complete on rank 0."""
        rngs = self._gather(self._rng_state())
        return {"format": STATE_FORMAT, "version": STATE_VERSION, "step": self.step, "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch, "world_size": self.world,
                "trainables": {k: p.detach().cpu() for k, p in self.named.items()},
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else {}, "rng": rngs,
                "history": json.dumps(self.history), "top_k": json.dumps(self.top_k),
                "config": dump_config(self.cfg)}

    def save(self, state: dict | None = None) -> None:
        state = state if state is not None else self.training_state()
        if not _is_main():
            return
        save_state(state, self.ckpt_path)
        atomic_write_text(self.out / "train_config.json", dump_config(self.cfg))
        self.export(self.out / "weights_last.pth")
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.model, self.step)

    def export(self, path: Path) -> Path:
        """Exported weights (EMA if enabled) in the reference layout, LoRA merged."""
        ctx = self.ema.swapped_in(self.named) if self.ema is not None else contextlib.nullcontext()
        with ctx:
            return export_weights(self.model, path, meta={"step": self.step, "ema": self.ema is not None,
                                                          "lora": "merged into network qkv.weight",
                                                          "config": self.cfg.to_dict()})

    def try_resume(self) -> bool:
        if not self.ckpt_path.is_file():
            return False
        state = load_state(self.ckpt_path)
        check_trainables(state["trainables"], self.named, self.ckpt_path)
        with torch.no_grad():
            for k, p in self.named.items():
                p.copy_(state["trainables"][k])
        try:
            self.opt.load_state_dict(state["optimizer"])
            self.sched.load_state_dict(state["scheduler"])
            if self.ema is not None and state["ema"]:
                self.ema.load_state_dict(state["ema"])
            self.history = json.loads(state["history"])
            self.top_k = json.loads(state["top_k"])
        except (ValueError, KeyError, RuntimeError, TypeError) as e:
            from saganet.errors import CheckpointError

            raise CheckpointError(f"cannot resume from {self.ckpt_path}: {type(e).__name__}: "
                                  f"{str(e).splitlines()[0] if str(e) else ''}; delete it to start over") from e
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        rngs = state["rng"]
        if int(state["world_size"]) == self.world and len(rngs) == self.world:
            mine = rngs[self.rank]
            self.rng.set_state(mine["noise"])
            torch.set_rng_state(mine["torch"])
            if "cuda" in mine and self.device.type == "cuda":
                torch.cuda.set_rng_state(mine["cuda"], self.device)
        else:  # another world size: data shards differ anyway; reseed each rank from the step
            log.warning("resuming with %d ranks a run saved with %s: the RNG is reseeded (not bit-exact)",
                        self.world, state["world_size"])
            self.rng.manual_seed(self.cfg.seed + 7919 * self.step + self.rank)
        log.info("resumed from %s at step %d", self.ckpt_path, self.step)
        return True

    def _keep_top_k(self, val_loss: float, state: dict) -> None:
        """Keep the training state of the `keep_top_k` lowest validation losses (`ckpt_stepN.pt`)."""
        if self.cfg.keep_top_k <= 0 or not math.isfinite(val_loss):
            return
        worst = max((e["val_loss"] for e in self.top_k), default=math.inf)
        if len(self.top_k) >= self.cfg.keep_top_k and val_loss >= worst:
            return
        name = f"ckpt_step{self.step:08d}.pt"
        ranked = sorted([*self.top_k, {"step": self.step, "val_loss": val_loss, "file": name}],
                        key=lambda e: e["val_loss"])
        self.top_k, dropped = ranked[: self.cfg.keep_top_k], ranked[self.cfg.keep_top_k:]
        state["top_k"] = json.dumps(self.top_k)  # the saved states know the list they belong to
        if not _is_main():
            return
        save_state(state, self.out / name)
        atomic_write_text(self.out / "top_k.json", json.dumps(self.top_k, indent=1))
        for e in dropped:
            (self.out / e["file"]).unlink(missing_ok=True)
        if self.top_k[0]["step"] == self.step:
            self.export(self.out / "weights_best.pth")

    # -- loop -----------------------------------------------------------------------------------------
    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _next_batch(self) -> dict:
        if self._iter is None:
            self.sampler.set_position(self.epoch, self.batch_in_epoch * self.local_batch)
            self._iter = iter(self.loader)
        try:
            batch = next(self._iter)
        except StopIteration:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            self.sampler.set_position(self.epoch, 0)
            self._iter = iter(self.loader)
            batch = next(self._iter)
        self.batch_in_epoch += 1
        return batch

    @torch.no_grad()
    def validate(self) -> float:
        """Mean loss over the validation set (sharded across ranks) with a frozen RNG: the same noise,
        times and CFG dropout at every validation. Uses the EMA weights when EMA is on."""
        if self.val_set is None or len(self.val_set) == 0:
            return float("nan")
        loader, _ = make_loader(self.val_set, max(1, self.local_batch), self.rank, self.world, 0, 0,
                                shuffle=False, drop_last=False)
        g = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 12345 + self.rank)
        ctx = self.ema.swapped_in(self.named) if self.ema is not None else contextlib.nullcontext()
        total = torch.zeros(2, dtype=torch.float64)
        self.model.eval()
        with ctx:
            for i, b in enumerate(loader):
                if self.cfg.val_max_batches and i >= self.cfg.val_max_batches:
                    break
                batch = batch_to_device(b, self.device)
                with self._autocast():
                    loss = FlowTrainModule(self.model)(batch, self.cfg, generator=g)
                n = batch["latent_mean"].shape[0]
                total += torch.tensor([float(loss) * n, n], dtype=torch.float64)
        self.model.train()
        if dist.is_initialized():
            dev = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
            t = total.to(dev)
            dist.all_reduce(t)
            total = t.cpu()
        return float(total[0] / total[1]) if total[1] > 0 else float("nan")

    def sample(self) -> dict[str, float]:
        """Generate validation clips with the EMA weights and score them (`ValidationSampler`). Collective."""
        ctx = self.ema.swapped_in(self.named) if self.ema is not None else contextlib.nullcontext()
        self.model.eval()
        try:
            with ctx:
                return self.val_sampler.run(self.model, self.val_set, self.step, self.device, self._autocast)
        finally:
            self.model.train()

    def train_step(self) -> float:
        batch = batch_to_device(self._next_batch(), self.device)
        with self._autocast():
            loss = self.module(batch, self.cfg, generator=self.rng)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.clip_grad_norm)
        self.opt.step()
        self.sched.step()
        if self.ema is not None:
            self.ema.update()
        self.step += 1
        return loss.item()

    def _log(self, point: dict) -> None:
        self.history.append(point)
        if not _is_main():
            return
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(point) + "\n")
        if self._tb is not None:
            for k, v in point.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    tag = "val/loss" if k == "val_loss" else k if "/" in k else f"train/{k}"
                    self._tb.add_scalar(tag, v, point["step"])

    def _open_logs(self) -> None:
        if not _is_main():
            return
        # the JSONL log is the history of the state resumed from (drops points of a killed run after it)
        atomic_write_text(self.out / "log.jsonl", "".join(json.dumps(p) + "\n" for p in self.history))
        if self.cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # pragma: no cover - tensorboard is a dependency
                log.warning("tensorboard is not installed: logging to log.jsonl only")
            else:
                self._tb = SummaryWriter(str(self.out / "tensorboard"), purge_step=self.step or None)

    def fit(self, quiet: bool = False) -> list[dict]:
        """Train to `cfg.steps` (resuming if a checkpoint exists). Returns the history of logged points."""
        cfg = self.cfg
        if _is_main():
            self.out.mkdir(parents=True, exist_ok=True)
            for p in clean_stale_temps(self.out):
                log.info("removed %s (left by a killed run)", p.name)
        if dist.is_initialized():
            dist.barrier()
        self.try_resume()
        self._open_logs()
        self.model.train()
        start, running = time.time(), []
        bar = tqdm(total=cfg.steps, initial=self.step, desc="train", disable=quiet or not _is_main())
        while self.step < cfg.steps:
            running.append(self.train_step())
            bar.update(1)
            over = cfg.max_minutes is not None and (time.time() - start) / 60 > cfg.max_minutes
            out_of_time = self._agree_any(over)  # every rank stops at the same step
            last = self.step >= cfg.steps or out_of_time
            sample_due = self.val_sampler is not None and self.val_sampler.due(self.step)
            if self.step % cfg.log_every == 0 or last or sample_due:
                point = {"step": self.step, "loss": sum(running) / len(running), "lr": self.sched.get_last_lr()[0],
                         "epoch": self.epoch, "minutes": round((time.time() - start) / 60, 3)}
                running = []
                if self.val_set is not None and (self.step % cfg.val_every == 0 or last):
                    point["val_loss"] = self.validate()
                if sample_due:
                    point.update(self.sample())
                self._log(point)
                bar.set_postfix(loss=f"{point['loss']:.4f}")
                log.info("step %d %s", self.step, {k: v for k, v in point.items() if k != "step"})
            state = None
            if self.history and self.history[-1]["step"] == self.step and "val_loss" in self.history[-1]:
                state = self.training_state()  # collective: every rank takes this branch at the same step
                self._keep_top_k(self.history[-1]["val_loss"], state)
            if self.step % cfg.ckpt_every == 0 or last:
                self.save(state)
            if out_of_time:
                log.info("time budget of %.1f min spent at step %d", cfg.max_minutes, self.step)
                break
        bar.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        return self.history

    def close(self) -> None:
        """Drop the DDP wrapper (its reducer holds the process group; left to interpreter exit, gloo's
        threads can abort the process), and give the LoRA layers back their merge-on-eval behaviour."""
        if isinstance(self.module, torch.nn.parallel.DistributedDataParallel):
            self.module = self.module.module
        self._iter = None
        for layer, m in zip(self._lora, self._lora_merge_on_eval):
            layer.merge_on_eval = m
            if m and not layer.training:
                layer.merge()


def init_distributed() -> tuple[int, int]:
    """Initialise torch.distributed from torchrun's environment (gloo on CPU, nccl on GPUs)."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1 or dist.is_initialized():
        return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size()


def shutdown_distributed() -> None:
    """End a torchrun job cleanly: free unreachable DDP objects, wait for every rank, destroy the group."""
    if not dist.is_initialized():
        return
    gc.collect()  # a DDP reducer kept alive by a reference cycle would outlive the group otherwise
    dist.barrier()
    dist.destroy_process_group()
