"""Datasets for the trainer and the evaluation: `SegmentedMusicSolos` (train/val) and `URMPTest` (test).

Items are dicts with the keys the trainer's `FlowTrainModule` reads (shapes per item; the default collate
stacks them):

    sync_frames   (T, 3, S, S) float in [-1, 1]   25 fps, squashed to S² (reference training geometry)
    masks         (T, 1, S, S) float in {0, 1}    the sounding instance, aligned by timestamp
    detail_frames (T, 3, S, S) float in [-1, 1]   focal prompt (offline files or computed on the fly)
    detail_masks  (T, 1, S, S) float in [0, 1]
    latent_mean, latent_std (N, C); clip_f (Tc, Dc); text_f (Lt, Dt)   from `saganet data extract`
    id, label (str)

`T = floor(25 * duration)`; a clip shorter than `duration` repeats its last frame (as the decoders do past
the end). Without extracted features an item carries `clip_frames (Tc, 3, C, C)` in [0, 1] at 8 fps and the
audio `wav (L,)` at `sample_rate` instead, for encoders run on the fly.

`SegmentedMusicSolos(root, split)` lists the clips of `clips.csv` in that split, keeps those accepted by
verify when the root has a verify table, and (with `features`) those that were extracted.
`URMPTest(root)` lists the (window, player) rows of the root's `metadata.tsv`: the mixture video, the
player's mask and label, and the player's separated stem `target (L,)` as the reference to compare with.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from saganet.data.cut import read_audio_window
from saganet.data.detail import (
    SYNC_FPS,
    FocalOptions,
    compute_detail,
    detail_paths,
    load_sync,
    to_sync,
    to_uint8,
    urmp_detail_paths,
)
from saganet.data.extract import CLIP_FPS, FeatureStore
from saganet.data.ingest import read_clip_table
from saganet.data.masks import mask_paths
from saganet.data.verify import accepted_ids
from saganet.errors import InputError
from saganet.io.masks import MaskSpec, load_mask
from saganet.io.video import decode_video

log = logging.getLogger(__name__)


def _fit(x: torch.Tensor, n: int) -> torch.Tensor:
    if x.shape[0] >= n:
        return x[:n]
    return torch.cat([x, x[-1:].expand(n - x.shape[0], *x.shape[1:])])


class _ClipDataset(Dataset):
    def __init__(self, root: str | os.PathLike, duration: float, size: int, focal: str, focal_opts: FocalOptions,
                 features: str | os.PathLike | None, sample_rate: int, clip_size: int) -> None:
        if focal not in ("offline", "online"):
            raise InputError(f"unknown focal source '{focal}': use offline (files of `saganet data focal`) "
                             "or online (computed in the loader)")
        if duration <= 0 or size < 16:
            raise InputError(f"bad duration {duration} / size {size}")
        self.root = Path(root)
        self.duration, self.size, self.focal = float(duration), int(size), focal
        self.focal_opts = FocalOptions(focal_opts.mode, self.size, focal_opts.min_size, focal_opts.crf)
        self.n_frames = int(SYNC_FPS * self.duration + 1e-6)
        self.sample_rate, self.clip_size = sample_rate, clip_size
        self.features = FeatureStore(features) if features is not None else None

    def _visual(self, video: Path, mask: Path, detail: tuple[Path, Path]) -> dict[str, torch.Tensor]:
        frames, masks = load_sync(video, mask, self.size, self.duration)
        frames, masks = _fit(frames, self.n_frames), _fit(masks, self.n_frames)
        if self.focal == "online":
            d, dm = compute_detail(to_uint8(frames), masks, self.focal_opts)
            d = to_sync(d)
        else:
            if not detail[0].is_file() or not detail[1].is_file():
                raise InputError(f"focal prompt {detail[0].name} missing: run `saganet data focal` or use "
                                 "focal='online'")
            d, dm = load_sync(detail[0], detail[1], self.size, self.duration)
            d, dm = _fit(d, self.n_frames), _fit(dm, self.n_frames)
        return {"sync_frames": frames, "masks": masks, "detail_frames": d, "detail_masks": dm}

    def _extra(self, item_id: str, video: Path, audio: Path) -> dict[str, torch.Tensor]:
        if self.features is not None:
            return self.features[item_id]
        v = decode_video(video, duration=self.duration, clip_fps=CLIP_FPS, clip_size=self.clip_size,
                         sync_size=16, quiet=True)
        wav, _ = read_audio_window(audio, 0.0, self.duration, rate=self.sample_rate, mono=True)
        return {"clip_frames": _fit(v.clip_frames, int(CLIP_FPS * self.duration + 1e-6)),
                "wav": torch.from_numpy(wav[0])}


class SegmentedMusicSolos(_ClipDataset):
    """SMS train/val clips of an ingested (+ masked, verified, focal, extracted) root.

    `features`: the split's folder of `saganet data extract` output (e.g. `feats/train`), or None for raw
    clip frames + audio. `focal`: "offline" reads `{stem}_detail.mp4` / `{stem}_mask_detail.mp4`, "online"
    computes the same crops in the loader. `size` must equal the size the focal files were written at.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", features: str | os.PathLike | None = None,
                 duration: float = 5.0, size: int = 224, focal: str = "offline",
                 focal_opts: FocalOptions | None = None, verified_only: bool = True, sample_rate: int = 44100,
                 clip_size: int = 384) -> None:
        super().__init__(root, duration, size, focal, focal_opts or FocalOptions(), features, sample_rate,
                         clip_size)
        clips = [c for c in read_clip_table(self.root) if c["split"] == split]
        ok = accepted_ids(self.root) if verified_only else None
        if ok is not None:
            clips = [c for c in clips if c["id"] in ok]
        if self.features is not None:
            missing = [c["id"] for c in clips if c["id"] not in self.features]
            if missing:
                log.warning("%d clip(s) of %s have no extracted features and are left out, e.g. %s",
                            len(missing), split, missing[0])
            clips = [c for c in clips if c["id"] in self.features]
        self.clips = clips
        self.split = split

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        c = self.clips[i]
        cid = c["id"]
        video = self.root / f"{cid}.mp4"
        item = self._visual(video, mask_paths(self.root, cid)[0], detail_paths(self.root, cid))
        item.update(self._extra(cid, video, video))
        return {"id": cid, "label": c["label"], **item}


