"""Writing a generation to an output folder: stems, mix, muxed video, run.json (all atomic).

Layout: `stem_<name>.flac|wav` per object, `mix.flac|wav`, `<video>_saganet.mp4` (original frames +
the mix; optionally each object's mask outlined), `run.json` (inputs, variant, options, timings).
`run.json` is written last: a folder that has it is complete (batch runs skip it on resume).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path

import torch

from saganet.errors import InputError
from saganet.io.atomic import atomic_write_text
from saganet.io.audio import write_audio
from saganet.io.masks import ObjectMask
from saganet.io.mux import MaskOverlay, mux_video_with_audio
from saganet.pipeline import GenerationResult

log = logging.getLogger(__name__)

PEAK_LIMIT = 0.99


def mix_stems(stems: torch.Tensor, gains_db: list[float] | None = None) -> torch.Tensor:
    """`stems (n, L)` -> `(L,)`: sum with per-stem gain (dB, default 0); scaled down only if it would clip."""
    gains = torch.tensor(gains_db or [0.0] * len(stems), dtype=stems.dtype)
    mix = (stems * (10 ** (gains / 20))[:, None]).sum(0)
    peak = float(mix.abs().max()) if mix.numel() else 0.0
    return mix * (PEAK_LIMIT / peak) if peak > PEAK_LIMIT else mix


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "object"


def output_paths(out_dir: Path, video: Path, names: list[str], fmt: str) -> dict[str, Path]:
    paths = {f"stem:{n}": out_dir / f"stem_{safe_name(n)}.{fmt}" for n in names}
    paths["mix"] = out_dir / f"mix.{fmt}"
    paths["video"] = out_dir / f"{video.stem}_saganet.mp4"
    paths["run"] = out_dir / "run.json"
    return paths


def check_output_dir(out_dir: Path, planned: list[Path], inputs: list[Path], overwrite: bool) -> None:
    """Fail before any work if the folder is not writable, outputs exist (without overwrite) or hit inputs."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".write_test"):
            pass
    except OSError as e:
        raise InputError(f"output folder {out_dir} is not writable ({e.strerror}): choose another -o") from e
    resolved_inputs = {p.resolve() for p in inputs}
    for p in planned:
        if p.resolve() in resolved_inputs:
            raise InputError(f"output {p} would overwrite an input: choose another output folder")
    existing = [p.name for p in planned if p.exists()]
    if existing and not overwrite:
        raise InputError(f"{out_dir} already holds {', '.join(existing[:3])}: pass --overwrite or choose another -o")


def write_outputs(result: GenerationResult, video_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                  fmt: str = "flac", gains_db: list[float] | None = None, masks: list[ObjectMask] | None = None,
                  overlay_masks: bool = False, write_video: bool = True, run_info: dict | None = None,
                  start: float = 0.0) -> dict[str, Path]:
    """Write stems, mix, mp4 and run.json for `result`; returns the written paths."""
    out, video = Path(out_dir), Path(video_path)
    paths = output_paths(out, video, result.names, fmt)
    for name, stem in zip(result.names, result.stems):
        write_audio(paths[f"stem:{name}"], stem, result.sample_rate)
    mix = mix_stems(result.stems, gains_db)
    write_audio(paths["mix"], mix, result.sample_rate)
    if write_video:
        overlays = None
        if overlay_masks and masks:
            overlays = [MaskOverlay(o.raw.frames, o.raw.times, name=o.name) for o in masks if o.raw is not None]
        mux_video_with_audio(video, mix, result.sample_rate, paths["video"], overlays=overlays, start=start)
    else:
        paths.pop("video")
    info = {**(run_info or {}), "objects": result.names, "prompts": result.prompts, "duration": result.duration,
            "sample_rate": result.sample_rate, "timings": {k: round(v, 3) for k, v in result.timings.items()},
            "outputs": {k: p.name for k, p in paths.items() if k != "run"}}
    atomic_write_text(paths["run"], json.dumps(info, indent=2, default=str))
    return paths
