"""`saganet evaluate`: score generated audio against references (av-benchmark metric families), and
`saganet evaluate urmp`: the URMP multi-source protocol (generate per player, score against its stem).

    saganet evaluate GEN_DIR --reference REF_DIR [--videos DIR] [--metrics panns,vggish,desync] [--out DIR]
    saganet evaluate urmp --root URMP_ROOT [--metadata metadata.tsv] --variant VARIANT --out DIR

Options of each form: `saganet evaluate GEN_DIR --help`, `saganet evaluate urmp --help`. Metric definitions,
models and checkpoints: docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)

DEFAULT_METRICS = "panns,passt,vggish,target_distractor"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", default=None,
                   help=f"comma-separated metric families (default {DEFAULT_METRICS}, plus desync and imagebind "
                        "when videos are known, clap when prompts are); `toy` = the toy world's analytic metrics")
    p.add_argument("--duration", type=float, default=5.0, help="seconds evaluated per file (default 5)")
    p.add_argument("--weights", default="official",
                   help="official (download/cached checkpoints through saganet weights) or random (plumbing "
                        "tests; numbers are meaningless)")
    p.add_argument("--model-size", choices=("full", "tiny"), default="full", help=argparse.SUPPRESS)
    p.add_argument("--cache", default=None, help="embedding cache folder (default OUT/cache)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing metrics.json")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="score generated audio (FD, KL, IS, DeSync, ...) or run the URMP protocol",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("gen_dir", help="folder of generated audio (or a `saganet generate --batch` output folder); "
                                   "`urmp` runs the URMP protocol")
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _folder_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="saganet evaluate GEN_DIR")
    p.add_argument("--reference", "-r", default=None, help="folder of ground-truth audio, paired by name")
    p.add_argument("--videos", default=None, help="folder of the videos (<name>.mp4) for DeSync")
    p.add_argument("--prompts", default=None, help="JSON file {name: text} for the CLAP score")
    p.add_argument("--out", "-o", default=None, help="output folder (default GEN_DIR/eval)")
    _common(p)
    return p


def _urmp_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="saganet evaluate urmp")
    p.add_argument("--root", required=True, help="URMP clips folder ({piece}/Vid_*.mp4, Masks_*.mp4, AuSep_*.wav)")
    p.add_argument("--metadata", default=None, help="URMP metadata.tsv (default: rows found by scanning --root)")
    p.add_argument("--variant", default="saganet_small", help="model variant (toy for the toy model)")
    p.add_argument("--out", "-o", required=True, help="output folder (generated stems, progress, metrics)")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--cfg-strength", type=float, default=4.5)
    p.add_argument("--seed", type=int, default=14159265)
    p.add_argument("--device", default="cpu")
    p.add_argument("--limit", type=int, default=None, help="only the first N rows")
    _common(p)
    return p


def _opts(a, families: tuple[str, ...]):
    from saganet.eval import EvalOptions

    return EvalOptions(families=families, duration=a.duration, weights=a.weights, size=a.model_size,
                       cache_dir=a.cache, progress=not a.quiet, overwrite=a.overwrite)


def _families(a, have_videos: bool, have_prompts: bool = False) -> tuple[str, ...]:
    """--metrics, or the defaults plus the video families (DeSync, IB-score) and CLAP when they can run."""
    if a.metrics:
        return tuple(m.strip() for m in a.metrics.split(",") if m.strip())
    fams = DEFAULT_METRICS.split(",")
    return tuple(fams + (["desync", "imagebind"] if have_videos else []) + (["clap"] if have_prompts else []))


def _load_plugins() -> None:
    """Families of layers above eval register themselves on import (the toy world's analytic metrics)."""
    try:
        import saganet.toyworld.eval_family  # noqa: F401
    except ImportError as e:  # the toy world is part of the package; a broken import should be visible
        log.warning("toy metric family unavailable: %s", e)


def run(args) -> int:
    from pathlib import Path

    import saganet.eval as ev
    from saganet.eval.runner import markdown_table

    _load_plugins()
    if args.gen_dir == "urmp":
        a = _urmp_parser().parse_args(args.rest)
        from saganet.eval.urmp import run_urmp

        res = run_urmp(a.root, a.out, metadata=a.metadata, variant=a.variant, opts=_opts(a, _families(a, True, True)),
                       steps=a.steps, cfg_strength=a.cfg_strength, seed=a.seed, device=a.device, limit=a.limit)
        if res is not None:
            sys.stdout.write(markdown_table(res))
        return 0
    a = _folder_parser().parse_args(args.rest)
    out = a.out or str(Path(args.gen_dir) / "eval")
    prompts = None
    if a.prompts:
        import json

        from saganet.errors import InputError

        try:
            prompts = {str(k): str(v) for k, v in json.loads(Path(a.prompts).read_text()).items()}
        except (OSError, ValueError, AttributeError) as e:
            raise InputError(f"cannot read prompts {a.prompts} ({e}): give a JSON object {{name: text}}") from e
    from saganet.eval.runner import _batch_jobs

    gen = Path(args.gen_dir)
    batch = gen.is_dir() and bool(_batch_jobs(gen))  # batch outputs know their videos and prompts
    fams = _families(a, a.videos is not None or batch, prompts is not None or batch)
    res = ev.evaluate_folder(gen, a.reference, out, _opts(a, fams), video_dir=a.videos, prompts=prompts)
    sys.stdout.write(markdown_table(res))
    sys.stdout.write(f"\nwritten: {Path(out) / 'metrics.json'}, {Path(out) / 'metrics.md'}\n")
    return 0
