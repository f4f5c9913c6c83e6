"""The URMP multi-source protocol: for each (clip, player) row, generate with the mixture video, that
player's mask and instrument label, and score the result against the player's separated stem.

Rows come from URMP `metadata.tsv` (`saganet.data.metadata.read_urmp_metadata`) or, without one, from
scanning `ROOT/{piece}/` for `Vid_*_{s}_{e}.mp4` with their `Masks_{kk}_{instr}_..._{s}_{e}.mp4`; the
stem is `AuSep_{k}_{instr}_..._{s}_{e}.wav` (reference layout, RN-45) and the label the
instrument's name. A row whose stem is missing is still generated and listed as skipped in the scores.

Resumable: each generated stem is written atomically to `OUT/generated/{audio stem}.flac`; a rerun skips
rows whose file exists. Data-parallel under `torchrun`: rank r generates rows r, r + W, ...; after a
barrier rank 0 scores everything and writes `OUT/metrics.json` and `OUT/metrics.md` (the players of a
clip form one scene for the target-vs-distractor score).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from saganet.errors import InputError
from saganet.eval.families import EvalItem
from saganet.eval.runner import EvalOptions, evaluate_items, write_results

log = logging.getLogger(__name__)

__all__ = ["URMPItem", "scan_urmp", "urmp_rows", "run_urmp", "INSTRUMENTS"]

INSTRUMENTS = {"vn": "violin", "va": "viola", "vc": "cello", "db": "double bass", "fl": "flute", "ob": "oboe",
               "cl": "clarinet", "sax": "saxophone", "bn": "bassoon", "tpt": "trumpet", "hn": "horn",
               "tbn": "trombone", "tba": "tuba"}
_WINDOW = re.compile(r"_(\d+)_(\d+)$")


@dataclass(frozen=True)
class URMPItem:
    video: Path
    mask: Path
    stem: Path  # may not exist
    label: str
    scene: str  # the clip id

    @property
    def name(self) -> str:
        return self.stem.stem


def scan_urmp(root: str | Path) -> list[URMPItem]:
    """Rows found under `root` by file names (no metadata file)."""
    r = Path(root)
    out: list[URMPItem] = []
    for vid in sorted(r.rglob("Vid_*.mp4")):
        if vid.stem.endswith("_detail"):
            continue
        m = _WINDOW.search(vid.stem)
        if not m:
            continue
        window = m.group(0)
        for mask in sorted(vid.parent.glob(f"Masks_*{window}.mp4")):
            parts = mask.stem.split("_")  # Masks, kk, instr, n, name..., s, e
            if len(parts) < 6:
                continue
            k, instr = parts[1], parts[2]
            rest = "_".join(parts[2:])
            stem = vid.parent / f"AuSep_{int(k) if k.isdigit() else k}_{rest}.wav"
            out.append(URMPItem(vid, mask, stem, INSTRUMENTS.get(instr, instr), vid.relative_to(r).with_suffix("").as_posix()))
    return out


def urmp_rows(root: str | Path, metadata: str | Path | None = None) -> list[URMPItem]:
    r = Path(root)
    if not r.is_dir():
        raise InputError(f"URMP root not found: {r}")
    if metadata is None:
        rows = scan_urmp(r)
    else:
        from saganet.data.metadata import read_urmp_metadata

        rows = [URMPItem(r / f"{m.video_id}.mp4", r / f"{m.mask_id}.mp4", r / f"{m.audio_id}.wav", m.label, m.video_id)
                for m in read_urmp_metadata(metadata)]
    if not rows:
        raise InputError(f"no URMP rows in {r}: expected {{piece}}/Vid_*_S_E.mp4 with Masks_*_S_E.mp4 "
                         "(or pass --metadata metadata.tsv)")
    missing = [str(x.video) for x in rows if not x.video.is_file()] + [str(x.mask) for x in rows if not x.mask.is_file()]
    if missing:
        raise InputError(f"{len(missing)} URMP inputs missing, e.g. {missing[0]}: check --root")
    return rows


def _dist() -> tuple[int, int]:
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def run_urmp(root: str | Path, out_dir: str | Path, metadata: str | Path | None = None, variant: str = "saganet_small",
             opts: EvalOptions | None = None, steps: int = 25, cfg_strength: float = 4.5, seed: int = 14159265,
             device: str = "cpu", limit: int | None = None, duration: float | None = None) -> dict | None:
    """Generate (resumable, rank-sharded) then score on rank 0. Returns the results on rank 0, else None.

    `duration`: seconds generated per row (None: the clip's length capped at what the model was trained on,
    5 s for the released SAGANet)."""
    import torch

    from saganet.io.audio import write_audio
    from saganet.io.masks import MaskSpec
    from saganet.pipeline import GenerationOptions, SAGANetPipeline

    opts = opts or EvalOptions(families=("panns", "vggish", "target_distractor"))
    out = Path(out_dir)
    if (out / "metrics.json").exists() and not opts.overwrite:
        raise InputError(f"{out} already holds metrics.json: pass --overwrite or choose another --out")
    rows = urmp_rows(root, metadata)[:limit]
    rank, world = _dist()
    gen_dir = out / "generated"
    gen_dir.mkdir(parents=True, exist_ok=True)
    mine = [x for i, x in enumerate(rows) if i % world == rank]
    todo = [x for x in mine if not (gen_dir / f"{x.name}.flac").is_file()]
    log.info("URMP rank %d/%d: %d rows, %d already generated", rank, world, len(mine), len(mine) - len(todo))
    if todo:
        pipe = SAGANetPipeline.from_variant(variant, device=device)
        for x in tqdm(todo, desc=f"URMP generate (rank {rank})", disable=not opts.progress):
            video = pipe.load_video(x.video, duration=duration, quiet=True)
            masks = pipe.load_masks([MaskSpec(x.mask, name=x.label)], video, pad=True)
            res = pipe.generate(video, masks, GenerationOptions(prompt=x.label, steps=steps, cfg_strength=cfg_strength,
                                                                seed=seed, progress=False))
            write_audio(gen_dir / f"{x.name}.flac", res.stems[0], res.sample_rate)
    if world > 1:
        torch.distributed.barrier()  # every rank's stems are written; only rank 0 goes on to score
        torch.distributed.destroy_process_group()
    if rank != 0:
        return None
    items, skipped = [], {}
    for x in rows:
        g = gen_dir / f"{x.name}.flac"
        if not g.is_file():
            skipped[x.name] = "not generated (a rank failed?)"
        elif not x.stem.is_file():
            skipped[x.name] = f"no separated stem {x.stem.name}"
        else:
            items.append(EvalItem(name=x.name, gen=g, ref=x.stem, video=x.video, mask=x.mask, prompt=x.label,
                                  scene=x.scene))
    if not items:
        raise InputError(f"URMP: nothing to score ({'; '.join(f'{k}: {v}' for k, v in list(skipped.items())[:2])})")
    cache = Path(opts.cache_dir) if opts.cache_dir else out / "cache"
    results = evaluate_items(items, opts, cache, skipped)
    results["urmp"] = {"root": str(root), "metadata": str(metadata) if metadata else None, "variant": variant,
                       "rows": len(rows), "world_size": world, "steps": steps, "cfg_strength": cfg_strength,
                       "seed": seed}
    write_results(results, out)
    return results
