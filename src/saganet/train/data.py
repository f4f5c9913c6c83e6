"""Data for the trainer: DataLoaders over map-style datasets, sharded across ranks, resumable mid-epoch.

`ResumableDistributedSampler` is torch's `DistributedSampler` (each rank its own shuffled share of every
epoch, the same permutation on every rank for a given seed and epoch) that can start part-way through an
epoch, so that a resumed run reads exactly the batches an uninterrupted run would have read next without
loading the skipped ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

from saganet.errors import InputError

# Batch keys the loss reads (`FlowTrainModule`); other item fields (ids, labels) stay on the CPU side.
TENSOR_KEYS = ("latent_mean", "latent_std", "clip_f", "text_f", "sync_frames", "masks", "detail_frames",
               "detail_masks")


class ResumableDistributedSampler(DistributedSampler):
    """`DistributedSampler` whose current epoch starts after `start` of this rank's indices."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, shuffle: bool, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.start = 0

    def set_position(self, epoch: int, start: int) -> None:
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start:])

    def __len__(self) -> int:
        return self.num_samples - self.start


def collate(items: list[dict]) -> dict:
    """Stack tensors; strings (ids, labels) become lists."""
    return default_collate(items)


def make_loader(dataset: Dataset, batch_size: int, rank: int, world: int, seed: int, num_workers: int,
                shuffle: bool, drop_last: bool, pin_memory: bool = False
                ) -> tuple[DataLoader, ResumableDistributedSampler]:
    """A DataLoader of `batch_size` (per rank) items over this rank's share of `dataset`."""
    if len(dataset) == 0:
        raise InputError("the dataset is empty: check data_root / features (see docs/training.md)")
    sampler = ResumableDistributedSampler(dataset, world, rank, shuffle=shuffle, seed=seed)
    if drop_last and sampler.num_samples < batch_size:
        raise InputError(f"{len(dataset)} training items cannot fill a batch of {batch_size} per rank on "
                         f"{world} rank(s): lower batch_size or add data")
    gen = torch.Generator().manual_seed(seed + 1000 * rank)  # worker seeds; items themselves are deterministic
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                        collate_fn=collate, drop_last=drop_last, pin_memory=pin_memory,
                        persistent_workers=num_workers > 0, generator=gen)
    return loader, sampler


def batch_to_device(batch: dict, device: torch.device) -> dict[str, torch.Tensor]:
    """The tensors the loss reads, on `device` (float32; autocast decides the compute precision)."""
    if "latent_mean" not in batch or "clip_f" not in batch or "text_f" not in batch:
        raise InputError("training items need extracted features (latent_mean, clip_f, text_f): run "
                         "`saganet data extract` and set features=FOLDER in the config")
    out = {}
    for k in TENSOR_KEYS:
        v = batch.get(k)
        if isinstance(v, torch.Tensor):
            out[k] = v.to(device, torch.float32, non_blocking=True) if v.is_floating_point() else v.to(device)
    return out
