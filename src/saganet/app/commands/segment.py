"""`saganet segment VIDEO -o masks/ [prompts]`: one mask per object over the whole clip.

    saganet segment clip.mp4 -o masks/ --object violin --point 320,200 --object cello --box 10,40,200,380@2.5
    saganet segment clip.mp4 -o masks/ --text "violin" --max-objects 2
    saganet segment toy.mp4 -o masks/ --segmenter color --point 40,52 --text drum

Prompts keep their command-line order: `--object NAME` starts a new object and the prompts after it belong to
it. Writes per object `<name>_mask.mp4` and `<name>_rle.json` (both readable by `--mask`), `preview.mp4` and
`masks.json`; nothing is overwritten without `--overwrite`.
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

SEGMENTER_CHOICES = ("color", "sam2.1-tiny", "sam2.1-small", "sam2.1-base-plus", "sam2.1-large")


class _PromptAction(argparse.Action):
    """Collects every prompt option into one ordered list `args.prompts` of (kind, value)."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, "prompts", None) or [])
        items.append((self.const, values))
        namespace.prompts = items


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "segment", help="masks of clicked / boxed / named objects over a whole video",
        description="Segment objects from clicks, boxes or words on any frame, propagated through the clip. "
                    "Coordinates are pixels of the displayed video (after rotation), times in seconds.")
    p.add_argument("video", help="input video (any format PyAV reads)")
    p.add_argument("-o", "--output", required=True, help="output folder for the masks")
    g = p.add_argument_group("prompts (in order; --object starts a new object)")
    for flag, kind, metavar, text in (
        ("--object", "object", "NAME", "start a new object called NAME"),
        ("--point", "point", "X,Y[@T]", "positive click at pixel X,Y at T seconds (default 0)"),
        ("--neg-point", "neg_point", "X,Y[@T]", "negative click (not this)"),
        ("--box", "box", "X0,Y0,X1,Y1[@T]", "box around the object"),
        ("--text", "text", "WORDS[@T]", "name the object: grounded detection, one object per match"),
    ):
        g.add_argument(flag, action=_PromptAction, const=kind, dest="prompts", metavar=metavar, help=text)
    p.add_argument("--segmenter", default="sam2.1-tiny", metavar="NAME",
                   help=f"one of {', '.join(SEGMENTER_CHOICES)} (default sam2.1-tiny; 'color' for flat-coloured "
                        "scenes such as the toy world, no download)")
    p.add_argument("--max-objects", type=int, default=5, help="at most this many objects per --text (default 5)")
    p.add_argument("--min-score", type=float, default=0.3, help="drop text matches scoring below (default 0.3)")
    p.add_argument("--propagate-fps", type=float, default=None,
                   help="segment only this many frames per second and interpolate the rest (faster, less exact)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--offline", action="store_true", help="never download model weights")
    p.add_argument("--model-dir", action="append", default=[], metavar="MODEL=PATH",
                   help="read a model from a plain local folder, e.g. sam2.1-tiny=~/sam2.1-hiera-tiny")
    p.add_argument("--no-preview", action="store_true", help="do not write preview.mp4")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run, prompts=None)
    return p


def toy_palette() -> dict[str, tuple[int, int, int]]:
    """Class name -> colour of the toy world, for text prompts with the colour segmenter."""
    from saganet.toyworld.world import CLASSES

    return {c.name: c.colour for c in CLASSES}


def run(args) -> int:
    from saganet.errors import InputError
    from saganet.segment import check_outputs, parse_prompt_args, segment_video, write_segmentation

    if args.segmenter.strip().lower() not in (*SEGMENTER_CHOICES, "colour"):
        raise InputError(f"unknown segmenter '{args.segmenter}': choose one of {', '.join(SEGMENTER_CHOICES)}")
    if not args.prompts:
        raise InputError("no prompts: give at least one --point X,Y, --box X0,Y0,X1,Y1 or --text WORDS")
    model_dirs = {}
    for item in args.model_dir:
        key, sep, path = str(item).partition("=")
        if not sep or not key.strip() or not path.strip():
            raise InputError(f"--model-dir '{item}' must look like MODEL=PATH, e.g. sam2.1-tiny=~/sam2.1-hiera-tiny")
        model_dirs[key.strip()] = path.strip()
    objects = parse_prompt_args(args.prompts)
    known = [o.name for o in objects if o.text is None]
    check_outputs(args.output, known, overwrite=args.overwrite, preview=not args.no_preview)
    res = segment_video(args.video, objects, args.segmenter, palette=toy_palette(),
                        max_objects=args.max_objects, min_score=args.min_score, propagate_fps=args.propagate_fps,
                        device=args.device, offline=True if args.offline else None, model_dirs=model_dirs or None)
    paths = write_segmentation(res, args.output, overwrite=args.overwrite, preview=not args.no_preview)
    n = len(res.times)
    for o in res.objects:
        present = int((o.areas > 0).sum())
        print(f"{o.name}: mask on {present}/{n} frames, mean area {o.areas.mean():.0f} px -> "
              f"{paths[o.name + ':mask'].name}, {paths[o.name + ':rle'].name}")
    t = res.timings
    print(f"segmented {n} frames with {res.segmenter} in {t.get('segment', 0):.1f} s "
          f"({t.get('segment', 0) / max(n, 1):.3f} s/frame); wrote {paths['meta']}")
    return 0
