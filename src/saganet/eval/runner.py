"""`saganet evaluate`: pair generated and reference audio, embed with caching, run metric families,
write `metrics.json` and `metrics.md`.

Inputs (`discover_items`):
- flat folders: `GEN_DIR/<name>.{flac,wav}` paired with `REF_DIR/<name>.{flac,wav}` (videos, when
  given, `VIDEO_DIR/<name>.mp4`);
- a `saganet generate --batch` output: `GEN_DIR/<job>/stem_<object>.{flac,wav}` with `run.json`
  (video, masks, prompts); references `REF_DIR/<job>/<object>.{flac,wav}` (or `stem_<object>.*`).
  The stems of one job form a scene (target vs distractor).

Every file is checked before any metric: unreadable, silent, too short, or without its reference ->
listed in `skipped` with the reason; if nothing is left the run stops with one `InputError` and
writes nothing. Embeddings are cached per file in `CACHE/<model id>/<sha256 of the file>_<duration>.npz`
(written atomically), so a killed run resumes where it stopped. Results are written atomically,
only at the end.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from saganet.errors import InputError
from saganet.eval.audio import SILENCE_RMS, prepare
from saganet.eval.families import EvalItem, FamilyResult, make_family
from saganet.io.atomic import atomic_path, atomic_write_text
from saganet.io.audio import read_audio

log = logging.getLogger(__name__)

__all__ = ["EvalOptions", "EvalContext", "discover_items", "check_items", "evaluate_items", "evaluate_folder",
           "write_results", "markdown_table", "AUDIO_EXT"]

AUDIO_EXT = (".flac", ".wav")


@dataclass
class EvalOptions:
    families: tuple[str, ...] = ("panns", "vggish")
    duration: float | None = 5.0  # seconds evaluated per file (av-benchmark `audio_length`); None: whole file
    min_duration: float = 1.0
    weights: str = "official"  # "official" | "random" | a checkpoint path (single-model runs)
    size: str = "full"  # "full" | "tiny" (tests)
    cache_dir: str | None = None
    progress: bool = True
    overwrite: bool = False


class EvalContext:
    """Shared by the families of one run: prepared audio (memoised), embedders, the embedding cache."""

    def __init__(self, opts: EvalOptions, cache_dir: Path | None):
        self.opts, self.cache_dir = opts, cache_dir
        self._embedders: dict[str, object] = {}
        self._audio: dict[tuple[str, int], np.ndarray] = {}
        self._hash: dict[str, str] = {}
        self.cache_hits = self.cache_misses = 0

    def embedder(self, kind: str):
        if kind not in self._embedders:
            from saganet.eval.embedders import build_embedder

            self._embedders[kind] = build_embedder(kind, self.opts.weights, self.opts.size)
        return self._embedders[kind]

    def audio(self, path: Path, sr: int) -> np.ndarray:
        key = (str(path), sr)
        if key not in self._audio:
            wav, file_sr = read_audio(path)
            self._audio[key] = prepare(wav, file_sr, sr, self.opts.duration)
        return self._audio[key]

    def file_hash(self, path: Path) -> str:
        k = str(path)
        if k not in self._hash:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
            self._hash[k] = h.hexdigest()
        return self._hash[k]

    def _cache_file(self, model_id: str, path: Path) -> Path | None:
        if self.cache_dir is None:
            return None
        dur = "all" if self.opts.duration is None else f"{self.opts.duration:g}s"
        return self.cache_dir / re.sub(r"[^A-Za-z0-9_.=-]+", "_", model_id) / f"{self.file_hash(path)}_{dur}.npz"

    def embed(self, kind: str, path: Path) -> dict[str, np.ndarray]:
        """Embeddings of one file by model `kind` (cached on disk by content hash + model id + duration)."""
        emb = self.embedder(kind)
        return self.cached(emb.id, path, lambda: emb.embed(self.audio(path, emb.sample_rate)))

    def cached(self, model_id: str, path: Path, compute) -> dict[str, np.ndarray]:
        """`compute()` (a dict of arrays) for the file `path` and `model_id`, through the disk cache."""
        cf = self._cache_file(model_id, path)
        if cf is not None and cf.is_file():
            try:
                with np.load(cf) as z:
                    self.cache_hits += 1
                    return {k: z[k] for k in z.files}
            except Exception:  # a damaged cache entry is recomputed
                log.warning("cache entry %s unreadable: recomputing", cf)
        out = compute()
        self.cache_misses += 1
        if cf is not None:
            cf.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cf) as tmp, open(tmp, "wb") as f:
                np.savez(f, **out)
        return out


# ------------------------------------------------------------------------------------------ inputs
def _audio_files(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in AUDIO_EXT:
            if p.stem in out:
                raise InputError(f"{folder} holds {out[p.stem].name} and {p.name}: keep one file per name")
            out[p.stem] = p
    return out


def _find_ref(folder: Path, names: list[str]) -> Path | None:
    for n in names:
        for ext in AUDIO_EXT:
            if (folder / f"{n}{ext}").is_file():
                return folder / f"{n}{ext}"
    return None


def _batch_jobs(gen_dir: Path) -> list[Path]:
    return sorted(p for p in gen_dir.iterdir() if p.is_dir() and (p / "run.json").is_file())


def discover_items(gen_dir: str | Path, ref_dir: str | Path | None = None, video_dir: str | Path | None = None,
                   prompts: dict[str, str] | None = None) -> tuple[list[EvalItem], dict[str, str]]:
    """Pair generated files with references (see the module docstring). Returns (items, skipped)."""
    gen = Path(gen_dir)
    if not gen.is_dir():
        raise InputError(f"generated-audio folder not found: {gen}")
    ref = Path(ref_dir) if ref_dir is not None else None
    if ref is not None and not ref.is_dir():
        raise InputError(f"reference folder not found: {ref}")
    vids = Path(video_dir) if video_dir is not None else None
    if vids is not None and not vids.is_dir():
        raise InputError(f"video folder not found: {vids}")
    prompts = prompts or {}
    items: list[EvalItem] = []
    skipped: dict[str, str] = {}
    jobs = _batch_jobs(gen)
    if jobs:
        for job in jobs:
            try:
                info = json.loads((job / "run.json").read_text())
            except (OSError, ValueError) as e:
                skipped[job.name] = f"run.json unreadable ({e})"
                continue
            objects = list(info.get("objects") or [])
            job_prompts = list(info.get("prompts") or [])
            masks = list(info.get("masks") or [])
            video = Path(info["video"]) if info.get("video") else None
            if video is not None and not video.is_absolute():
                video = (job / video).resolve() if (job / video).exists() else video
            for stem in sorted(job.glob("stem_*")):
                if stem.suffix.lower() not in AUDIO_EXT:
                    continue
                obj = stem.stem[len("stem_"):]
                k = next((j for j, o in enumerate(objects) if re.sub(r"[^A-Za-z0-9_.-]+", "_", o) == obj), None)
                name = f"{job.name}/{obj}"
                r = _find_ref(ref / job.name, [obj, f"stem_{obj}"]) if ref is not None else None
                if ref is not None and r is None:
                    skipped[name] = f"no reference {ref / job.name / obj}.flac|wav"
                    continue
                items.append(EvalItem(
                    name=name, gen=stem, ref=r, video=video if video and video.is_file() else None,
                    mask=Path(masks[k]) if k is not None and k < len(masks) and masks[k] else None,
                    prompt=prompts.get(name, job_prompts[k] if k is not None and k < len(job_prompts) else ""),
                    scene=job.name))
    else:
        gen_files = _audio_files(gen)
        ref_files = _audio_files(ref) if ref is not None else {}
        for name, p in gen_files.items():
            if ref is not None and name not in ref_files:
                skipped[name] = f"no reference {ref / name}.flac|wav"
                continue
            v = None
            if vids is not None:
                v = vids / f"{name}.mp4"
                if not v.is_file():
                    v = None
            items.append(EvalItem(name=name, gen=p, ref=ref_files.get(name), video=v, prompt=prompts.get(name, "")))
        for name in sorted(set(ref_files) - set(gen_files)):
            skipped[f"(reference) {name}"] = "no generated file with this name"
    if not items:
        why = "; ".join(f"{k}: {v}" for k, v in list(skipped.items())[:3])
        raise InputError(f"no evaluable pairs in {gen}" + (f" ({why})" if why else "") +
                         ": generated and reference files are paired by name (see `saganet evaluate --help`)")
    return items, skipped


def _check_file(path: Path, min_duration: float) -> str | None:
    """Reason to skip `path`, or None."""
    try:
        wav, sr = read_audio(path)
    except InputError as e:
        return f"unreadable ({str(e).split(': ', 1)[-1]})"
    a = wav.numpy()
    if not np.isfinite(a).all():
        return "holds NaN or inf samples"
    if len(a) < min_duration * sr:
        return f"too short ({len(a) / sr:.2f} s < {min_duration:g} s)"
    if float(np.sqrt(np.mean((a - a.mean()) ** 2))) < SILENCE_RMS:
        return "silent (RMS below -80 dBFS)"
    return None


def check_items(items: list[EvalItem], opts: EvalOptions) -> tuple[list[EvalItem], dict[str, str], list[str]]:
    """Drop unusable items with a reason; note length mismatches. Returns (kept, skipped, notes)."""
    kept, skipped, notes = [], {}, []
    for it in tqdm(items, desc="check files", disable=not opts.progress, leave=False):
        why = _check_file(it.gen, opts.min_duration)
        if why is None and it.ref is not None:
            r = _check_file(it.ref, opts.min_duration)
            why = f"reference {r}" if r else None
        if why:
            skipped[it.name] = why
            continue
        if it.ref is not None:
            import soundfile as sf

            dg, dr = sf.info(str(it.gen)).duration, sf.info(str(it.ref)).duration
            cut = opts.duration if opts.duration is not None else math.inf
            if abs(min(dg, cut) - min(dr, cut)) > 0.05:
                notes.append(f"{it.name}: generated {dg:.2f} s vs reference {dr:.2f} s (each cut to "
                             f"{'its length' if cut == math.inf else f'{cut:g} s'})")
        kept.append(it)
    return kept, skipped, notes


# ------------------------------------------------------------------------------------------ running
def evaluate_items(items: list[EvalItem], opts: EvalOptions, cache_dir: Path | None = None,
                   skipped: dict[str, str] | None = None) -> dict:
    """Check the items, run every family, return the results dict (see `write_results`)."""
    t0 = time.perf_counter()
    families = [make_family(n) for n in opts.families]  # unknown names fail before any work
    from saganet.eval.embedders import check_weights

    check_weights({k for f in families for k in getattr(f, "needs", ())}, opts.weights)  # and missing weights
    kept, skip, notes = check_items(items, opts)
    skip = {**(skipped or {}), **skip}
    if not kept:
        why = "; ".join(f"{k}: {v}" for k, v in list(skip.items())[:3])
        raise InputError(f"no usable files to evaluate ({why})")
    ctx = EvalContext(opts, cache_dir)
    metrics: dict[str, float] = {}
    per_family: dict[str, dict] = {}
    rows: dict[str, dict] = {it.name: {} for it in kept}
    timings: dict[str, float] = {}
    for fam in families:
        t1 = time.perf_counter()
        res: FamilyResult = fam.compute(kept, ctx)
        timings[fam.name] = round(time.perf_counter() - t1, 3)
        metrics.update(res.metrics)
        per_family[fam.name] = {"metrics": res.metrics, "skipped": res.skipped, "notes": res.notes,
                                "description": fam.description}
        for k, r in res.rows.items():
            rows.setdefault(k, {}).update(r)
    return {
        "metrics": metrics,
        "families": per_family,
        "items": rows,
        "skipped": skip,
        "notes": notes,
        "n_items": len(kept),
        "options": asdict(opts),
        "models": {k: getattr(e, "id", k) for k, e in ctx._embedders.items()},
        "cache": {"dir": str(cache_dir) if cache_dir else None, "hits": ctx.cache_hits, "misses": ctx.cache_misses},
        "seconds": {"total": round(time.perf_counter() - t0, 3), **timings},
    }


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def markdown_table(results: dict) -> str:
    """One row per metric family: metric | value; then skipped files and notes."""
    lines = ["| family | metric | value |", "|---|---|---|"]
    for fam, r in results["families"].items():
        for k, v in r["metrics"].items():
            lines.append(f"| {fam} | {k} | {_fmt(v)} |")
    lines.append("")
    lines.append(f"{results['n_items']} files evaluated; models: " +
                 ", ".join(f"{k} = {v}" for k, v in results.get("models", {}).items()))
    if any("random" in str(v) for v in results.get("models", {}).values()):
        lines.append("**Random weights: these numbers test the plumbing and are not comparable to published ones.**")
    skipped = dict(results["skipped"])
    for fam, r in results["families"].items():
        for k, v in r["skipped"].items():
            skipped[f"{k} ({fam})"] = v
    if skipped:
        lines += ["", "Skipped:", ""] + [f"- {k}: {v}" for k, v in skipped.items()]
    notes = list(results.get("notes", [])) + [n for r in results["families"].values() for n in r["notes"]]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_results(results: dict, out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "metrics.json", "md": out / "metrics.md"}
    atomic_write_text(paths["json"], json.dumps(results, indent=1, default=_json_default))
    atomic_write_text(paths["md"], markdown_table(results))
    return paths


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


def evaluate_folder(gen_dir: str | Path, ref_dir: str | Path | None, out_dir: str | Path,
                    opts: EvalOptions | None = None, video_dir: str | Path | None = None,
                    prompts: dict[str, str] | None = None) -> dict:
    """The whole `saganet evaluate GEN_DIR --reference REF_DIR` run; returns the results dict."""
    opts = opts or EvalOptions()
    out = Path(out_dir)
    existing = [p.name for p in (out / "metrics.json", out / "metrics.md") if p.exists()]
    if existing and not opts.overwrite:
        raise InputError(f"{out} already holds {', '.join(existing)}: pass --overwrite or choose another --out")
    items, skipped = discover_items(gen_dir, ref_dir, video_dir, prompts)
    cache = Path(opts.cache_dir) if opts.cache_dir else out / "cache"
    results = evaluate_items(items, opts, cache, skipped)
    results["inputs"] = {"generated": str(gen_dir), "reference": str(ref_dir) if ref_dir else None,
                         "videos": str(video_dir) if video_dir else None}
    write_results(results, out)
    return results
