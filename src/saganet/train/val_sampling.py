"""Sampling on the validation split during training, scored by the evaluation suite (RN-51).

Every `sample_every` steps the trainer hands its model (EMA weights swapped in, eval mode) to
`ValidationSampler.run`. Each rank generates its share of the first `sample_n` validation clips (Euler
`sample_steps`, CFG `sample_cfg`; one noise draw per clip from a generator seeded by the run's seed and
the clip's index, so every sampling of a run starts from the same noise and the number of ranks does not
change it), decodes them, and writes `generated/<name>.flac` next to the clip's ground-truth latent
decoded by the same codec, `reference/<name>.flac`. Rank 0 then runs the metric families named in
`sample_metrics` (`saganet.eval`, paired by name) and writes `metrics.json` / `metrics.md`.

One sampling is written into a temporary folder that becomes `samples/step_XXXXXXXX/` only when it is
complete, so a killed run leaves no half-written folder; the resumed run samples that step again (same
noise, same weights: the same files). The embeddings of the references are cached in
`samples/.eval_cache/` by content hash: every sampling after the first embeds only the new audio.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset

from saganet.errors import CheckpointError, InputError
from saganet.eval import EvalItem, EvalOptions, evaluate_items, make_family, write_results
from saganet.io.audio import write_audio
from saganet.models.generator import AudioGenerator
from saganet.sampling import generate_latents
from saganet.train.config import TrainConfig
from saganet.train.data import batch_to_device, collate

log = logging.getLogger(__name__)

PREFIX = "sample/"  # the keys of the logged metrics


def item_name(index: int, item: dict) -> str:
    """File name of validation item `index`: its position (stable order) and its id when it has one."""
    ident = item.get("id")
    tail = "_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", ident)[:80] if isinstance(ident, str) and ident else ""
    return f"{index:05d}{tail}"


def has_codec(model: AudioGenerator) -> bool:
    """Whether the model holds a real codec (training models of the released DiTs get precomputed
    features instead, and need a `codec_factory`)."""
    return callable(getattr(model.codec, "latents_to_wav", None))


class ValidationSampler:
    """`run(model, val_set, step, ...)` -> `{"sample/<metric>": value}` on rank 0 (`{}` on the others)."""

    def __init__(self, cfg: TrainConfig, out_dir: str | Path,
                 codec_factory: Callable[[], nn.Module] | None = None) -> None:
        self.cfg = cfg
        self.root = Path(out_dir) / "samples"
        self.codec_factory = codec_factory
        self._codec: nn.Module | None = None

    def due(self, step: int) -> bool:
        return self.cfg.sample_every > 0 and step > 0 and step % self.cfg.sample_every == 0

    def check(self, model: AudioGenerator, fetch: bool = True) -> None:
        """Before training: unknown metric families, missing evaluation weights or no way to decode
        latents are one `InputError`, not a crash at the first sampling hours later. `fetch`: download the
        evaluation weights now (rank 0, the one that scores)."""
        from saganet.eval.embedders import WEIGHT_FILES, check_weights
        from saganet.eval.embedders.base import resolve_eval_weights

        families = [make_family(n) for n in self.cfg.sample_metrics]
        needs = {k for f in families for k in getattr(f, "needs", ())}
        try:
            check_weights(needs, self.cfg.sample_eval_weights)
            if fetch and self.cfg.sample_eval_weights == "official":  # fetched now, not at the first sampling
                for k in sorted(needs & WEIGHT_FILES.keys()):
                    resolve_eval_weights(WEIGHT_FILES[k])
        except CheckpointError as e:
            raise CheckpointError(f"sample_metrics={','.join(self.cfg.sample_metrics)}: {e}; or train without "
                                  "sampling: sample_every=0") from e
        if not has_codec(model) and self.codec_factory is None:
            raise InputError(f"model {self.cfg.model} has no codec to decode validation samples: set "
                             "sample_every=0")

    def codec(self, model: AudioGenerator, device: torch.device) -> nn.Module:
        if self._codec is None:
            self._codec = model.codec if has_codec(model) else self.codec_factory()
            self._codec.to(device).eval()
        return self._codec

    def folder(self, step: int) -> Path:
        return self.root / f"step_{step:08d}"

    @torch.no_grad()
    def generate(self, model: AudioGenerator, val_set: Dataset, indices: list[int], tmp: Path,
                 device: torch.device, autocast: Callable[[], AbstractContextManager]) -> None:
        """Write `generated/` and `reference/` FLACs of the validation items `indices` into `tmp`."""
        cfg = self.cfg
        codec = self.codec(model, device)
        sr = int(codec.sample_rate)
        for s in range(0, len(indices), cfg.sample_batch_size):
            chunk = indices[s:s + cfg.sample_batch_size]
            items = [val_set[i] for i in chunk]
            batch = batch_to_device(collate(items), device)
            truth = batch["latent_mean"]  # (B, N, C), VAE units
            with autocast():
                sync_f = model.encode_sync(batch["sync_frames"], batch.get("masks"), batch.get("detail_frames"),
                                           batch.get("detail_masks"))
                conds = model.encode_conditions(clip_f=batch["clip_f"], text_f=batch["text_f"])
                x0 = torch.cat([torch.randn((1, *truth.shape[1:]), device=device,
                                            generator=torch.Generator(device).manual_seed(cfg.seed + 1_000_003 * i))
                                for i in chunk])
                latent = generate_latents(model.dit, conds.clip_f, sync_f, conds.text_f, x0, steps=cfg.sample_steps,
                                          cfg_strength=cfg.sample_cfg, method="euler")
            wavs = codec.latents_to_wav(latent.float()).float().cpu()
            refs = codec.latents_to_wav(truth.float()).float().cpu()
            for k, (i, item) in enumerate(zip(chunk, items)):
                name = item_name(i, item)
                write_audio(tmp / "generated" / f"{name}.flac", wavs[k], sr)
                write_audio(tmp / "reference" / f"{name}.flac", refs[k], sr)
                label = item.get("label")
                if isinstance(label, str) and label:
                    (tmp / "prompts").mkdir(exist_ok=True)
                    (tmp / "prompts" / f"{name}.txt").write_text(label)

    def score(self, tmp: Path) -> dict:
        """Rank 0: the metric families over `tmp`'s generated/reference pairs (the eval runner's results)."""
        items = []
        for g in sorted((tmp / "generated").glob("*.flac")):
            p = tmp / "prompts" / f"{g.stem}.txt"
            items.append(EvalItem(name=g.stem, gen=g, ref=tmp / "reference" / g.name,
                                  prompt=p.read_text() if p.is_file() else ""))
        opts = EvalOptions(families=tuple(self.cfg.sample_metrics), duration=None, min_duration=0.1,
                           weights=self.cfg.sample_eval_weights, size=self.cfg.sample_eval_size, progress=False)
        return evaluate_items(items, opts, cache_dir=self.root / ".eval_cache")

    def run(self, model: AudioGenerator, val_set: Dataset | None, step: int, device: torch.device,
            autocast: Callable[[], AbstractContextManager]) -> dict[str, float]:
        """Every rank must call this (it synchronises); the metrics come back on rank 0."""
        if val_set is None or len(val_set) == 0:
            return {}
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        n = len(val_set) if self.cfg.sample_n == 0 else min(self.cfg.sample_n, len(val_set))
        tmp = self.root / f".step_{step:08d}.tmp"
        if rank == 0:
            for stale in self.root.glob(".step_*.tmp"):  # left by a killed run
                shutil.rmtree(stale, ignore_errors=True)
            (tmp / "generated").mkdir(parents=True)
            (tmp / "reference").mkdir()
        if dist.is_initialized():
            dist.barrier()
        self.generate(model, val_set, list(range(rank, n, world)), tmp, device, autocast)
        if dist.is_initialized():
            dist.barrier()
        if rank != 0:
            return {}
        try:
            results = self.score(tmp)
        except InputError as e:  # e.g. every sample silent: record it, keep training
            log.warning("step %d: validation samples not scored: %s", step, e)
            results = {"metrics": {}, "error": str(e)}
        write_results(results, tmp)
        final = self.folder(step)
        if final.exists():  # sampled before a kill: replaced by this (identical) sampling
            shutil.rmtree(final)
        tmp.rename(final)
        metrics = {PREFIX + k: float(v) for k, v in results["metrics"].items() if isinstance(v, (int, float))}
        metrics[PREFIX + "n"] = float(results.get("n_items", 0))
        log.info("step %d: %d validation samples in %s: %s", step, n, final, metrics)
        return metrics
