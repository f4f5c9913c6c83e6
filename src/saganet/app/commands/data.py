"""`saganet data {ingest,masks,verify,focal,extract,stats}`: rebuild Segmented Music Solos and the URMP test set.

    saganet data ingest sms sms/metadata.csv -o data/sms --music21 raw/MUSIC21 --solos raw/Solos --avsbench raw/AVSS
    saganet data ingest urmp urmp/metadata.tsv -o data/urmp --urmp raw/URMP
    saganet data ingest folder my_clips/ -o data/mine     # my_clips/{label}/{name}.mp4 (+ {name}_mask.mp4)
    saganet data masks data/sms --segmenter sam2.1-tiny          # or --segmenter color for the toy world
    saganet data verify data/sms [--set min_area=0.01] [--review]
    saganet data focal data/sms
    saganet data extract data/sms -o feats/sms --variant saganet_small
    torchrun --standalone --nproc-per-node 4 -m saganet.app.cli data extract data/sms -o feats/sms
    saganet data stats data/sms

Every stage is resumable (re-run the same command after a kill) and never overwrites without `--overwrite`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

from saganet.errors import InputError

log = logging.getLogger(__name__)

SEGMENTERS = ("color", "sam2.1-tiny", "sam2.1-small", "sam2.1-base-plus", "sam2.1-large")


def _positive(kind, what: str):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got '{text}'") from e
        if not math.isfinite(v) or v <= 0:
            raise argparse.ArgumentTypeError(f"{what} must be a finite number > 0, got '{text}'")
        return v
    return parse


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("data", help="build, verify and extract Segmented Music Solos / URMP",
                       description="Rebuild the SMS training set and the URMP test set from metadata and raw "
                                   "source folders (see docs/data.md).")
    dsub = p.add_subparsers(dest="data_command", metavar="{ingest,masks,verify,focal,extract,stats}")

    q = dsub.add_parser("ingest", help="cut clips (video + audio; URMP stems) from the raw sources")
    q.add_argument("kind", choices=("sms", "urmp", "folder"),
                   help="sms / urmp (metadata + raw folders) or folder (your own clips, labelled by sub-folder)")
    q.add_argument("metadata", help="SMS metadata.csv, URMP metadata.tsv, or (folder) the folder of your videos")
    q.add_argument("-o", "--output", required=True, help="dataset root to fill")
    q.add_argument("--music21", help="raw MUSIC21 folder (searched recursively for {YTID}.mp4)")
    q.add_argument("--solos", help="raw Solos folder")
    q.add_argument("--avsbench", help="raw AVSBench-semantic folder")
    q.add_argument("--urmp", help="raw URMP folder (pieces with Vid_*.mp4 and AuSep_*.wav)")
    q.add_argument("--workers", type=_positive(int, "--workers"), default=2, help="worker processes (default 2)")
    q.add_argument("--fps", type=_positive(float, "--fps"), default=None, help="output frame rate (default: source)")
    q.add_argument("--max-side", type=_positive(int, "--max-side"), default=None,
                   help="downscale frames larger than this (default: keep)")
    q.add_argument("--crf", type=int, default=18, help="h264 quality (default 18)")
    q.add_argument("--limit", type=_positive(int, "--limit"), default=None, help="only the first N clips")
    q.add_argument("--val-fraction", type=float, default=0.1, help="folder: share of clips in the val split")

    m = dsub.add_parser("masks", help="mask of the sounding instrument per clip (grounding + propagation)")
    m.add_argument("root")
    m.add_argument("--segmenter", default="sam2.1-tiny", choices=SEGMENTERS,
                   help="sam2.1-* (+ Grounding DINO) for real clips; color for the toy world (no download)")
    m.add_argument("--palette", action="append", default=[], metavar="NAME=R,G,B",
                   help="colour of a label for --segmenter color (default: the toy world's classes)")
    m.add_argument("--key-frames", type=_positive(int, "--key-frames"), default=3)
    m.add_argument("--min-score", type=float, default=0.3, help="grounding matches below are ignored")
    m.add_argument("--device", default=None)
    m.add_argument("--overwrite", action="store_true", help="replace existing masks")

    v = dsub.add_parser("verify", help="automatic checks -> verify.csv; --review opens the review page")
    v.add_argument("root")
    v.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a threshold")
    v.add_argument("--review", action="store_true", help="open the human review page (Gradio) afterwards")
    v.add_argument("--segmenter", default="sam2.1-tiny", choices=SEGMENTERS, help="for re-clicks in the review")
    v.add_argument("--palette", action="append", default=[], metavar="NAME=R,G,B")
    v.add_argument("--host", default="127.0.0.1")
    v.add_argument("--port", type=int, default=7861)

    f = dsub.add_parser("focal", help="focal prompt (detail video + detail mask) per clip")
    f.add_argument("root")
    f.add_argument("--mode", default="reference", choices=("reference", "default", "tracking"),
                   help="crop rule (reference: what the released weights saw)")
    f.add_argument("--size", type=_positive(int, "--size"), default=224)
    f.add_argument("--min-size", type=_positive(int, "--min-size"), default=56)
    f.add_argument("--overwrite", action="store_true")

    e = dsub.add_parser("extract", help="VAE latents, CLIP frame and text features -> sharded safetensors")
    e.add_argument("root")
    e.add_argument("-o", "--output", required=True, help="features folder ({output}/{split}/...)")
    e.add_argument("--variant", default="saganet_small", help="model whose encoders to use (tiny for tests)")
    e.add_argument("--split", action="append", default=None, help="only these splits (repeatable)")
    e.add_argument("--duration", type=_positive(float, "--duration"), default=None,
                   help="seconds per item (default: the model's, 8 s for the released 44k model)")
    e.add_argument("--shard-size", type=_positive(int, "--shard-size"), default=64)
    e.add_argument("--device", default="cpu")
    e.add_argument("--all", action="store_true", help="include clips that verify rejected")

    s = dsub.add_parser("stats", help="clips per class and split, durations, rejection reasons")
    s.add_argument("root")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")

    for sp in (q, m, v, f, e, s):
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p


def parse_palette(items: list[str]) -> dict[str, tuple[int, int, int]]:
    """Toy-world class colours plus `NAME=R,G,B` overrides."""
    from saganet.toyworld.world import CLASSES

    pal = {c.name: tuple(c.colour) for c in CLASSES}
    for it in items:
        name, sep, rgb = it.partition("=")
        try:
            vals = tuple(int(x) for x in rgb.split(","))
        except ValueError:
            vals = ()
        if not sep or not name.strip() or len(vals) != 3 or not all(0 <= x <= 255 for x in vals):
            raise InputError(f"bad --palette '{it}': use NAME=R,G,B with 0-255 values, e.g. violin=200,120,40")
        pal[name.strip().lower()] = vals  # type: ignore[assignment]
    return pal  # type: ignore[return-value]


def _root(path: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise InputError(f"dataset root not found: {p}: run `saganet data ingest` first or check the path")
    if not (p / "clips.csv").is_file():
        raise InputError(f"{p} has no clips.csv: it is not an ingested dataset root (run `saganet data ingest`)")
    return p


def run(args: argparse.Namespace) -> int:
    cmd = getattr(args, "data_command", None)
    if cmd is None:
        raise InputError("give a data subcommand: ingest, masks, verify, focal, extract or stats")
    return {"ingest": _ingest, "masks": _masks, "verify": _verify, "focal": _focal, "extract": _extract,
            "stats": _stats}[cmd](args)


def _ingest(args) -> int:
    from saganet.data.cut import CutOptions
    from saganet.data.ingest import ingest

    if not 0 <= args.crf <= 51:
        raise InputError(f"bad --crf {args.crf}: use 0-51")
    sources = {"music21": args.music21, "solos": args.solos, "avs-semantic": args.avsbench, "urmp": args.urmp}
    if args.kind == "sms" and not any(sources[k] for k in ("music21", "solos", "avs-semantic")):
        raise InputError("give at least one raw folder: --music21, --solos or --avsbench")
    if args.kind == "urmp" and not args.urmp:
        raise InputError("give the raw URMP folder with --urmp")
    if args.kind == "folder" and not 0 <= args.val_fraction < 1:
        raise InputError(f"bad --val-fraction {args.val_fraction}: use a number in [0, 1)")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} exists and is not a folder")
    srcs = {k: Path(v) if v else None for k, v in sources.items()}
    rep = ingest(args.kind, args.metadata, out, srcs, workers=args.workers,
                 opts=CutOptions(fps=args.fps, max_side=args.max_side, crf=args.crf), limit=args.limit,
                 quiet=args.quiet, val_fraction=args.val_fraction)
    print(f"ingest {args.kind}: {rep.summary()}")
    if rep.missing:
        print(f"missing sources ({len(rep.missing)}):")
        for line in rep.missing:
            print(f"  {line}")
    for cid, reason in rep.failed.items():
        if not reason.startswith("missing source"):
            print(f"failed {cid}: {reason}")
    return 0


def _masks(args) -> int:
    from saganet.data.masks import MaskStrategy, make_masks

    if not 0 <= args.min_score <= 1:
        raise InputError(f"bad --min-score {args.min_score}: use a number in [0, 1]")
    root = _root(args.root)
    palette = parse_palette(args.palette) if args.segmenter == "color" else None
    res = make_masks(root, args.segmenter, palette=palette, device=args.device, overwrite=args.overwrite,
                     strategy=MaskStrategy(key_frames=args.key_frames, min_score=args.min_score), quiet=args.quiet)
    bad = {k: v for k, v in res.items() if v != "done"}
    print(f"masks: {len(res) - len(bad)} done, {len(bad)} failed")
    for k, v in bad.items():
        print(f"failed {k}: {v}")
    return 0


def _verify(args) -> int:
    from saganet.data.review import ReviewTable
    from saganet.data.verify import config_from_overrides, verify

    root = _root(args.root)
    table = verify(root, config_from_overrides(args.set), quiet=args.quiet)
    n_acc = sum(r["decision"] == "accept" for r in table.values())
    print(f"verify: {n_acc} accepted, {len(table) - n_acc} rejected -> {root / 'verify.csv'}")
    reasons = ReviewTable(root).reasons()
    if reasons:
        print("failed checks: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
    if args.review:
        from saganet.app.data_review import launch_review

        palette = parse_palette(args.palette) if args.segmenter == "color" else None
        launch_review(root, segmenter=args.segmenter, palette=palette, host=args.host, port=args.port)
    return 0


def _focal(args) -> int:
    from saganet.data.detail import FocalOptions, make_focal

    root = _root(args.root)
    if args.min_size > args.size:
        raise InputError(f"--min-size {args.min_size} is larger than --size {args.size}")
    res = make_focal(root, FocalOptions(args.mode, args.size, args.min_size), overwrite=args.overwrite,
                     quiet=args.quiet)
    bad = {k: v for k, v in res.items() if v != "done"}
    print(f"focal: {len(res) - len(bad)} done, {len(bad)} failed")
    for k, v in bad.items():
        print(f"failed {k}: {v}")
    return 0


def _extract(args) -> int:
    from saganet.data.extract import extract

    root = _root(args.root)
    res = extract(root, args.output, variant=args.variant, splits=args.split, duration=args.duration,
                  shard_size=args.shard_size, device=args.device, verified_only=not args.all, quiet=args.quiet)
    if res is not None:
        for split, idx in res.items():
            print(f"extract {split}: {idx['count']} items -> {Path(args.output) / split / 'index.json'}"
                  + (f" ({len(idx['failed'])} failed)" if idx.get("failed") else ""))
    return 0


def _stats(args) -> int:
    from saganet.data.stats import dataset_stats, format_stats

    s = dataset_stats(_root(args.root))
    print(json.dumps(s, indent=1) if args.json else format_stats(s))
    return 0
