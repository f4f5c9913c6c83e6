"""One training configuration: a flat dataclass read from a TOML (or YAML) file plus `key=value` overrides.

A config file may name a `base` file (relative to itself, or a shipped config name) whose values it
overrides, so the published set-ups share one file of reference hyperparameters (`configs/*.toml`).
Every key must be a field of `TrainConfig`; values are checked against the field's type and range, and any
mistake is one `InputError` line naming the key and the file.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import tomllib

from saganet.errors import InputError

DiTMode = Literal["full", "lora", "frozen"]
EncoderMode = Literal["all", "additions", "none"]
Precision = Literal["fp32", "bf16"]

CONFIG_DIR = "configs"


@dataclass
class TrainConfig:
    """Everything one run needs. Defaults are the reference's (SAGANet `sms_train_slurm.yaml`, RN-39)."""

    out_dir: str = "runs/saganet"
    # model: a registry variant ("small_44k_sa", "medium_44k_sa", "saganet_small", "tiny", ...) or "toy" /
    # "toy_baseline" (the toy world's model built from scratch)
    model: str = "small_44k_sa"
    # start point: "mmaudio" (the MMAudio DiT + Synchformer as the reference), "released" (the registry
    # variant's own weights), "random" (fresh weights: tests, benchmarks), or a path to exported weights
    init: str = "mmaudio"
    use_lora: bool = True  # build LoRA layers in the DiT (the reference's small_44k_sa always has them)
    dit_mode: DiTMode = "frozen"
    encoder_mode: EncoderMode = "additions"
    # optimisation (RN-39)
    steps: int = 70_000
    batch_size: int = 4  # GLOBAL batch, split across ranks
    lr: float = 1e-5
    weight_decay: float = 1e-6
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float | None = None  # None: 1e-6 with bf16, 1e-8 with fp32 (the reference's choice by precision)
    warmup_steps: int = 2_500
    lr_milestones: list[int] = field(default_factory=lambda: [60_000, 65_000])  # counted AFTER the warm-up
    lr_gamma: float = 0.1
    clip_grad_norm: float = 1.0
    null_video_p: float = 0.1  # clip AND sync replaced by the learned empty features
    null_text_p: float = 0.5
    # EMA of the trainable weights (used for validation and export)
    ema: bool = True
    ema_beta: float = 0.999
    ema_update_after_step: int = 100
    ema_update_every: int = 1
    # devices
    device: str = "auto"  # auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps
    precision: Precision = "bf16"
    # data
    data: str = "sms"  # sms, or a component package.module:function(cfg, model) -> (train_set, val_set)
    data_root: str = ""
    features: str = ""  # `saganet data extract` output folder holding train/ and val/ (SMS)
    train_split: str = "train"
    val_split: str = "val"
    focal: str = "offline"  # offline (files of `saganet data focal`) or online
    duration: float = 5.0
    num_workers: int = 8
    toy_n_train: int = 1200  # toy world: clips made for training / validation
    toy_n_val: int = 64
    toy_duration: float = 2.56
    toy_frame_size: int = 64  # the toy world's video frame size (the model squashes to its own)
    toy_use_clip_frames: bool = False  # toy model: condition on its fixed CLIP-like frame features
    # schedule of side tasks
    val_every: int = 1000
    ckpt_every: int = 1000
    log_every: int = 20
    keep_top_k: int = 3
    val_max_batches: int = 0  # 0: the whole validation split
    # sampling on the validation split, scored by the evaluation suite (RN-51; `train/val_sampling.py`)
    sample_every: int = 15_000  # steps between samplings; 0: never
    sample_n: int = 0  # validation clips sampled (0: the whole split, as the reference)
    sample_steps: int = 25  # Euler steps
    sample_cfg: float = 4.5
    sample_batch_size: int = 6  # per rank (the reference's eval batch)
    sample_metrics: list[str] = field(default_factory=lambda: ["vggish", "panns", "passt"])
    sample_eval_weights: str = "official"  # evaluation networks' weights: official, random (tests) or a file
    sample_eval_size: str = "full"  # full, or tiny (tests: tiny random evaluation networks)
    seed: int = 14159265
    max_minutes: float | None = None  # stop (and save) when this wall-time budget is spent
    tensorboard: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def adam_eps(self) -> float:
        return self.eps if self.eps is not None else (1e-6 if self.precision == "bf16" else 1e-8)

    def validate(self) -> None:
        """Range checks; `InputError` names the first bad key."""
        positive = ("steps", "batch_size", "log_every", "val_every", "ckpt_every", "ema_update_every")
        for k in positive:
            if getattr(self, k) < 1:
                raise InputError(f"config: {k} must be >= 1, got {getattr(self, k)}")
        for k in ("lr", "weight_decay", "clip_grad_norm", "ema_beta", "null_video_p", "null_text_p", "lr_gamma",
                  "duration", "toy_duration"):
            v = getattr(self, k)
            if not math.isfinite(v) or v < 0:
                raise InputError(f"config: {k} must be a finite number >= 0, got {v}")
        for k in ("null_video_p", "null_text_p", "ema_beta"):
            if getattr(self, k) > 1:
                raise InputError(f"config: {k} must be in [0, 1], got {getattr(self, k)}")
        for k in ("warmup_steps", "num_workers", "keep_top_k", "val_max_batches",
                  "ema_update_after_step", "sample_every", "sample_n"):
            if getattr(self, k) < 0:
                raise InputError(f"config: {k} must be >= 0, got {getattr(self, k)}")
        if self.max_minutes is not None and not (math.isfinite(self.max_minutes) and self.max_minutes > 0):
            raise InputError(f"config: max_minutes must be a positive number, got {self.max_minutes}")
        if self.eps is not None and not (math.isfinite(self.eps) and self.eps > 0):
            raise InputError(f"config: eps must be a positive number, got {self.eps}")
        if any(m < 0 for m in self.lr_milestones) or list(self.lr_milestones) != sorted(self.lr_milestones):
            raise InputError(f"config: lr_milestones must be increasing steps >= 0, got {self.lr_milestones}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise InputError(f"config: betas must be two numbers in [0, 1), got {self.betas}")
        if self.dit_mode == "frozen" and self.encoder_mode == "none":
            raise InputError("config: dit_mode=frozen with encoder_mode=none leaves nothing to train")
        if self.dit_mode == "lora" and not self.use_lora:
            raise InputError("config: dit_mode=lora needs use_lora=true")
        if self.sample_every:
            if self.sample_steps < 1 or self.sample_batch_size < 1:
                raise InputError("config: sample_steps and sample_batch_size must be >= 1")
            if not math.isfinite(self.sample_cfg) or self.sample_cfg < 0:
                raise InputError(f"config: sample_cfg must be a finite number >= 0, got {self.sample_cfg}")
            if not self.sample_metrics:
                raise InputError("config: sample_metrics is empty: name metric families (e.g. [\"panns\"]) "
                                 "or set sample_every=0")
            if self.sample_eval_size not in ("full", "tiny"):
                raise InputError(f"config: sample_eval_size must be full or tiny, got {self.sample_eval_size!r}")
            w = self.sample_eval_weights
            if w not in ("official", "random") and not Path(w).is_file():
                raise InputError(f"config: sample_eval_weights must be official, random or a checkpoint file; "
                                 f"{w!r} is none of these")
            if self.sample_eval_size == "tiny" and w != "random":
                raise InputError("config: sample_eval_size=tiny needs sample_eval_weights=random (tiny networks "
                                 "have no official weights)")
        if self.focal not in ("offline", "online"):
            raise InputError(f"config: focal must be offline or online, got {self.focal!r}")


_HINTS = get_type_hints(TrainConfig)


def _coerce(key: str, value: Any, where: str) -> Any:
    """Check `value` against the type of field `key` (ints accepted for floats, lists for tuples)."""
    hint = _HINTS[key]
    origin, args = get_origin(hint), get_args(hint)
    bad = InputError(f"{where}: {key} = {value!r} has the wrong type (expected {hint})".replace("typing.", ""))
    if value is None:
        if type(None) in args:
            return None
        raise bad
    if origin is Literal:
        if value not in args:
            raise InputError(f"{where}: {key} = {value!r}; choose one of {', '.join(map(str, args))}")
        return value
    if type(None) in args:  # Optional[X]
        hint = next(a for a in args if a is not type(None))
        origin, args = get_origin(hint), get_args(hint)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if hint is int or hint is bool or hint is str:
        if type(value) is not hint:
            raise bad
        return value
    if origin is list and args == (str,):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise bad
        return list(value)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                           for v in value):
            raise bad
        if origin is tuple:
            return tuple(float(v) for v in value)
        return [int(v) for v in value]
    raise bad  # pragma: no cover - every field type is handled above


