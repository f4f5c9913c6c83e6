"""The `saganet` command line: generate (single or batch), weights, demo, ui, toyworld, and the feature
commands of `saganet.app.commands` (each module registers its own subcommand)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from saganet import __version__
from saganet.errors import InputError, SaganetError

log = logging.getLogger("saganet")

# Generation presets: sampler and steps. "fast" met the rule of issue 12 on the toy world (docs/speed.md):
# within 2 % of Euler 25 on log-mel distance and class accuracy, on both test kinds.
PRESETS = {"fast": {"sampler": "midpoint", "steps": 5}}


# ------------------------------------------------------------------------------------------------ generate
class _SegmentPromptAction(argparse.Action):
    """Collects --object/--point/--neg-point/--box/--text, in command-line order, into `args.segment_prompts`."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, "segment_prompts", None) or [])
        items.append((self.const, values))
        namespace.segment_prompts = items


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="generate one stem per object (masks, or clicks/boxes/words) of a video",
                       description="saganet generate VIDEO --mask M1 [--mask M2 ...] -o OUT; or objects from "
                                   "prompts: saganet generate VIDEO --point X,Y [--object NAME --box ...] -o OUT; "
                                   "or --batch jobs.jsonl")
    p.add_argument("video", nargs="?", help="input video (anything PyAV decodes)")
    p.add_argument("--mask", action="append", default=[], metavar="PATH",
                   help="object mask: mask video, PNG folder, COCO RLE .json, or instance-id video (repeat per object)")
    p.add_argument("--select", action="append", default=[], metavar="ID|R,G,B",
                   help="object id / colour in the matching --mask (multi-object sources); '-' for none")
    p.add_argument("--name", action="append", default=[], help="name of the matching --mask's object")
    g = p.add_argument_group("objects from prompts, segmented first (in place of, or beside, --mask)",
                             "Pixels of the displayed video, T in seconds (default 0); --object NAME starts a new "
                             "object and the prompts after it belong to it; unnamed objects are called after "
                             "their text or object1, object2, ...")
    for flag, kind, metavar, text in (
        ("--object", "object", "NAME", "start a new object called NAME"),
        ("--point", "point", "X,Y[@T]", "positive click on the object"),
        ("--neg-point", "neg_point", "X,Y[@T]", "negative click (not this)"),
        ("--box", "box", "X0,Y0,X1,Y1[@T]", "box around the object"),
        ("--text", "text", "WORDS[@T]", "name the object: grounded detection, one object per match"),
    ):
        g.add_argument(flag, action=_SegmentPromptAction, const=kind, dest="segment_prompts", metavar=metavar,
                       help=text)
    g.add_argument("--segmenter", default=None, metavar="NAME",
                   help="color, sam2.1-tiny, sam2.1-small, sam2.1-base-plus or sam2.1-large (default: color for "
                        "the toy variants, sam2.1-tiny otherwise)")
    p.add_argument("--batch", metavar="JOBS", help="JSONL or CSV jobs file (resumable); -o is the batch folder")
    p.add_argument("-o", "--output", default="saganet_out", help="output folder")
    p.add_argument("--variant", default="saganet_small", help="model variant (see `saganet weights list`)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="fine-tuned or exported checkpoint to use in place of the variant's own weights")
    p.add_argument("--model-dir", action="append", default=[], metavar="MODEL=PATH",
                   help="read a model from a plain local folder, e.g. clip=~/DFN5B-CLIP, bigvgan_v2=~/bigvgan")
    p.add_argument("--prompt", default="", help="text prompt (all objects)")
    p.add_argument("--negative-prompt", default="", help="negative text prompt")
    p.add_argument("--object-prompt", action="append", default=[], metavar="NAME=TEXT", help="prompt for one object")
    p.add_argument("--gain", action="append", default=[], metavar="NAME=DB", help="mix gain of one object in dB")
    p.add_argument("--cfg", type=_float_arg, default=4.5, dest="cfg_strength",
                   help="classifier-free guidance strength")
    p.add_argument("--steps", type=_int_arg, default=25, help="sampler steps")
    p.add_argument("--sampler", default="euler", help="euler, heun or midpoint")
    p.add_argument("--preset", choices=tuple(PRESETS), default=None,
                   help="fast: midpoint sampler, 5 steps (10 DiT calls instead of 25; within 2%% of Euler 25 on the "
                        "toy world's log-mel distance and class accuracy, docs/speed.md); overrides --steps/--sampler")
    p.add_argument("--seed", type=_int_arg, default=42, help="random seed (0 to 2^63 - 1)")
    p.add_argument("--start", type=_float_arg, default=0.0, help="start time in the video (s)")
    p.add_argument("--duration", type=_float_arg, default=None,
                   help="seconds (default: the video's, capped by the model)")
    p.add_argument("--allow-longer", action="store_true", help="do not cap the duration at the trained length")
    p.add_argument("--center-crop", action="store_true", help="sync frames/masks: centre crop instead of squash")
    p.add_argument("--pad-masks", action="store_true", help="accept masks shorter/longer than the video")
    p.add_argument("--strict-masks", action="store_true", help="an all-zero mask is an error (default: warning)")
    p.add_argument("--strict", action="store_true",
                   help="warnings about the inputs are errors: a truncated video, an all-zero mask")
    p.add_argument("--mask-away-clip", action="store_true", help="use the empty CLIP feature instead of frames")
    p.add_argument("--overlay-masks", action="store_true", help="outline each object in the output video")
    p.add_argument("--no-video", action="store_true", help="do not write the muxed mp4")
    p.add_argument("--format", choices=("flac", "wav"), default="flac")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: on CUDA, or on CPUs with native bf16 (AVX512-BF16/AMX); refused elsewhere")
    p.add_argument("--cache-dir", default=None, metavar="FOLDER",
                   help="keep CLIP features of processed videos here: later runs on the same video skip CLIP")
    p.add_argument("--low-memory", action="store_true",
                   help="load each network when its stage starts and free it after (peak = the largest stage)")
    p.add_argument("--compile", action="store_true", help="torch.compile CLIP, the sync encoder and the DiT "
                   "(first run compiles; outputs equal eager within 1e-4)")
    p.add_argument("--quantize", action="store_true",
                   help="int8 dynamic quantisation of the encoders' linear layers (CPU; see README 'Speed')")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in the folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_generate, segment_prompts=None)