class URMPTest(_ClipDataset):
    """URMP (window, player) rows: mixture video + the player's mask and label -> the player's stem."""

    def __init__(self, root: str | os.PathLike, features: str | os.PathLike | None = None, duration: float = 5.0,
                 size: int = 224, focal: str = "online", focal_opts: FocalOptions | None = None,
                 sample_rate: int = 44100, clip_size: int = 384) -> None:
        from saganet.data.metadata import read_urmp_metadata

        super().__init__(root, duration, size, focal, focal_opts or FocalOptions(), features, sample_rate,
                         clip_size)
        meta = self.root / "metadata.tsv"
        rows = read_urmp_metadata(meta)
        self.rows = [r for r in rows if (self.root / f"{r.video_id}.mp4").is_file()
                     and (self.root / f"{r.mask_id}.mp4").is_file()]
        if len(self.rows) < len(rows):
            log.warning("URMP: %d of %d rows lack their video or mask under %s", len(rows) - len(self.rows),
                        len(rows), self.root)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        r = self.rows[i]
        video, stem = self.root / f"{r.video_id}.mp4", self.root / f"{r.audio_id}.wav"
        item = self._visual(video, self.root / f"{r.mask_id}.mp4", urmp_detail_paths(self.root, r.mask_id))
        item.update(self._extra(r.audio_id, video, video))
        target = torch.zeros(int(round(self.duration * self.sample_rate)))
        if stem.is_file():
            wav, _ = read_audio_window(stem, 0.0, self.duration, rate=self.sample_rate, mono=True)
            target = torch.from_numpy(wav[0])
        return {"id": r.audio_id, "label": r.label, "video_id": r.video_id, "player": r.player,
                "target": target, **item}


def mask_of(root: str | os.PathLike, clip_id: str, video_size: int = 224) -> torch.Tensor:
    """An SMS clip's mask aligned to its sync frames `(T, 1, S, S)` (a helper for notebooks and tools)."""
    root = Path(root)
    v = decode_video(root / f"{clip_id}.mp4", clip_fps=1.0, clip_size=8, sync_size=video_size, quiet=True)
    return load_mask(MaskSpec(mask_paths(root, clip_id)[0]), v, pad=True).masks
