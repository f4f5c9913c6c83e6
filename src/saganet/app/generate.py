"""The "generate" use case: one typed request, checked in one place, run by the CLI, batch jobs and the web UI.

    req = GenerateRequest(video="clip.mp4", masks=[MaskSpec("violin.mp4", name="violin")], output="out")
    paths = run_request(req, ModelCache())

    # objects from clicks / boxes / words instead of mask files (segmented first, then generated)
    req = GenerateRequest(video="clip.mp4", output="out", variant="toy", segmenter="color",
                          segment_prompts=[("point", "40,52"), ("object", "drum"), ("text", "drum")])

Every number, name and choice is validated by `GenerateRequest.validate()`, and every input file is read
(video header, mask files, segmentation prompts) before any generator model is loaded, so a command line, a
batch line and a web form fail early with the same one-line message. Outputs are committed as a unit (see
`saganet.app.outputs`): a run killed at any point leaves no half-written file and is redone by the next run.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from saganet import __version__
from saganet.errors import InputError
from saganet.feature_cache import FeatureCache
from saganet.io.masks import MaskSpec, ObjectMask, parse_select
from saganet.pipeline import GenerationOptions, SAGANetPipeline

log = logging.getLogger(__name__)

FORMATS = ("flac", "wav")
DTYPES = ("fp32", "bf16")
DEVICES = "cpu, cuda, cuda:N or mps"
MAX_GAIN_DB = 60.0


def check_device(device: str) -> str:
    """`device` if this machine has it (checked against torch.cuda / torch.backends.mps), else InputError."""
    import torch

    if not isinstance(device, str) or not device.strip():
        raise InputError(f"device must be one of {DEVICES}, got {device!r}")
    try:
        d = torch.device(device.strip())
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"unknown device '{device}': use {DEVICES}") from None
    if d.type == "cpu":
        return device
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"device '{device}' is not available: this machine has no usable CUDA GPU "
                             "(torch.cuda.is_available() is False); use --device cpu")
        n = torch.cuda.device_count()
        if d.index is not None and d.index >= n:
            raise InputError(f"device '{device}' does not exist: this machine has {n} CUDA GPU(s), "
                             f"cuda:0 to cuda:{n - 1}")
        return device
    if d.type == "mps":
        if not torch.backends.mps.is_available():
            raise InputError(f"device '{device}' is not available: this machine has no Apple GPU (MPS); "
                             "use --device cpu")
        return device
    raise InputError(f"unsupported device '{device}': use {DEVICES}")


def mask_specs(paths: list, selects: list[str] | None = None, names: list[str] | None = None) -> list[MaskSpec]:
    """`MaskSpec`s from parallel lists of paths, selectors ('-' or '' for none) and names (both may be shorter)."""
    selects, names = list(selects or []), list(names or [])
    if len(selects) > len(paths) or len(names) > len(paths):
        raise InputError(f"{len(selects)} --select / {len(names)} --name values for {len(paths)} --mask values: "
                         "give at most one of each per mask, in order")
    for what, items in (("mask path", paths), ("--select", selects), ("--name", names)):
        bad = [v for v in items if not isinstance(v, (str, os.PathLike))]
        if bad:
            raise InputError(f"every {what} must be text, got {bad[0]!r}")
    specs = []
    for i, p in enumerate(paths):
        if not str(p).strip():
            raise InputError(f"mask {i + 1} has an empty path: give a mask file or folder")
        sel = selects[i] if i < len(selects) and str(selects[i]).strip() not in ("-", "") else None
        name = names[i] if i < len(names) and str(names[i]).strip() else None
        specs.append(MaskSpec(Path(p), select=parse_select(sel), name=name))
    return specs


def default_segmenter(variant: str) -> str:
    """The colour segmenter for the toy world's variants (flat colours, no download), else SAM 2's CPU default."""
    from saganet.registry import get_variant
    from saganet.segment import DEFAULT_LEARNED

    return "color" if get_variant(variant).source == "toy" else DEFAULT_LEARNED


def _number(value, what: str, low: float | None = None, high: float | None = None, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool) and (integer or math.isfinite(value))
    ok = ok and (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        kind = "an integer" if integer else "a finite number"
        if high is None:
            rng = f">= {low:g}" if low is not None else ""
        else:
            rng = f"in [{'-inf' if low is None else f'{low:g}'}, {high:g}]"
        raise InputError(f"{what} must be {kind} {rng}, got {value!r}")


@dataclass
class GenerateRequest:
    """One generation job: inputs, model choice, generation options and what to write where.

    Objects come from mask files (`masks`) and/or from segmentation prompts (`segment_prompts`: ordered
    (kind, value) pairs as on the command line, kind in object, point, neg_point, box, text; segmented with
    `segmenter`, default `default_segmenter(variant)`).
    """

    video: str | Path
    output: str | Path
    masks: list[MaskSpec] = field(default_factory=list)
    variant: str = "saganet_small"
    weights: str | None = None  # a fine-tuned / exported checkpoint used in place of the variant's own
    model_dirs: dict[str, str] = field(default_factory=dict)  # model key -> plain local folder (clip=..., ...)
    options: GenerationOptions = field(default_factory=GenerationOptions)
    start: float = 0.0
    duration: float | None = None
    allow_longer: bool = False
    center_crop: bool = False
    pad_masks: bool = False
    strict_masks: bool = False
    strict: bool = False  # warnings about the inputs (truncated video, empty mask) are errors
    overlay_masks: bool = False
    write_video: bool = True
    format: str = "flac"
    gains_db: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"
    dtype: str = "fp32"
    overwrite: bool = False
    quiet: bool = False
    segment_prompts: list[tuple[str, str]] = field(default_factory=list)
    segmenter: str | None = None
    # speed and memory (issue 12): feature cache folder, networks loaded per stage, opt-in faster encoders
    cache_dir: str | None = None
    low_memory: bool = False
    compile: bool = False
    quantize: bool = False

    def validate_settings(self) -> None:
        """Check the settings that do not depend on the inputs: variant, options, times, format, device, gains.
        (A batch checks its command line's settings once with this; each job then runs `validate`.)"""
        from saganet.registry import canonical

        if not isinstance(self.variant, str):
            raise InputError(f"variant must be a name, got {self.variant!r}")
        canonical(self.variant)
        if not isinstance(self.options, GenerationOptions):
            raise InputError("options must be GenerationOptions")
        self.options.validate()
        _number(self.start, "start (seconds)", low=0.0)
        if self.duration is not None:
            d = self.duration
            if isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or d <= 0:
                raise InputError(f"duration (seconds) must be a finite number > 0, got {d!r}")
        if self.format not in FORMATS:
            raise InputError(f"unknown audio format '{self.format}': choose {' or '.join(FORMATS)}")
        if self.dtype not in DTYPES:
            raise InputError(f"unknown dtype '{self.dtype}': choose {' or '.join(DTYPES)}")
        check_device(self.device)
        check_precision(self.device, self.dtype)
        if self.quantize and self.device.strip() != "cpu":
            raise InputError("--quantize (int8 dynamic quantisation) runs on the CPU only: drop it or use --device cpu")
        if self.cache_dir is not None and (not isinstance(self.cache_dir, (str, os.PathLike))
                                           or Path(self.cache_dir).is_file()):
            raise InputError(f"--cache-dir {self.cache_dir!r} must be a folder path")
        if not isinstance(self.gains_db, dict):
            raise InputError("gains must map object names to dB")
        for name, db in self.gains_db.items():
            _number(db, f"gain of '{name}' (dB)", low=-MAX_GAIN_DB, high=MAX_GAIN_DB)
        if self.segment_prompts or self.segmenter is not None:
            self.resolved_segmenter()

    def validate(self) -> None:
        """Check everything that can be checked without decoding media or loading a model."""
        from saganet.app.outputs import check_output_target, check_stem_names
        from saganet.registry import is_segaware

        self.validate_settings()
        if not isinstance(self.video, (str, os.PathLike)) or not str(self.video).strip():
            raise InputError("no video given: pass a VIDEO path")
        if not isinstance(self.output, (str, os.PathLike)):
            raise InputError(f"output must be a folder path, got {self.output!r}")
        check_output_target(self.output)
        if not all(isinstance(m, MaskSpec) for m in self.masks):
            raise InputError("masks must be MaskSpec entries (a path, a selector, a name)")
        objects = self.segment_objects_prompts()
        if is_segaware(self.variant) and not self.masks and not objects:
            raise InputError("give at least one object mask (--mask FILE) or prompts to segment one (--point X,Y, "
                             "--box X0,Y0,X1,Y1 or --text WORDS): this variant is segmentation-aware")
        names = self.object_names()
        check_stem_names(names)
        if not any(o.text is not None for o in objects):
            # every object name is known now (a text prompt may give several objects: checked after segmenting)
            self.check_object_names(names if is_segaware(self.variant) else ["audio"])

    # -- objects ------------------------------------------------------------------------------
    def segment_objects_prompts(self) -> list:
        """The segmentation prompts parsed into `saganet.segment.ObjectPrompt`s (InputError if malformed)."""
        if not self.segment_prompts:
            return []
        from saganet.segment import parse_prompt_args

        pairs = list(self.segment_prompts)
        if not all(isinstance(p, (tuple, list)) and len(p) == 2 and all(isinstance(v, str) for v in p)
                   for p in pairs):
            raise InputError("segmentation prompts must be (kind, value) text pairs, e.g. ('point', '40,52')")
        return parse_prompt_args([tuple(p) for p in pairs])

    def resolved_segmenter(self) -> str:
        from saganet.segment import SEGMENTERS

        name = default_segmenter(self.variant) if self.segmenter is None else self.segmenter
        key = str(name).strip().lower().replace("colour", "color")
        if key not in SEGMENTERS:
            raise InputError(f"unknown segmenter '{name}': choose one of {', '.join(SEGMENTERS)}")
        return key

    def object_names(self) -> list[str]:
        """Names of the objects as far as known before segmenting (masks, then prompted objects)."""
        return [s.display_name for s in self.masks] + [o.name for o in self.segment_objects_prompts()]

    def check_object_names(self, names: list[str]) -> None:
        """Every --gain / --object-prompt must name an object of the run."""
        for what, keys in (("--gain", self.gains_db), ("--object-prompt", self.options.prompts),
                           ("negative prompt", self.options.negative_prompts)):
            unknown = [k for k in keys if k not in names]
            if unknown:
                raise InputError(f"{what} names '{unknown[0]}' but the objects are {', '.join(names) or 'none'}: "
                                 "use one of those names")

    def run_info(self, variant: str) -> dict:
        """What `run.json` records about the request."""
        info = {"saganet_version": __version__, "video": str(self.video), "masks": [str(s.source) for s in self.masks],
                "variant": variant, "options": self.options.to_dict(), "start": self.start,
                "duration": self.duration, "device": self.device, "dtype": self.dtype}
        if self.segment_prompts:
            info["segmentation"] = {"segmenter": self.resolved_segmenter(),
                                    "prompts": [list(p) for p in self.segment_prompts]}
        return info


def request_fields() -> list[str]:
    return [f.name for f in fields(GenerateRequest)]


class ModelCache:
    """Pipelines kept loaded across requests of one process (batch runs, the web UI), sharing one feature cache
    per cache folder, so a second object on a clip reuses its decoded frames and CLIP/text features."""

    def __init__(self) -> None:
        self._pipes: dict[tuple, SAGANetPipeline] = {}
        self._features: dict[str | None, FeatureCache] = {}

    def get(self, variant: str, device: str, dtype: str, weights: str | None = None,
            model_dirs: dict[str, str] | None = None, cache_dir: str | None = None, low_memory: bool = False,
            compile: bool = False, quantize: bool = False) -> SAGANetPipeline:
        import torch

        from saganet.acceleration import compile_networks, quantize_encoders

        key = (variant, device, dtype, weights, tuple(sorted((model_dirs or {}).items())), low_memory, compile,
               quantize)
        if key not in self._pipes:
            t0 = time.perf_counter()
            torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
            folder = str(cache_dir) if cache_dir else None
            if folder not in self._features:
                self._features[folder] = FeatureCache(folder)
            pipe = SAGANetPipeline.from_variant(variant, device=device, dtype=torch_dtype, weights=weights,
                                                model_dirs=model_dirs, cache=self._features[folder],
                                                low_memory=low_memory)
            if quantize:
                quantize_encoders(pipe.model)
            if compile:
                compile_networks(pipe.model)
            self._pipes[key] = pipe
            log.info("loaded variant %s in %.1f s", variant, time.perf_counter() - t0)
        return self._pipes[key]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated, ~40x slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_precision(device: str, dtype: str) -> None:
    """bf16 on a CPU only where the CPU has it natively; on CUDA bf16 is what the reference demo uses."""
    if dtype == "bf16" and str(device).strip().startswith("cpu") and not cpu_has_native_bf16():
        raise InputError("--dtype bf16 on this CPU is emulated (no AVX512-BF16 / AMX): about 40x slower than "
                         "fp32; use --dtype fp32")


def _segment(req: GenerateRequest, objects: list):
    """Segment the prompted objects over the whole video file (`SegmentationResult`)."""
    from saganet.app.commands.segment import toy_palette
    from saganet.segment import segment_video

    name = req.resolved_segmenter()
    return segment_video(req.video, objects, name, palette=toy_palette(),
                         device=None if name == "color" else req.device)


def segment_objects(video, prompts, decoded, segmenter: str = "color", device: str | None = None,
                    pad: bool = False, strict: bool = False) -> list[ObjectMask]:
    """Objects from clicks / boxes / words: `prompts` ((kind, value) pairs or `ObjectPrompt`s) segmented over
    the file `video` and aligned to `decoded` (the same video decoded by `SAGANetPipeline.load_video`), giving
    the same `ObjectMask`s that mask files give."""
    from saganet.app.commands.segment import toy_palette
    from saganet.segment import segment_video, to_object_masks

    res = segment_video(video, prompts, segmenter, palette=toy_palette(), device=device)
    return to_object_masks(res, decoded, pad=pad, strict=strict)


def preflight(req: GenerateRequest):
    """Validate `req` and look at its input files without reading them whole: the video's header (a video,
    not a still image; long enough after `start`) and that every mask exists. Returns the `VideoInfo`.
    A batch runs this for every job before the first one loads a model."""
    from saganet.io.video import probe_video
    from saganet.pipeline import MIN_DURATION

    req.validate()
    info = probe_video(req.video)
    name = Path(req.video).name
    if req.start >= info.duration > 0:
        raise InputError(f"start {req.start:g} s is at or after the end of {name} "
                         f"({info.duration:.2f} s): use a start time in [0, {info.duration:.2f})")
    usable = min(info.duration - req.start if info.duration > 0 else math.inf, req.duration or math.inf)
    if usable < MIN_DURATION - 1e-6:
        raise InputError(f"{name} is too short: {usable:.2f} s from {req.start:g} s, need at least "
                         f"{MIN_DURATION:.2f} s (16 frames at 25 fps); use a longer clip, a longer --duration or "
                         "an earlier --start")
    for spec in req.masks:
        if not spec.source.exists():
            raise InputError(f"mask not found: {spec.source}: check the path")
    return info


def run_request(req: GenerateRequest, models: ModelCache) -> dict[str, Path]:
    """Read every input, load the model, generate and commit the outputs of one request.

    Order: validate the request (`preflight`); read every mask file; segment prompted objects; check the output
    folder (clearing what a killed earlier run left); only then load the model, decode, generate, and commit
    all outputs with `run.json` last.
    """
    from saganet.app.outputs import check_output_dir, check_stem_names, output_paths, write_outputs
    from saganet.io.masks import align_masks, read_mask
    from saganet.io.video import truncation_policy
    from saganet.registry import is_segaware

    # 1. the request, then the inputs' headers and files, before any model is loaded
    info = preflight(req)
    segaware = is_segaware(req.variant)
    if not segaware and (req.masks or req.segment_prompts):
        log.warning("variant %s has no segmentation-aware encoder: objects are ignored, one stem is made",
                    req.variant)
    raws = [read_mask(s, fps=info.fps or None) for s in req.masks] if segaware else []
    objects = req.segment_objects_prompts() if segaware else []
    out = Path(req.output)
    inputs = [Path(req.video), *[Path(s.source) for s in req.masks]]

    def plan(names: list[str]) -> list[Path]:
        return list(output_paths(out, Path(req.video), names or ["audio"], req.format).values())

    check_output_dir(out, plan(req.object_names() if segaware else []), inputs, req.overwrite)
    seg = _segment(req, objects) if objects else None
    names = [r.name for r in raws] + (seg.names if seg is not None else [])
    if seg is not None:  # text prompts name their objects only now
        check_stem_names(names)
        req.check_object_names(names)
        check_output_dir(out, plan(names), inputs, req.overwrite)

    # 2. the model (cached), then the inputs decoded at its frame sizes
    pipe = models.get(req.variant, req.device, req.dtype, req.weights, req.model_dirs, cache_dir=req.cache_dir,
                      low_memory=req.low_memory, compile=req.compile, quantize=req.quantize)
    with truncation_policy("error" if req.strict else "warn"):
        decoded = pipe.load_video(req.video, start=req.start, duration=req.duration,
                                  geometry="center_crop" if req.center_crop else "squash",
                                  allow_longer=req.allow_longer, quiet=req.quiet)
    if req.strict and decoded.truncated:  # decoded earlier in this process without --strict (pipeline cache)
        raise InputError(f"{Path(req.video).name} is truncated or damaged: its frames end at "
                         f"{decoded.start + decoded.duration:.2f} s but the container says {info.duration:.2f} s; "
                         "re-encode or re-download it, or drop --strict")
    strict_masks = req.strict_masks or req.strict
    objs: list[ObjectMask] = align_masks(raws, list(req.masks), decoded, pad=req.pad_masks, strict=strict_masks,
                                         keep_raw=req.overlay_masks)
    if seg is not None:
        from saganet.segment import to_object_masks

        objs += to_object_masks(seg, decoded, pad=req.pad_masks, strict=strict_masks)

    # 3. generate and commit (all outputs, then run.json)
    options = replace(req.options, progress=not req.quiet and req.options.progress)
    result = pipe.generate(decoded, objs, options)
    return write_outputs(result, req.video, out, fmt=req.format,
                         gains_db=[float(req.gains_db.get(n, 0.0)) for n in result.names], masks=objs,
                         overlay_masks=req.overlay_masks, write_video=req.write_video,
                         run_info=req.run_info(pipe.variant), start=req.start, overwrite=req.overwrite,
                         inputs=inputs)