def _float_arg(text: str) -> float | str:
    """A float if the text is one ('nan', 'inf' too), else the text itself: the request's validation names the
    flag, the allowed range and the bad value in one line, exactly as for a batch field."""
    try:
        return float(text)
    except ValueError:
        return text


def _int_arg(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for it in items:
        if "=" not in it:
            raise InputError(f"{what} '{it}' must look like NAME=VALUE")
        k, v = it.split("=", 1)
        if not k.strip():
            raise InputError(f"{what} '{it}' has no name before '=': use NAME=VALUE")
        if k in out:
            raise InputError(f"{what} is given twice for '{k}': give one per name")
        out[k] = v
    return out


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{what} must be a number of dB, got '{text}'") from None


def base_request(args):
    """The `GenerateRequest` of the parsed command line (a batch job replaces its inputs and outputs)."""
    from saganet.app.generate import GenerateRequest, mask_specs
    from saganet.pipeline import GenerationOptions

    opts = GenerationOptions(prompt=args.prompt, negative_prompt=args.negative_prompt,
                             prompts=_pairs(args.object_prompt, "--object-prompt"), cfg_strength=args.cfg_strength,
                             **PRESETS.get(args.preset, {"steps": args.steps, "sampler": args.sampler}), seed=args.seed,
                             mask_away_clip=args.mask_away_clip, progress=not args.quiet)
    gains = {k: _number(v, f"--gain {k}") for k, v in _pairs(args.gain, "--gain").items()}
    return GenerateRequest(video=args.video or "", output=args.output,
                           masks=mask_specs(args.mask, args.select, args.name), variant=args.variant,
                           weights=args.weights, model_dirs=_pairs(args.model_dir, "--model-dir"), options=opts,
                           start=args.start, duration=args.duration, allow_longer=args.allow_longer,
                           center_crop=args.center_crop, pad_masks=args.pad_masks, strict_masks=args.strict_masks,
                           strict=args.strict, overlay_masks=args.overlay_masks, write_video=not args.no_video,
                           format=args.format, gains_db=gains, device=args.device, dtype=args.dtype,
                           overwrite=args.overwrite, quiet=args.quiet,
                           segment_prompts=list(args.segment_prompts or []), segmenter=args.segmenter,
                           cache_dir=args.cache_dir, low_memory=args.low_memory, compile=args.compile,
                           quantize=args.quantize)


def cmd_generate(args) -> int:
    from saganet.app.generate import ModelCache, run_request

    models = ModelCache()
    if args.batch:
        return _cmd_batch(args, models)
    if not args.video:
        raise InputError("give a VIDEO (or --batch JOBS)")
    for p in run_request(base_request(args), models).values():
        print(p)
    return 0


def _cmd_batch(args, models) -> int:
    from saganet.app.batch import job_request, read_jobs, run_batch
    from saganet.app.generate import preflight, run_request

    per_job = [f for f, v in (("VIDEO", args.video), ("--mask", args.mask), ("--select", args.select),
                              ("--name", args.name), ("--point/--box/--text", args.segment_prompts)) if v]
    if per_job:
        raise InputError(f"{per_job[0]} is given per job in the jobs file, not with --batch: "
                         "put it in the job's line")
    from saganet.app.outputs import check_output_target

    base = base_request(args)
    base.validate_settings()  # the command line's own settings, once: a bad one fails the batch before any job
    check_output_target(args.output)
    jobs = read_jobs(args.batch, args.output)
    summary = run_batch(jobs, lambda job: run_request(job_request(base, job), models), args.output,
                        quiet=args.quiet, check=lambda job: preflight(job_request(base, job)))
    print(f"batch: {summary.line()}")
    for i, msg in summary.failed:
        print(f"  job {i}: {msg}")
    if summary.failed:
        i, msg = summary.failed[0]
        more = f" (and {len(summary.failed) - 1} more, listed above)" if len(summary.failed) > 1 else ""
        print(f"saganet: error: {len(summary.failed)} of {len(jobs)} jobs failed, see "
              f"{Path(args.output) / 'batch_failures.jsonl'}; job {i}: {msg}{more}", file=sys.stderr)
        return 2
    return 0


# ------------------------------------------------------------------------------------------------ demo / toyworld
def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="render a toy multi-object scene and generate each object's sound")
    p.add_argument("-o", "--output", default="saganet_demo")
    p.add_argument("--seed", type=int, default=0, help="which test scene to render (index into the test_diff split)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from saganet.app.demo import run_demo

    report = run_demo(args.output, seed=args.seed, overwrite=args.overwrite, quiet=args.quiet)
    print(report)
    return 0


def _add_ui(sub) -> None:
    p = sub.add_parser("ui", help="web UI (Gradio, `pip install saganet[web]`) on a local port")
    p.add_argument("-o", "--output", default="saganet_ui_out", help="folder for the runs")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--variant", default="toy", help="variant selected at start")
    p.add_argument("--segmenter", default=None,
                   help="segmenter selected at start (default: color for the toy variants, else sam2.1-tiny)")
    p.add_argument("--max-upload-mb", type=float, default=500, help="largest accepted upload in MB (default 500)")
    p.set_defaults(func=cmd_ui)


def cmd_ui(args) -> int:
    try:
        import gradio  # noqa: F401
    except ImportError as e:
        raise SaganetError("the web UI needs Gradio: pip install 'saganet[web]'") from e
    from saganet.app.webui import launch

    launch(args.output, host=args.host, port=args.port, variant=args.variant, max_upload_mb=args.max_upload_mb,
           segmenter=args.segmenter)
    return 0


def _add_toyworld(sub) -> None:
    p = sub.add_parser("toyworld", help="the synthetic segmented-solos world: write, train, evaluate")
    tsub = p.add_subparsers(dest="toy_command", required=True)
    w = tsub.add_parser("write", help="write a split to disk (mp4 video, mask videos, wav stems, metadata)")
    w.add_argument("split", choices=("train", "val", "test_diff", "test_same"))
    w.add_argument("-n", type=int, default=20)
    w.add_argument("-o", "--output", default="toyworld_data")
    w.add_argument("--seed", type=int, default=None)
    w.set_defaults(func=cmd_toy_write)
    t = tsub.add_parser("train", help="train SAGANet-tiny and the baseline (two processes, one core each)")
    t.add_argument("-o", "--output", default="toy_training")
    # None: the shipped recipe's values (toyworld.training.RECIPE_*; not imported here, it pulls in torch)
    t.add_argument("--minutes", type=float, default=None, help="wall-time budget per model (default: the shipped recipe's)")
    t.add_argument("--steps", type=int, default=None, help="default: the shipped recipe's")
    t.add_argument("--n-train", type=int, default=None, help="default: the shipped recipe's")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--sequential", action="store_true", help="one after the other instead of in parallel")
    t.add_argument("--clip-frames", action="store_true",
                   help="also condition on (fixed) full-frame CLIP-like features; default: the empty feature")
    t.set_defaults(func=cmd_toy_train)
    e = tsub.add_parser("evaluate", help="evaluate SAGANet-tiny vs the baseline on test scenes; writes a table")
    e.add_argument("-n", type=int, default=200, help="scenes per test kind")
    e.add_argument("-o", "--output", default="toy_eval")
    e.add_argument("--saganet", default=None, help="SAGANet-tiny checkpoint (default: the shipped one)")
    e.add_argument("--baseline", default=None, help="baseline checkpoint (default: the shipped one)")
    e.add_argument("--steps", type=int, default=25)
    e.add_argument("--cfg", type=float, default=4.5, dest="cfg_strength")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--workers", type=int, default=2, help="processes (one core each)")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_toy_evaluate)


def cmd_toy_write(args) -> int:
    from saganet.toyworld import write_split

    print(write_split(args.output, args.split, args.n, seed=args.seed))
    return 0


def cmd_toy_train(args) -> int:
    from saganet.toyworld.training import RECIPE_MINUTES, RECIPE_N_TRAIN, RECIPE_STEPS, train_both

    args.minutes = RECIPE_MINUTES if args.minutes is None else args.minutes
    args.steps = RECIPE_STEPS if args.steps is None else args.steps
    args.n_train = RECIPE_N_TRAIN if args.n_train is None else args.n_train
    command = (f"saganet toyworld train -o {args.output} --minutes {args.minutes:g} --steps {args.steps} "
               f"--n-train {args.n_train} --seed {args.seed}" + (" --sequential" if args.sequential else "")
               + (" --clip-frames" if args.clip_frames else ""))
    train_both(args.output, minutes=args.minutes, steps=args.steps, seed=args.seed, n_train=args.n_train,
               parallel=not args.sequential, command=command, use_clip_frames=args.clip_frames)
    print(f"checkpoints in {args.output}/saganet and {args.output}/baseline")
    return 0


def cmd_toy_evaluate(args) -> int:
    from saganet.toyworld.evaluate import evaluate_models

    table = evaluate_models(args.output, n=args.n, saganet_ckpt=args.saganet, baseline_ckpt=args.baseline,
                            steps=args.steps, cfg_strength=args.cfg_strength, seed=args.seed, quiet=args.quiet,
                            workers=args.workers)
    print(table)
    return 0


# ------------------------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="saganet", description="Segmentation-aware video-to-audio generation.")
    p.add_argument("--version", action="version", version=f"saganet {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for torch (default: torch's choice, usually one per core)")
    sub = p.add_subparsers(dest="command")
    _add_generate(sub)
    _add_demo(sub)
    _add_toyworld(sub)
    _add_ui(sub)
    for register in _feature_commands():
        register(sub)
    return p


def _feature_commands() -> list:
    """`register` functions of the feature command modules present in `saganet.app.commands`."""
    import importlib
    import pkgutil

    from saganet.app import commands

    out = []
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"saganet.app.commands.{mod.name}")
        if hasattr(module, "register"):
            out.append(module.register)
    return out


def set_threads(n: int) -> None:
    """`--threads N`: torch's intra-op threads for this process (the web UI and every command)."""
    if n < 1 or n > 1024:
        raise InputError(f"--threads must be between 1 and 1024, got {n}")
    import torch

    torch.set_num_threads(n)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = getattr(args, "quiet", False)
    logging.basicConfig(level=logging.DEBUG if args.verbose else (logging.WARNING if quiet else logging.INFO),
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        if args.threads is not None:
            set_threads(args.threads)
        return int(args.func(args) or 0)
    except SaganetError as e:
        print(f"saganet: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, permissions, vanished files: the environment, not a bug of ours
        where = f" ({e.filename})" if e.filename else ""
        print(f"saganet: error: {e.strerror or e}{where}: check the path and free space", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("saganet: interrupted", file=sys.stderr)
        return 130



if __name__ == "__main__":
    sys.exit(main())
