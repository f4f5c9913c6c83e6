"""Training recipe for the toy world: precomputed features of solo clips, then the one trainer
(`saganet.train`, config `train/configs/toyworld.toml`; `toy_datasets` is its data component).

Frames are converted exactly as the pipeline converts decoded video (timestamp resampling to the
CLIP rate, bicubic squash to the model sizes, masks area-resized and re-binarised at 0.5), so the
trained model sees at training time what it sees through `saganet generate`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch.utils.data import Dataset
from tqdm import tqdm

from saganet.io.atomic import atomic_path, atomic_write_text
from saganet.io.video import pick_frames
from saganet.models.generator import AudioGenerator
from saganet.models.toy import ToyModelConfig
from saganet.toyworld import eval_family as _eval_family  # noqa: F401  (registers "toy" for sample_metrics)
from saganet.toyworld.dataset import ToyArrays, generate_arrays
from saganet.toyworld.world import WorldConfig
from saganet.train.config import TrainConfig, load_config
from saganet.train.recipe import TrainingRecipe, toy_model_config

log = logging.getLogger(__name__)


# The shipped toy models were trained on the most recent frame at or before each target time; generation
# with them decodes videos by the same rule (registry: the toy variants' frame_rule).
TOY_FRAME_RULE = "at_or_before"


def resample_indices(n_frames: int, fps: float, target_fps: float, n_out: int) -> np.ndarray:
    """Source frame index at each target time k / target_fps: `io.video.pick_frames`, the decoder's own rule."""
    return pick_frames(np.arange(n_frames) / fps, np.arange(n_out) / target_fps, TOY_FRAME_RULE)


def frames_to_model(video: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 `(B, T, H, W, 3)` -> float `(B, T, 3, size, size)` in [0, 1] (bicubic squash, antialiased)."""
    B, T = video.shape[:2]
    x = video.flatten(0, 1).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, (size, size), mode="bicubic", antialias=True).clamp(0, 255) / 255.0
    return x.view(B, T, 3, size, size)


def masks_to_model(masks: torch.Tensor, size: int) -> torch.Tensor:
    """bool `(B, T, H, W)` -> `(B, T, 1, size, size)` in {0, 1} (area resize, re-binarised at 0.5)."""
    B, T = masks.shape[:2]
    m = F.interpolate(masks.flatten(0, 1)[:, None].float(), (size, size), mode="area")
    return (m >= 0.5).float().view(B, T, 1, size, size)


@dataclass
class ToyFeatures:
    """Model inputs of a set of (clip, target) rows; frames stored as uint8 to keep memory small."""

    latent: torch.Tensor  # (N, L, C) codec latents of the target stem
    clip_f: torch.Tensor  # (N, Tc, Dc)
    text_f: torch.Tensor  # (N, Lt, Dt)
    sync_frames: torch.Tensor  # (N, T, 3, S, S) uint8
    masks: torch.Tensor  # (N, T, 1, S, S) uint8
    detail_frames: torch.Tensor | None  # (N, T, 3, S, S) uint8 (segmentation-aware models)
    detail_masks: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.latent)

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        def f(x: torch.Tensor) -> torch.Tensor:
            return x[idx].float() / 127.5 - 1.0

        b = {"latent_mean": self.latent[idx], "clip_f": self.clip_f[idx], "text_f": self.text_f[idx],
             "sync_frames": f(self.sync_frames), "masks": self.masks[idx].float()}
        if self.detail_frames is not None:
            b["detail_frames"], b["detail_masks"] = f(self.detail_frames), self.detail_masks[idx].float()
        return b


@torch.no_grad()
def compute_features(model: AudioGenerator, arrays: ToyArrays, prompts: list[str] | None = None,
                     chunk: int = 64, progress: bool = False) -> ToyFeatures:
    """Encode every row of `arrays` with `model`'s fixed parts (codec, frame/text features, focal crop)."""
    cfg = arrays.cfg
    n_clip = model.seq.clip_seq_len
    clip_idx = torch.from_numpy(resample_indices(cfg.n_frames, cfg.fps, model.seq.clip_frame_rate, n_clip))
    prompts = arrays.prompt if prompts is None else prompts
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ToyFeatures.__dataclass_fields__}
    for s in tqdm(range(0, len(arrays), chunk), desc="features", disable=not progress):
        sl = slice(s, s + chunk)
        video = torch.from_numpy(arrays.video[sl])
        parts["latent"].append(model.codec.encode(torch.from_numpy(arrays.target[sl])).mean)
        parts["clip_f"].append(model.encode_clip(frames_to_model(video[:, clip_idx], model.clip_size)))
        parts["text_f"].append(model.encode_text(list(prompts[sl])))
        frames = frames_to_model(video, model.sync_size)
        masks = masks_to_model(torch.from_numpy(arrays.mask[sl]), model.sync_size)
        parts["sync_frames"].append((frames * 255).round().to(torch.uint8))
        parts["masks"].append(masks.to(torch.uint8))
        if model.segaware:
            d, dm = model.focal_prompt(frames * 2 - 1, masks)
            parts["detail_frames"].append(((d + 1) * 127.5).round().clamp(0, 255).to(torch.uint8))
            parts["detail_masks"].append((dm >= 0.5).to(torch.uint8))
    cat = {k: (torch.cat(v) if v else None) for k, v in parts.items()}
    return ToyFeatures(**cat)


