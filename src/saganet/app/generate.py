"""The "generate" use case: one typed request, checked in one place, run by the CLI, batch jobs and the web UI.

    req = GenerateRequest(video="clip.mp4", masks=[MaskSpec("violin.mp4", name="violin")], output="out")
    paths = run_request(req, ModelCache())

Every number and name is validated by `GenerateRequest.validate()` before any model is loaded, so a
command line, a batch line and a web form fail with the same one-line message.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from saganet import __version__
from saganet.errors import InputError
from saganet.io.masks import MaskSpec
from saganet.pipeline import GenerationOptions, SAGANetPipeline

log = logging.getLogger(__name__)

FORMATS = ("flac", "wav")
DTYPES = ("fp32", "bf16")


@dataclass
class GenerateRequest:
    """One generation job: inputs, model choice, generation options and what to write where."""

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
    overlay_masks: bool = False
    write_video: bool = True
    format: str = "flac"
    gains_db: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"
    dtype: str = "fp32"
    overwrite: bool = False
    quiet: bool = False

    def validate(self) -> None:
        """Check everything that can be checked without decoding media or loading a model."""
        from saganet.registry import canonical, is_segaware

        canonical(self.variant)
        self.options.validate()
        if not str(self.video):
            raise InputError("no video given: pass a VIDEO path")
        if not str(self.output).strip():
            raise InputError("output folder is empty: pass -o FOLDER")
        if not math.isfinite(self.start) or self.start < 0:
            raise InputError(f"start must be a finite number >= 0 seconds, got {self.start}")
        if self.duration is not None and (not math.isfinite(self.duration) or self.duration <= 0):
            raise InputError(f"duration must be a finite number > 0 seconds, got {self.duration}")
        if self.format not in FORMATS:
            raise InputError(f"unknown audio format '{self.format}': choose {' or '.join(FORMATS)}")
        if self.dtype not in DTYPES:
            raise InputError(f"unknown dtype '{self.dtype}': choose {' or '.join(DTYPES)}")
        for name, db in self.gains_db.items():
            if not isinstance(db, (int, float)) or not math.isfinite(db) or abs(db) > 60:
                raise InputError(f"gain of '{name}' must be a finite number of dB in [-60, 60], got {db!r}")
        if is_segaware(self.variant) and not self.masks:
            raise InputError("give at least one object mask with --mask (this variant is segmentation-aware)")

    def run_info(self, variant: str) -> dict:
        """What `run.json` records about the request."""
        return {"saganet_version": __version__, "video": str(self.video), "masks": [str(s.source) for s in self.masks],
                "variant": variant, "options": self.options.to_dict(), "start": self.start,
                "duration": self.duration, "device": self.device, "dtype": self.dtype}


def request_fields() -> list[str]:
    return [f.name for f in fields(GenerateRequest)]


class ModelCache:
    """Pipelines kept loaded across requests of one process (batch runs, the web UI)."""

    def __init__(self) -> None:
        self._pipes: dict[tuple, SAGANetPipeline] = {}

    def get(self, variant: str, device: str, dtype: str, weights: str | None = None,
            model_dirs: dict[str, str] | None = None) -> SAGANetPipeline:
        import torch

        key = (variant, device, dtype, weights, tuple(sorted((model_dirs or {}).items())))
        if key not in self._pipes:
            t0 = time.perf_counter()
            torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
            self._pipes[key] = SAGANetPipeline.from_variant(variant, device=device, dtype=torch_dtype,
                                                            weights=weights, model_dirs=model_dirs)
            log.info("loaded variant %s in %.1f s", variant, time.perf_counter() - t0)
        return self._pipes[key]


def run_request(req: GenerateRequest, models: ModelCache) -> dict[str, Path]:
    """Decode, load masks, generate and write one request. Everything is checked before the model runs."""
    from saganet.app.outputs import check_output_dir, output_paths, write_outputs
    from saganet.io.masks import load_masks
    from saganet.io.video import probe_video

    # 1. check the request and the inputs' headers before loading any model
    req.validate()
    probe_video(req.video)
    # 2. load the model (cached) and decode the inputs at its frame sizes
    pipe = models.get(req.variant, req.device, req.dtype, req.weights, req.model_dirs)
    decoded = pipe.load_video(req.video, start=req.start, duration=req.duration,
                              geometry="center_crop" if req.center_crop else "squash",
                              allow_longer=req.allow_longer, quiet=req.quiet)
    objs = []
    if pipe.model.segaware:
        objs = load_masks(req.masks, decoded, pad=req.pad_masks, strict=req.strict_masks, keep_raw=req.overlay_masks)
    # 3. plan the outputs: nothing is overwritten unless asked, inputs never
    out = Path(req.output)
    planned = list(output_paths(out, Path(req.video), [o.name for o in objs] or ["audio"], req.format).values())
    check_output_dir(out, planned, [Path(req.video), *[Path(s.source) for s in req.masks]], req.overwrite)
    # 4. generate and write
    options = replace(req.options, progress=not req.quiet and req.options.progress)
    result = pipe.generate(decoded, objs, options)
    return write_outputs(result, req.video, out, fmt=req.format,
                         gains_db=[float(req.gains_db.get(n, 0.0)) for n in result.names], masks=objs,
                         overlay_masks=req.overlay_masks, write_video=req.write_video,
                         run_info=req.run_info(pipe.variant), start=req.start)