def _read_file(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as e:
        raise InputError(f"cannot read config {path}: {e.strerror}") from e
    try:
        if path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as e:
                raise InputError(f"{path}: YAML configs need PyYAML (pip install pyyaml), or use TOML") from e
            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except InputError:
        raise
    except Exception as e:  # tomllib.TOMLDecodeError, yaml.YAMLError
        raise InputError(f"config {path} is not valid {path.suffix[1:].upper() or 'TOML'}: "
                         f"{str(e).splitlines()[0]}") from e
    if not isinstance(data, dict):
        raise InputError(f"config {path} must hold a table of key = value settings")
    return data


def shipped_config(name: str) -> Path:
    """Path of a config shipped with saganet (`configs/NAME.toml`)."""
    return Path(str(resources.files("saganet.train") / CONFIG_DIR / name))


def resolve_config_path(name: str | Path, relative_to: Path | None = None) -> Path:
    """A file path, a path relative to `relative_to`, or the name of a shipped config (with or without .toml)."""
    p = Path(name)
    candidates = [p] if p.is_absolute() else ([relative_to / p] if relative_to else []) + [p]
    candidates += [shipped_config(p.name), shipped_config(p.name + ".toml")]
    for c in candidates:
        if c.is_file():
            return c
    shipped = ", ".join(sorted(q.stem for q in Path(str(resources.files("saganet.train") / CONFIG_DIR)).glob("*.toml")))
    raise InputError(f"config '{name}' not found: give a file path or a shipped config ({shipped})")


def _load_dict(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    path = path.resolve()
    if path in seen:
        raise InputError(f"config {path} includes itself through 'base'")
    data = _read_file(path)
    base = data.pop("base", None)
    if base is None:
        merged: dict = {}
    else:
        if not isinstance(base, str):
            raise InputError(f"{path}: base must be a config name or path")
        merged = _load_dict(resolve_config_path(base, path.parent), (*seen, path))
    for k, v in data.items():
        if k not in _HINTS:
            raise InputError(f"{path.name}: unknown key '{k}' (see docs/training.md for the keys)")
        merged[k] = _coerce(k, v, path.name)
    return merged


def parse_override(item: str) -> tuple[str, Any]:
    """`key=value` with a TOML value (`lr=1e-4`, `betas=[0.9, 0.99]`, `dit_mode=lora`: bare words are strings)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InputError(f"override '{item}' must look like KEY=VALUE")
    if key not in _HINTS:
        raise InputError(f"override: unknown key '{key}' (see docs/training.md for the keys)")
    raw = raw.strip()
    if raw.lower() in ("none", "null"):
        value: Any = None
    else:
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word: a string
    if isinstance(value, str) and _HINTS[key] == list[str]:  # sample_metrics=panns,vggish
        value = [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, str) and _HINTS[key] in (float, int):  # nan / inf arrive as TOML floats already
        raise InputError(f"override: {key} needs a number, got '{raw}'")
    return key, _coerce(key, value, "override")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None, **fields: Any) -> TrainConfig:
    """Config file (+ its bases) <- keyword fields <- `key=value` overrides; validated."""
    data = _load_dict(resolve_config_path(path)) if path is not None else {}
    for k, v in fields.items():
        if k not in _HINTS:
            raise InputError(f"unknown config key '{k}'")
        data[k] = _coerce(k, v, "argument")
    for item in overrides or []:
        k, v = parse_override(item)
        data[k] = v
    cfg = TrainConfig(**data)
    cfg.validate()
    return cfg


def config_from_dict(d: dict) -> TrainConfig:
    """Rebuild a config saved with `to_dict()` (ignores keys a newer/older version does not know)."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: (tuple(v) if k == "betas" else v) for k, v in d.items() if k in known})


def dump_config(cfg: TrainConfig) -> str:
    return json.dumps(cfg.to_dict(), indent=2)
