"""Toy-world splits: write them to disk in the real pipeline's formats, or get them as numpy arrays.

On disk (`root/<split>/`):
    world.json                  world config, kind, seed, n
    metadata.jsonl              one line per clip: id, kind, index, objects (name, class, onsets,
                                pitch), targets (name + text prompt)
    <id>/video.mp4              mixture video with the mix as an AAC audio track
    <id>/mask_<name>.mp4        per object: white-on-black mask video (near-lossless)
    <id>/stem_<name>.wav        per object: float wav
    <id>/mix.wav                the mixture audio (exact; the AAC track is lossy)

In memory: clip `i` of a split depends only on (seed, kind, i), so `generate_arrays` and
`load_split_arrays` re-render clips from the seed instead of decoding mp4 (fast, exact).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from saganet.errors import InputError
from saganet.io.atomic import atomic_write_text
from saganet.io.audio import write_audio
from saganet.io.writers import write_mask_video, write_video
from saganet.toyworld.world import (
    CLASS_NAMES,
    Scene,
    WorldConfig,
    render_scene,
    sample_multi_different,
    sample_multi_same_class,
    sample_solo,
)

log = logging.getLogger(__name__)

__all__ = [
    "KINDS",
    "SPLITS",
    "ToyArrays",
    "make_scene",
    "iter_scenes",
    "scene_targets",
    "generate_arrays",
    "write_split",
    "read_metadata",
    "load_split_arrays",
]

KINDS = ("solo", "multi_diff", "multi_same")
# default kind and seed of each named split (seeds differ so splits never share clips)
SPLITS: dict[str, tuple[str, int]] = {
    "train": ("solo", 1000),
    "val": ("solo", 2000),
    "test_diff": ("multi_diff", 3000),
    "test_same": ("multi_same", 4000),
}


def _clip_rng(seed: int, kind: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), KINDS.index(kind), int(index)]))


def make_scene(kind: str, seed: int, index: int, cfg: WorldConfig | None = None) -> Scene:
    """Clip `index` of the (kind, seed) stream; deterministic and independent of other clips."""
    cfg = cfg or WorldConfig()
    if kind not in KINDS:
        raise InputError(f"unknown toy scene kind '{kind}'; expected one of {', '.join(KINDS)}")
    rng = _clip_rng(seed, kind, index)
    sampler = {"solo": sample_solo, "multi_diff": sample_multi_different, "multi_same": sample_multi_same_class}[kind]
    return render_scene(sampler(rng, cfg), cfg, rng)


def iter_scenes(n: int, seed: int, kind: str, cfg: WorldConfig | None = None, start: int = 0) -> Iterator[Scene]:
    for i in range(start, start + n):
        yield make_scene(kind, seed, i, cfg)


def scene_targets(scene: Scene, kind: str) -> list[dict]:
    """Targets of a clip: every object, with its text prompt.

    solo: prompt = class name; multi_diff: no prompt (""); multi_same: prompt = the (shared) class
    name, so only the mask says which of the two rhythms is wanted.
    """
    return [{"name": nm, "prompt": "" if kind == "multi_diff" else c} for nm, c in zip(scene.names, scene.classes)]


@dataclass
class ToyArrays:
    """One row per (clip, target object).

    video  uint8 (N, T, H, W, 3)    the clip's (mixture) video
    mask   bool (N, T, H, W)        the target's mask
    target float32 (N, L)           the target's stem
    mix    float32 (N, L)           the clip's mixture audio
    class_id int64 (N,)             target class index into CLASS_NAMES
    """

    video: np.ndarray
    mask: np.ndarray
    target: np.ndarray
    mix: np.ndarray
    class_id: np.ndarray
    prompt: list[str]
    onsets: list[np.ndarray]
    distractor_onsets: list[np.ndarray]
    clip_index: np.ndarray
    name: list[str]
    kind: str
    cfg: WorldConfig

    def __len__(self) -> int:
        return len(self.class_id)

    @property
    def class_name(self) -> list[str]:
        return [CLASS_NAMES[int(c)] for c in self.class_id]


def _arrays_from_scenes(scenes: list[tuple[int, Scene]], kind: str, cfg: WorldConfig) -> ToyArrays:
    video, mask, target, mix, cid, prompt, ons, dis, idx, names = [], [], [], [], [], [], [], [], [], []
    for i, sc in scenes:
        for k, tgt in enumerate(scene_targets(sc, kind)):
            video.append(sc.video)
            mask.append(sc.masks[k])
            target.append(sc.stems[k])
            mix.append(sc.mix)
            cid.append(CLASS_NAMES.index(sc.classes[k]))
            prompt.append(tgt["prompt"])
            ons.append(sc.onsets[k])
            others = [sc.onsets[j] for j in range(len(sc.names)) if j != k]
            dis.append(np.sort(np.concatenate(others)) if others else np.zeros(0))
            idx.append(i)
            names.append(sc.names[k])
    T, S, L = cfg.n_frames, cfg.frame_size, cfg.n_samples
    return ToyArrays(
        video=np.stack(video) if video else np.zeros((0, T, S, S, 3), np.uint8),
        mask=np.stack(mask) if mask else np.zeros((0, T, S, S), bool),
        target=np.stack(target) if target else np.zeros((0, L), np.float32),
        mix=np.stack(mix) if mix else np.zeros((0, L), np.float32),
        class_id=np.asarray(cid, np.int64),
        prompt=prompt,
        onsets=ons,
        distractor_onsets=dis,
        clip_index=np.asarray(idx, np.int64),
        name=names,
        kind=kind,
        cfg=cfg,
    )


def generate_arrays(n: int, seed: int, kind: str = "solo", cfg: WorldConfig | None = None, start: int = 0) -> ToyArrays:
    """Clips `start .. start+n-1` of the (kind, seed) stream as stacked arrays (no disk, no codecs)."""
    cfg = cfg or WorldConfig()
    return _arrays_from_scenes([(i, make_scene(kind, seed, i, cfg)) for i in range(start, start + n)], kind, cfg)


def _split_kind_seed(split: str, kind: str | None, seed: int | None) -> tuple[str, int]:
    d_kind, d_seed = SPLITS.get(split, (None, None))
    kind = kind or d_kind
    seed = seed if seed is not None else d_seed
    if kind is None or seed is None:
        raise InputError(f"split '{split}' is not one of {', '.join(SPLITS)}: give kind and seed explicitly")
    return kind, int(seed)


def write_split(
    root: str | os.PathLike,
    split: str,
    n: int,
    seed: int | None = None,
    kind: str | None = None,
    cfg: WorldConfig | None = None,
    progress: bool = True,
) -> Path:
    """Write `n` clips of `split` under `root/split/` (layout in the module docstring); returns that folder.

    `kind`/`seed` default to the split's entry in `SPLITS`. Files are written atomically; the
    metadata is written last, so a split with a metadata.jsonl is complete.
    """
    cfg = cfg or WorldConfig()
    kind, seed = _split_kind_seed(split, kind, seed)
    out = Path(root) / split
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in tqdm(range(n), desc=f"toyworld {split}", disable=not progress):
        sc = make_scene(kind, seed, i, cfg)
        cid = f"{split}_{i:05d}"
        d = out / cid
        write_video(d / "video.mp4", sc.video, cfg.fps, audio=sc.mix, sample_rate=cfg.sample_rate)
        write_audio(d / "mix.wav", sc.mix, cfg.sample_rate)
        for k, name in enumerate(sc.names):
            write_mask_video(d / f"mask_{name}.mp4", sc.masks[k], cfg.fps)
            write_audio(d / f"stem_{name}.wav", sc.stems[k], cfg.sample_rate)
        rec = {
            "id": cid,
            "kind": kind,
            "index": i,
            "objects": [o.to_meta() for o in sc.objects],
            "targets": scene_targets(sc, kind),
        }
        lines.append(json.dumps(rec))
    info = {"split": split, "kind": kind, "seed": seed, "n": n, "world": cfg.to_dict()}
    atomic_write_text(out / "world.json", json.dumps(info, indent=1))
    atomic_write_text(out / "metadata.jsonl", "\n".join(lines) + "\n")
    log.info("wrote %d %s clips to %s", n, kind, out)
    return out


def read_metadata(root: str | os.PathLike, split: str) -> tuple[dict, list[dict]]:
    """(world.json contents, metadata.jsonl records) of a written split."""
    d = Path(root) / split
    try:
        info = json.loads((d / "world.json").read_text())
        recs = [json.loads(line) for line in (d / "metadata.jsonl").read_text().splitlines() if line.strip()]
    except FileNotFoundError as e:
        raise InputError(f"no toy split at {d}: {e.filename} is missing (run write_split first)") from e
    return info, recs


def load_split_arrays(root: str | os.PathLike, split: str, limit: int | None = None) -> ToyArrays:
    """The split's clips as `ToyArrays`, re-rendered from the stored seed (no mp4 decoding).

    Checks each re-rendered clip against the stored onsets, so a changed world raises instead of
    silently yielding different data.
    """
    info, recs = read_metadata(root, split)
    cfg = WorldConfig.from_dict(info["world"])
    recs = recs[:limit] if limit is not None else recs
    scenes = []
    for r in recs:
        sc = make_scene(info["kind"], info["seed"], r["index"], cfg)
        stored = [np.asarray(o["onsets"]) for o in r["objects"]]
        if len(stored) != len(sc.onsets) or any(
            len(a) != len(b) or not np.allclose(a, b, atol=1e-4) for a, b in zip(stored, sc.onsets)
        ):
            raise InputError(f"toy clip {r['id']} does not re-render as stored: the world code has changed")
        scenes.append((r["index"], sc))
    return _arrays_from_scenes(scenes, info["kind"], cfg)