def set_latent_stats(model: AudioGenerator, latents: torch.Tensor) -> None:
    """Per-channel latent mean/std from training data (as MMAudio's `latent_mean`/`latent_std`)."""
    flat = latents.reshape(-1, latents.shape[-1])
    model.dit.latent_mean.data.copy_(flat.mean(0).view_as(model.dit.latent_mean))
    model.dit.latent_std.data.copy_(flat.std(0).clamp(min=1e-3).view_as(model.dit.latent_std))


def save_toy_checkpoint(model: AudioGenerator, cfg: ToyModelConfig, path: str | Path, meta: dict,
                        dtype: torch.dtype = torch.float16) -> None:
    """Weights as safetensors (float16 by default: half the size to ship; loading casts back to the
    model's float32) plus `<name>.json` with the model config and how it was made."""
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file({k: (v.to(dtype) if v.is_floating_point() else v).contiguous()
                   for k, v in model.state_dict().items()}, str(tmp))
    atomic_write_text(path.with_suffix(".json"), json.dumps({"model": cfg.to_dict(), **meta}, indent=1))


class ToyDataset(Dataset):
    """Items (dicts of tensors, frames as float) of precomputed `ToyFeatures` for the trainer's DataLoader."""

    def __init__(self, feats: ToyFeatures) -> None:
        self.feats = feats

    def __len__(self) -> int:
        return len(self.feats)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.feats.batch(torch.tensor([i])).items()}


def toy_datasets(cfg: TrainConfig, model: AudioGenerator) -> tuple[ToyDataset, ToyDataset]:
    """The trainer's data component for the toy world (`data = "saganet.toyworld.training:toy_datasets"`):
    solo clips made from `cfg.seed`, encoded with `model`'s fixed parts. A model trained from scratch
    (`init = "random"`) takes its latent statistics from the training clips."""
    world = WorldConfig(duration=cfg.toy_duration, frame_size=cfg.toy_frame_size)
    train = compute_features(model, generate_arrays(cfg.toy_n_train, seed=1000 + cfg.seed, kind="solo", cfg=world))
    val = compute_features(model, generate_arrays(cfg.toy_n_val, seed=2000 + cfg.seed, kind="solo", cfg=world))
    if cfg.init == "random":
        set_latent_stats(model, train.latent)
    return ToyDataset(train), ToyDataset(val)


def train_toy_model(out_dir: str | Path, segaware: bool, n_train: int = 1200, n_val: int = 64, steps: int = 3000,
                    batch_size: int = 16, lr: float = 5e-4, max_minutes: float | None = None, seed: int = 0,
                    world: WorldConfig | None = None, quiet: bool = False, command: str = "",
                    use_clip_frames: bool = False, overrides: list[str] | None = None
                    ) -> tuple[AudioGenerator, list[dict]]:
    """Train SAGANet-tiny (`segaware=True`) or the mask-free baseline on solo clips from scratch, with the
    shipped `toyworld` config and the one trainer (`saganet.train`); writes the shippable safetensors."""
    world = world or WorldConfig()
    warmup = 100
    cfg = load_config("toyworld", overrides, out_dir=str(out_dir), model="toy" if segaware else "toy_baseline",
                      toy_n_train=n_train, toy_n_val=n_val, steps=steps, batch_size=batch_size, lr=lr,
                      max_minutes=max_minutes, seed=seed, toy_duration=world.duration,
                      toy_frame_size=world.frame_size, toy_use_clip_frames=use_clip_frames,
                      warmup_steps=warmup, lr_milestones=[max(0, int(steps * 0.8) - warmup)])
    recipe = TrainingRecipe(cfg)
    trainer = recipe.setup()
    try:
        history = trainer.fit(quiet=quiet)
    finally:
        trainer.close()
    model = recipe.model.eval()
    meta = {"command": command, "segaware": segaware, "steps_done": trainer.step, "history": history,
            "train_config": cfg.to_dict(), "n_train": n_train, "seed": seed, "world": world.to_dict()}
    path = Path(out_dir) / ("saganet_tiny.safetensors" if segaware else "baseline_tiny.safetensors")
    if trainer.ema is not None:
        with trainer.ema.swapped_in(trainer.named):
            save_toy_checkpoint(model, toy_model_config(cfg), path, meta)
    else:
        save_toy_checkpoint(model, toy_model_config(cfg), path, meta)
    return model, history


def _train_worker(kwargs: dict) -> str:
    torch.set_num_threads(1)  # two trainings share two cores; more threads only contend
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    train_toy_model(**kwargs)
    return "saganet" if kwargs["segaware"] else "baseline"


# The shipped recipe (src/saganet/assets/toy/*.json record it): both models reach RECIPE_STEPS in under an hour.
RECIPE_MINUTES, RECIPE_STEPS, RECIPE_N_TRAIN = 57.0, 1700, 1200


def train_both(out_dir: str | Path, minutes: float = RECIPE_MINUTES, steps: int = RECIPE_STEPS, seed: int = 0,
               n_train: int = RECIPE_N_TRAIN,
               batch_size: int = 16, parallel: bool = True, command: str = "", use_clip_frames: bool = False) -> None:
    """Train SAGANet-tiny and the baseline identically, in two processes (one core each) when `parallel`."""
    import multiprocessing as mp

    out = Path(out_dir)
    jobs = [dict(out_dir=str(out / name), segaware=sa, n_train=n_train, steps=steps, batch_size=batch_size,
                 max_minutes=minutes, seed=seed, quiet=True, command=command,
                 use_clip_frames=use_clip_frames) for name, sa in (("saganet", True), ("baseline", False))]
    if not parallel:
        for j in jobs:
            _train_worker(j)
        return
    with mp.get_context("spawn").Pool(2) as pool:
        for name in pool.imap_unordered(_train_worker, jobs):
            log.info("finished training %s", name)
