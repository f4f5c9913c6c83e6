"""`saganet data focal`: the focal prompt per clip (RN-18, RN-45), offline or on the fly.

Both paths run the same function, `compute_detail`, on the same inputs: the clip's sync frames (25 fps,
squashed to `size`², uint8, decoded by timestamp with `saganet.io.video`) and its mask aligned to them
(`saganet.io.masks`, luma binarised at 0.5). It crops with `saganet.focal.focal_crop` (mode and minimum
window as the model uses them: "reference" for the released weights, 56 px at 224) in uint8, as the
reference's extraction did. Offline, the crops are written (h264, 25 fps) in the reference layout:
`{root}/{label}/{stem}/{stem}_detail.mp4` and `{stem}_mask_detail.mp4`; URMP, per player:
`{root}/{mask_id}_detail.mp4` and `{mask_id}_mask_detail.mp4`. On the fly (`SegmentedMusicSolos(...,
focal="online")`) the loader calls `compute_detail` itself: the same crops without the h264 round trip.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from saganet.data.ingest import read_clip_table
from saganet.data.manifest import DONE, FAILED, Manifest, remove_stale_temps
from saganet.data.masks import mask_paths
from saganet.errors import InputError, SaganetError
from saganet.focal import FocalMode, focal_crop
from saganet.io.masks import MaskSpec, load_mask
from saganet.io.video import decode_video
from saganet.io.writers import write_mask_video, write_video

log = logging.getLogger(__name__)

MANIFEST_NAME = "focal_manifest.jsonl"
SYNC_FPS = 25.0


@dataclass(frozen=True)
class FocalOptions:
    mode: FocalMode = "reference"
    size: int = 224
    min_size: int = 56
    crf: int = 18


def detail_paths(root: Path, clip_id: str) -> tuple[Path, Path]:
    """SMS: `{root}/{label}/{stem}/{stem}_detail.mp4`, `..._mask_detail.mp4`."""
    stem = clip_id.split("/")[-1]
    d = root / clip_id
    return d / f"{stem}_detail.mp4", d / f"{stem}_mask_detail.mp4"


def urmp_detail_paths(root: Path, mask_id: str) -> tuple[Path, Path]:
    return root / f"{mask_id}_detail.mp4", root / f"{mask_id}_mask_detail.mp4"


def to_uint8(sync_frames: torch.Tensor) -> torch.Tensor:
    """Sync frames in [-1, 1] (decoded from uint8) -> the uint8 values they came from, exactly."""
    return ((sync_frames + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def to_sync(frames_u8: torch.Tensor) -> torch.Tensor:
    """uint8 frames -> [-1, 1] float, as `saganet.io.video` produces sync frames."""
    return frames_u8.float().div(127.5).sub(1.0)


def compute_detail(frames_u8: torch.Tensor, masks: torch.Tensor, opts: FocalOptions = FocalOptions()
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """`frames_u8 (T, 3, S, S)` uint8, `masks (T, 1, S, S)` {0, 1} -> detail frames `(T, 3, S, S)` uint8 and
    detail masks `(T, 1, S, S)` float in [0, 1]."""
    if frames_u8.dtype != torch.uint8:
        raise InputError(f"compute_detail wants uint8 frames, got {frames_u8.dtype}")
    d, dm, _ = focal_crop(frames_u8[None], masks[None].float(), mode=opts.mode, min_size=opts.min_size,
                          out_size=(opts.size, opts.size))
    return d[0], dm[0]


def load_sync(video: Path, mask: Path, size: int = 224, duration: float | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """A clip's sync frames `(T, 3, S, S)` in [-1, 1] and its mask aligned to them `(T, 1, S, S)`."""
    v = decode_video(video, duration=duration, clip_fps=1.0, clip_size=8, sync_fps=SYNC_FPS, sync_size=size,
                     quiet=True)
    m = load_mask(MaskSpec(mask), v, pad=True)
    return v.sync_frames, m.masks


def write_detail(video: Path, mask: Path, out_video: Path, out_mask: Path, opts: FocalOptions) -> dict:
    frames, masks = load_sync(video, mask, opts.size)
    d, dm = compute_detail(to_uint8(frames), masks, opts)
    write_video(out_video, d.permute(0, 2, 3, 1).contiguous(), SYNC_FPS, crf=opts.crf)
    write_mask_video(out_mask, dm[:, 0] >= 0.5, SYNC_FPS)
    return {"frames": int(d.shape[0])}


def make_focal(root: str | os.PathLike, opts: FocalOptions | None = None, overwrite: bool = False,
               quiet: bool = False) -> dict[str, str]:
    """Focal prompts for every masked clip of an SMS or URMP root; resumable. Returns id -> done / reason."""
    from saganet.data.metadata import read_urmp_metadata

    root = Path(root)
    opts = opts or FocalOptions()
    manifest = Manifest(root / MANIFEST_NAME)
    jobs: list[tuple[str, Path, Path, Path, Path]] = []  # id, video, mask, out video, out mask
    urmp = (root / "metadata.tsv").is_file() and not (root / "metadata.csv").is_file()
    done_clips = {c["id"] for c in read_clip_table(root)}
    if urmp:
        for r in read_urmp_metadata(root / "metadata.tsv"):
            if r.video_id in done_clips:
                jobs.append((r.mask_id, root / f"{r.video_id}.mp4", root / f"{r.mask_id}.mp4",
                             *urmp_detail_paths(root, r.mask_id)))
    else:
        for cid in sorted(done_clips):
            jobs.append((cid, root / f"{cid}.mp4", mask_paths(root, cid)[0], *detail_paths(root, cid)))
    remove_stale_temps(p for j in jobs for p in j[3:])
    out: dict[str, str] = {}
    for jid, video, mask, ov, om in tqdm(jobs, desc="focal", unit="clip", disable=quiet):
        if ov.exists() and om.exists() and not overwrite:
            out[jid] = DONE
            if manifest.status(jid) != DONE:
                manifest.record(jid, DONE, "existing output kept")
            continue
        if not mask.is_file():
            out[jid] = f"no mask {mask.name} (run `saganet data masks`)"
            manifest.record(jid, FAILED, out[jid])
            continue
        try:
            info = write_detail(video, mask, ov, om, opts)
            manifest.record(jid, DONE, "", info=info)
            out[jid] = DONE
        except SaganetError as e:
            out[jid] = str(e).splitlines()[0]
            manifest.record(jid, FAILED, out[jid])
    return out
