"""`saganet data extract`: what the trainer reads, precomputed (RN-45).

Per item: the VAE posterior `latent_mean`, `latent_std` `(N, C)` of its audio, CLIP features of the FULL
frame at 8 fps `clip_f (Tc, Dc)`, and per-token text features of its label `text_f (Lt, Dt)`, computed with
the modules of an `AudioGenerator` (its codec's encoder, frame encoder and text encoder) built from the
variant registry: `saganet_small` for the released model's CLIP/VAE, `tiny` for tests. Sync features are
not precomputed (the encoder trains), exactly as the reference.

SMS items are the ingested clips (those accepted by verify, when the root has been verified), grouped by
split. URMP items are the (window, player) rows: mixture video frames, the player's label and the player's
stem as the audio, keyed by the stem id.

Storage: `{out}/{split}/r{rank}-{k}.safetensors` shards of `shard_size` items, stacked tensors `latent_mean`,
`latent_std`, `clip_f`, `text_f` plus the ids and labels in the shard's metadata, each written atomically;
`{out}/{split}/index.json` maps id -> (shard, row) and records the variant, duration and shapes.

Resumable: items in any existing shard are skipped. Data-parallel under `torchrun` (gloo or whatever group is
initialised): every rank lists the done items, a barrier, then rank r takes items r, r + W, ... of the rest
and writes its own shards; after a second barrier rank 0 merges the index. The features do not depend on
the rank, so a 2-process run equals a 1-process run.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from saganet.data.cut import read_audio_window
from saganet.data.ingest import read_clip_table
from saganet.data.verify import accepted_ids
from saganet.errors import InputError, SaganetError
from saganet.io.atomic import atomic_path, atomic_write_text
from saganet.io.video import decode_video

log = logging.getLogger(__name__)

INDEX_NAME = "index.json"
FEATURES = ("latent_mean", "latent_std", "clip_f", "text_f")
CLIP_FPS = 8.0


@dataclass(frozen=True)
class ExtractItem:
    id: str
    split: str
    label: str
    video: Path
    audio: Path  # the video itself (SMS) or the player's stem (URMP)


def list_items(root: str | os.PathLike, splits: list[str] | None = None, verified_only: bool = True
               ) -> list[ExtractItem]:
    """The items of an SMS or URMP root (sorted by split, then id)."""
    from saganet.data.metadata import read_urmp_metadata

    root = Path(root)
    clips = read_clip_table(root)
    items: list[ExtractItem] = []
    if (root / "metadata.tsv").is_file() and not (root / "metadata.csv").is_file():
        done = {c["id"] for c in clips}
        for r in read_urmp_metadata(root / "metadata.tsv"):
            if r.video_id in done:
                items.append(ExtractItem(r.audio_id, "test", r.label, root / f"{r.video_id}.mp4",
                                         root / f"{r.audio_id}.wav"))
    else:
        ok = accepted_ids(root) if verified_only else None
        for c in clips:
            if ok is None or c["id"] in ok:
                v = root / f"{c['id']}.mp4"
                items.append(ExtractItem(c["id"], c["split"], c["label"], v, v))
    if splits:
        items = [i for i in items if i.split in splits]
    return sorted(items, key=lambda i: (i.split, i.id))


def load_model(variant: str = "tiny", device: str = "cpu"):
    """An `AudioGenerator` of the variant registry (`saganet.builders.build_variant`)."""
    from saganet.builders import build_variant

    return build_variant(variant).to(device).eval()


def _fit(x: torch.Tensor, n: int) -> torch.Tensor:
    """Trim or pad (repeating the last row) a `(T, ...)` tensor to `n` rows."""
    if x.shape[0] >= n:
        return x[:n]
    return torch.cat([x, x[-1:].expand(n - x.shape[0], *x.shape[1:])]) if x.shape[0] else x


@torch.no_grad()
def item_features(model, item: ExtractItem, duration: float, device: str = "cpu") -> dict[str, torch.Tensor]:
    """The four feature tensors of one item (batch dimension removed), sized for `duration` seconds."""
    seq = model.seq_for(duration) if hasattr(model, "seq_for") else model.seq
    sr = model.sample_rate
    wav, _ = read_audio_window(item.audio, 0.0, duration, rate=sr, mono=True)
    n = int(round(duration * sr))
    w = torch.from_numpy(wav[0, :n]).to(device)[None]
    post = model.codec.encode(w)
    mean, std = post.mean[0].float(), post.std[0].float()
    video = decode_video(item.video, duration=duration, clip_fps=CLIP_FPS, clip_size=model.clip_size,
                         sync_size=16, quiet=True)
    clip_f = model.frame_encoder.encode_frames(_fit(video.clip_frames, seq.clip_seq_len)[None].to(device))[0]
    text_f = model.encode_text([item.label])[0]
    return {"latent_mean": _fit(mean, seq.latent_seq_len).cpu().contiguous(),
            "latent_std": _fit(std, seq.latent_seq_len).cpu().contiguous(),
            "clip_f": clip_f.float().cpu().contiguous(), "text_f": text_f.float().cpu().contiguous()}


def shard_ids(path: Path) -> list[str]:
    with safe_open(str(path), framework="pt") as f:
        return json.loads((f.metadata() or {}).get("ids", "[]"))


def _shards(split_dir: Path) -> list[Path]:
    return sorted(p for p in split_dir.glob("r*-*.safetensors") if not p.name.startswith("."))


def _dist_info() -> tuple[int, int, bool]:
    """(rank, world size, whether we initialised the group)."""
    import torch.distributed as dist

    ours = False
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
        ours = True
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), ours
    return 0, 1, False


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _write_shard(split_dir: Path, rank: int, k: int, ids: list[str], labels: list[str], rows: list[dict]) -> Path:
    path = split_dir / f"r{rank:02d}-{k:05d}.safetensors"
    tensors = {name: torch.stack([r[name] for r in rows]) for name in FEATURES}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"ids": json.dumps(ids), "labels": json.dumps(labels)})
    return path


def merge_index(split_dir: Path, meta: dict) -> dict:
    """Rank 0: id -> (shard, row) over every shard (first occurrence wins), written atomically."""
    items, labels = {}, {}
    shapes = None
    for p in _shards(split_dir):
        with safe_open(str(p), framework="pt") as f:
            md = f.metadata() or {}
            ids, labs = json.loads(md.get("ids", "[]")), json.loads(md.get("labels", "[]"))
            if shapes is None:
                shapes = {n: list(f.get_slice(n).get_shape()[1:]) for n in FEATURES}
        for row, (i, lab) in enumerate(zip(ids, labs)):
            if i not in items:
                items[i] = [p.name, row]
                labels[i] = lab
    index = {**meta, "shapes": shapes, "count": len(items), "items": dict(sorted(items.items())),
             "labels": dict(sorted(labels.items()))}
    atomic_write_text(split_dir / INDEX_NAME, json.dumps(index, indent=1))
    return index


def extract(root: str | os.PathLike, out: str | os.PathLike, variant: str = "tiny", model=None,
            splits: list[str] | None = None, duration: float | None = None, shard_size: int = 64,
            device: str = "cpu", verified_only: bool = True, quiet: bool = False) -> dict[str, dict] | None:
    """Extract features of every item of `root` into `out` (see the module docstring).

    Returns split -> index on rank 0 (None on other ranks). `duration`: seconds per item (default the
    model's sequence duration: 8 s for the released 44k model, as the reference extracts).
    """
    root, out = Path(root), Path(out)
    if shard_size < 1:
        raise InputError(f"bad shard size {shard_size}: use at least 1")
    rank, world, ours = _dist_info()
    try:
        model = model if model is not None else load_model(variant, device)
        if duration is not None and (not math.isfinite(duration) or duration <= 0):
            raise InputError(f"bad duration {duration}: use seconds > 0")
        duration = float(model.seq.duration if duration is None else duration)
        items = list_items(root, splits, verified_only)
        if not items:
            raise InputError(f"no items to extract under {root} (ingested, masked and accepted clips)")
        by_split: dict[str, list[ExtractItem]] = {}
        for it in items:
            by_split.setdefault(it.split, []).append(it)
        results = {}
        for split, its in by_split.items():
            split_dir = out / split
            split_dir.mkdir(parents=True, exist_ok=True)
            for stale in split_dir.glob(f".r{rank:02d}-*.safetensors"):  # this rank's temporaries of a kill
                stale.unlink(missing_ok=True)
            done = {i for p in _shards(split_dir) for i in shard_ids(p)}
            _barrier()  # every rank has listed the done items before anyone writes
            todo = [it for it in its if it.id not in done][rank::world]
            k = 1 + max((int(p.stem.split("-")[1]) for p in _shards(split_dir)
                         if p.stem.startswith(f"r{rank:02d}-")), default=-1)
            buf: list[tuple[ExtractItem, dict]] = []
            failed = {}
            for it in tqdm(todo, desc=f"extract {split} (rank {rank})", unit="item", disable=quiet):
                try:
                    buf.append((it, item_features(model, it, duration, device)))
                except SaganetError as e:
                    failed[it.id] = str(e).splitlines()[0]
                    log.warning("extract: %s skipped: %s", it.id, failed[it.id])
                if len(buf) >= shard_size:
                    _write_shard(split_dir, rank, k, [b[0].id for b in buf], [b[0].label for b in buf],
                                 [b[1] for b in buf])
                    k, buf = k + 1, []
            if buf:
                _write_shard(split_dir, rank, k, [b[0].id for b in buf], [b[0].label for b in buf],
                             [b[1] for b in buf])
            _barrier()
            if rank == 0:
                meta = {"variant": variant, "duration": duration,
                        "sample_rate": model.sample_rate, "clip_fps": CLIP_FPS, "split": split}
                results[split] = merge_index(split_dir, meta)
                if failed:
                    results[split]["failed"] = failed
            _barrier()
        return results if rank == 0 else None
    finally:
        if ours:
            import torch.distributed as dist

            dist.destroy_process_group()


class FeatureStore:
    """Read access to one split's extracted features: `store[id] -> {latent_mean, latent_std, clip_f, text_f}`."""

    def __init__(self, split_dir: str | os.PathLike) -> None:
        self.dir = Path(split_dir)
        path = self.dir / INDEX_NAME
        if not path.is_file():
            raise InputError(f"{path} not found: run `saganet data extract` for this split first")
        self.index = json.loads(path.read_text())
        self.items: dict[str, list] = self.index["items"]
        self._open: dict[str, object] = {}

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, item_id: str) -> dict[str, torch.Tensor]:
        shard, row = self.items[item_id]
        f = self._open.get(shard)
        if f is None:  # opened lazily per process (DataLoader workers each get their own handles)
            f = self._open[shard] = safe_open(str(self.dir / shard), framework="pt")
        return {n: f.get_slice(n)[row] for n in FEATURES}  # type: ignore[attr-defined]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_open": {}}
