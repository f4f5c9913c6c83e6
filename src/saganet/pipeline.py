"""Video + object masks + text -> one audio stem per object (the data flow of SPEC §2 lives here).

    pipe = SAGANetPipeline.from_variant("toy")
    video = pipe.load_video("clip.mp4")
    masks = pipe.load_masks([MaskSpec("violin_mask.mp4")], video)
    result = pipe.generate(video, masks, GenerationOptions(prompt="violin"))

CLIP frames and text are encoded once; the segmentation-aware encoder and the sampler run for all
objects together as one batch. A model without a segmentation-aware encoder (MMAudio) ignores masks
and returns one stem.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field

import torch

from saganet.errors import InputError
from saganet.io.masks import MaskSpec, ObjectMask, load_masks
from saganet.io.video import DecodedVideo, decode_video
from saganet.models.generator import AudioGenerator
from saganet.sampling import SAMPLERS, generate_latents

log = logging.getLogger(__name__)

# Sync features need 16 frames at 25 fps.
MIN_DURATION = 16 / 25


@dataclass
class GenerationOptions:
    """Everything that steers one generation. `prompts` (per object) override `prompt`."""

    prompt: str = ""
    negative_prompt: str = ""
    prompts: dict[str, str] = field(default_factory=dict)
    negative_prompts: dict[str, str] = field(default_factory=dict)
    cfg_strength: float = 4.5
    steps: int = 25
    sampler: str = "euler"
    seed: int = 42
    mask_away_clip: bool = False  # use the learned empty CLIP feature instead of the frames (reference flag)
    progress: bool = True

    def validate(self) -> None:
        if self.sampler not in SAMPLERS:
            raise InputError(f"unknown sampler '{self.sampler}': choose one of {', '.join(SAMPLERS)}")
        if self.steps < 1:
            raise InputError(f"steps must be >= 1, got {self.steps}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class GenerationResult:
    names: list[str]
    stems: torch.Tensor  # (n_objects, L) float32 waveforms
    sample_rate: int
    duration: float
    prompts: list[str]
    timings: dict[str, float]


class SAGANetPipeline:
    """Holds an `AudioGenerator` on a device and runs generations with it."""

    def __init__(self, model: AudioGenerator, variant: str = "custom", device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.variant, self.device, self.dtype = variant, torch.device(device), dtype
        self.model = model.eval().requires_grad_(False)
        self.model.to(self.device)
        # the codec stays in float32 (the vocoder is sensitive); the networks take `dtype`
        for part in (self.model.dit, self.model.sync_encoder, self.model.frame_encoder, self.model.text_encoder):
            part.to(dtype)
        self.trained_duration = model.seq.duration

    @classmethod
    def from_variant(cls, variant: str, device: str = "cpu", dtype: torch.dtype = torch.float32) -> SAGANetPipeline:
        from saganet.variants import build_variant, canonical

        return cls(build_variant(variant), canonical(variant), device, dtype)

    # -- inputs -------------------------------------------------------------------------------
    def load_video(self, path, start: float = 0.0, duration: float | None = None, geometry: str = "squash",
                   allow_longer: bool = False, quiet: bool = False) -> DecodedVideo:
        """Decode at the model's frame sizes. Duration defaults to the video's, capped by the trained length."""
        if duration is None:
            from saganet.io.video import probe_video

            available = probe_video(path).duration - start
            duration = available if allow_longer else min(available, self.trained_duration)
        elif duration > self.trained_duration and not allow_longer:
            log.warning("duration %.2f s is longer than the model was trained on (%.2f s)", duration,
                        self.trained_duration)
        return decode_video(path, start=start, duration=duration, clip_size=self.model.clip_size,
                            sync_size=self.model.sync_size, sync_geometry=geometry, quiet=quiet)

    def load_masks(self, specs: list[MaskSpec], video: DecodedVideo, pad: bool = False,
                   strict: bool = False) -> list[ObjectMask]:
        return load_masks(specs, video, pad=pad, strict=strict)

    # -- generation ---------------------------------------------------------------------------
    def _text(self, texts: list[str]) -> torch.Tensor:
        """Per-token text features; the empty prompt uses the model's stored empty-string feature."""
        dit = self.model.dit
        out = dit.get_empty_string_sequence(len(texts)).clone()
        filled = [i for i, t in enumerate(texts) if t]
        if filled:
            out[filled] = self.model.encode_text([texts[i] for i in filled]).to(out)
        return out

    @torch.no_grad()
    def generate(self, video: DecodedVideo, masks: list[ObjectMask] | None = None,
                 options: GenerationOptions | None = None) -> GenerationResult:
        """One stem per object (masks), or one stem for the whole scene when the model takes no masks."""
        opt = options or GenerationOptions()
        opt.validate()
        m, dev, dt = self.model, self.device, self.dtype
        timings: dict[str, float] = {}
        if video.duration < MIN_DURATION or video.sync_frames.shape[0] < 16:
            raise InputError(f"video segment is {video.duration:.2f} s: at least {MIN_DURATION:.2f} s is needed")
        masks = list(masks or [])
        if m.segaware and not masks:
            raise InputError("this variant is segmentation-aware: give at least one object mask (--mask)")
        if not m.segaware and masks:
            log.warning("variant %s has no segmentation-aware encoder: masks are ignored, one stem is made",
                        self.variant)
            masks = []
        names = [o.name for o in masks] or ["audio"]
        n = len(names)
        seq = m.set_duration(video.duration)
        tc, ts = seq.clip_seq_len, video.sync_frames.shape[0]

        t0 = time.perf_counter()
        if opt.mask_away_clip:
            clip_f = m.dit.get_empty_clip_sequence(1)
        else:
            clip_f = m.encode_clip(video.clip_frames[None, :tc].to(dev, dt))
        prompts = [opt.prompts.get(nm, opt.prompt) for nm in names]
        negatives = [opt.negative_prompts.get(nm, opt.negative_prompt) for nm in names]
        text_f = self._text(prompts)
        neg_f = self._text(negatives) if any(negatives) else None
        timings["encode_clip_text"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        m.sync_encoder.progress = opt.progress
        frames = video.sync_frames[None].to(dev, dt)
        if m.segaware:
            obj_masks = torch.stack([o.masks for o in masks]).to(dev, dt)  # (n, T, 1, S, S)
            if obj_masks.shape[1] != ts:
                raise InputError(f"masks have {obj_masks.shape[1]} frames but the video has {ts}: align them first")
            sync_f = m.encode_sync(frames.expand(n, -1, -1, -1, -1), obj_masks)
        else:
            sync_f = m.encode_sync(frames)
        sync_f = sync_f[:, : seq.sync_seq_len]
        timings["encode_sync"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        wav = sample_audio(m, clip_f.expand(n, -1, -1), sync_f, text_f, opt, negative_text_f=neg_f)
        wav = wav[:, : int(round(video.duration * m.sample_rate))]
        timings["sample_decode"] = time.perf_counter() - t0
        return GenerationResult(names, wav.float().cpu(), m.sample_rate, video.duration, prompts, timings)


@torch.no_grad()
def sample_audio(model: AudioGenerator, clip_f: torch.Tensor, sync_f: torch.Tensor, text_f: torch.Tensor,
                 opt: GenerationOptions, negative_text_f: torch.Tensor | None = None) -> torch.Tensor:
    """Conditions `(B, ...)` -> waveforms `(B, L)`: seeded noise, ODE sampling with CFG, codec decode."""
    dit, dev = model.dit, clip_f.device
    g = torch.Generator(device=dev).manual_seed(opt.seed)
    # One draw per row: torch.randn(B, n) does not start with torch.randn(1, n) when n % 16 != 0 (CPU
    # normal fill works in blocks of 16), so a batched object would not match its single-object run.
    shape = (1, model.seq.latent_seq_len, dit.cfg.latent_dim)
    x0 = torch.cat([torch.randn(shape, generator=g, device=dev) for _ in range(len(clip_f))])
    latent = generate_latents(dit, clip_f, sync_f, text_f, x0.to(clip_f.dtype), steps=opt.steps,
                              cfg_strength=opt.cfg_strength, method=opt.sampler,
                              negative_text_features=negative_text_f, progress=opt.progress)
    return model.codec.latents_to_wav(latent.float()).float().cpu()
