"""Video + object masks + text -> one audio stem per object (the data flow of RN-42 lives here).

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
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from saganet.errors import InputError
from saganet.feature_cache import FeatureCache, file_key, make_key, tensor_key
from saganet.io.masks import MaskSpec, ObjectMask, load_masks
from saganet.io.video import DEFAULT_FRAME_RULE, DecodedVideo, decode_video
from saganet.models.generator import AudioGenerator
from saganet.models.lazy import LazyModule, unload_all
from saganet.sampling import SAMPLERS, generate_latents

log = logging.getLogger(__name__)

# Sync features need 16 frames at 25 fps.
MIN_DURATION = 16 / 25
MAX_STEPS = 1000
MAX_CFG = 100.0
MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit seed
# CLIP frames encoded per call in low-memory mode: ViT-H/14's MLP activations at 384² are tens of MB a frame,
# so 40 frames at once hold ~1.5 GB more than 8 at a time; 8 at a time is ~10 % slower (docs/speed.md), so
# the default path encodes all frames in one call
CLIP_FRAMES_PER_CALL = 8


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
        """Every option finite and in range (the message names the allowed range)."""
        if self.sampler not in SAMPLERS:
            raise InputError(f"unknown sampler '{self.sampler}': choose one of {', '.join(SAMPLERS)}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= MAX_STEPS:
            raise InputError(f"steps must be an integer in [1, {MAX_STEPS}], got {self.steps!r}")
        cfg = self.cfg_strength
        if isinstance(cfg, bool) or not isinstance(cfg, (int, float)) or not math.isfinite(cfg) or not 0 <= cfg <= MAX_CFG:
            raise InputError(f"cfg strength must be a finite number in [0, {MAX_CFG:g}], got {cfg!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"seed must be an integer in [0, {MAX_SEED}], got {self.seed!r}")
        for what, texts in (("prompt", [self.prompt, *self.prompts.values()]),
                            ("negative prompt", [self.negative_prompt, *self.negative_prompts.values()])):
            if not all(isinstance(t, str) for t in texts):
                raise InputError(f"every {what} must be text")

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
                 dtype: torch.dtype = torch.float32, cache: FeatureCache | None = None,
                 low_memory: bool = False) -> None:
        """`cache`: where decoded videos and CLIP / text features are reused across objects and calls
        (default: in memory; `FeatureCache(folder)` also keeps CLIP features on disk across runs).
        `low_memory`: free each lazily built network (`LazyModule`) when its stage ends, so the peak memory
        is the largest stage's (build the model with `build_variant(..., lazy=True)`)."""
        self.variant, self.device, self.dtype = variant, torch.device(device), dtype
        self.low_memory = low_memory
        self.cache = cache if cache is not None else FeatureCache()
        self._video_keys: dict[int, tuple[weakref.ref, str]] = {}
        self.model = model.eval().requires_grad_(False)
        self.model.to(self.device)
        # the codec stays in float32 (the vocoder is sensitive); the networks take `dtype`
        for part in (self.model.dit, self.model.sync_encoder, self.model.frame_encoder, self.model.text_encoder):
            part.to(dtype)
        self.trained_duration = model.seq.duration
        # the frame-picking rule the weights were trained with (registry); other models: the reference's
        from saganet.registry import VARIANTS

        self.frame_rule = VARIANTS[variant].frame_rule if variant in VARIANTS else DEFAULT_FRAME_RULE
        # identifies the frame/text encoders' weights in cache keys (a custom model never hits another's entry)
        if isinstance(self.model.frame_encoder, LazyModule):  # not built yet: its files identify it
            self._encoder_id = ("lazy", variant)
        else:
            first = next(iter(self.model.frame_encoder.parameters()), None)
            self._encoder_id = (type(self.model.frame_encoder).__name__,
                                tensor_key(first.flatten()[:4096].float()) if first is not None else "none")

    @classmethod
    def from_variant(cls, variant: str, device: str = "cpu", dtype: torch.dtype = torch.float32,
                     weights: str | None = None, model_dirs: dict[str, str] | None = None,
                     cache: FeatureCache | None = None, low_memory: bool = False) -> SAGANetPipeline:
        """Build a registry variant. `weights`: a fine-tuned checkpoint in place of the variant's own file;
        `model_dirs`: plain local folders (or files) per model key (`{"clip": PATH, "bigvgan_v2": PATH,
        "saganet.pth": PATH, "all": FOLDER}`; see `saganet.weights`)."""
        from saganet.builders import build_variant
        from saganet.registry import canonical

        name = canonical(variant)
        model = build_variant(name, weights_file=weights, model_dirs=model_dirs, lazy=low_memory)
        return cls(model, name, device, dtype, cache=cache, low_memory=low_memory)

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
        # the same file with the same options decodes once per process (a second object, a second prompt)
        key = make_key("video", file_key(path), start, duration, self.model.clip_size, self.model.sync_size, geometry,
                       self.frame_rule)
        video = self.cache.get(key)
        if video is None:
            video = decode_video(path, start=start, duration=duration, clip_size=self.model.clip_size,
                                 sync_size=self.model.sync_size, sync_geometry=geometry, quiet=quiet,
                                 frame_rule=self.frame_rule)
            self.cache.put(key, video)
        self._video_keys[id(video)] = (weakref.ref(video), key)
        return video

    def encoder_key(self) -> tuple:
        """Identifies the frame/text encoders in cache keys: their weights, and whether they were quantised
        (int8 features differ from float ones; a compiled encoder computes the same function)."""
        quantised = any(".quantized." in type(mod).__module__ for mod in self.model.frame_encoder.modules())
        return (*self._encoder_id, "int8" if quantised else "float")

    def video_key(self, video: DecodedVideo) -> str:
        """Content key of a decoded video (its file's hash and decode options, or its frames' hash)."""
        ref = self._video_keys.get(id(video))
        if ref is not None and ref[0]() is video:
            return ref[1]
        key = make_key("frames", tensor_key(video.clip_frames), video.start, video.duration)
        self._video_keys[id(video)] = (weakref.ref(video), key)
        return key

    def encode_shared_features(self, video: DecodedVideo, prompts: list[str], negatives: list[str],
                               clip_seq_len: int, mask_away_clip: bool = False,
                               timings: dict[str, float] | None = None
                               ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """What every object of a clip shares: CLIP frame features (None when not used; cached per video
        content and encoder, also on disk when the cache has a folder) and the text features of the prompts
        and negative prompts (cached per prompts). Only CLIP runs here: the DiT's learned empty features
        are added by `AudioGenerator.encode_conditions` in the sampling stage."""
        m, dev, dt = self.model, self.device, self.dtype
        timings = {} if timings is None else timings
        t0 = time.perf_counter()
        clip_f = None
        if not mask_away_clip and m.use_clip_frames:
            key = make_key("clip", self.video_key(video), self.encoder_key(), m.clip_size, clip_seq_len, str(dt))
            hit = self.cache.get(key)
            if hit is not None:
                clip_f = hit["clip_f"].to(dev, dt)
            else:
                clip_f = m.encode_clip(video.clip_frames[None, :clip_seq_len].to(dev, dt),
                                       batch_size=CLIP_FRAMES_PER_CALL if self.low_memory else -1)
                self.cache.put(key, {"clip_f": clip_f}, persist=True)
        timings["clip"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        tkey = make_key("prompts", self.encoder_key(), m.empty_prompt, str(dt), prompts, negatives)
        text = self.cache.get(tkey)
        if text is None:
            text = m.encode_prompts(prompts, negatives)
            self.cache.put(tkey, text)
        timings["text"] = time.perf_counter() - t0
        return clip_f, *text

    def load_masks(self, specs: list[MaskSpec], video: DecodedVideo, pad: bool = False,
                   strict: bool = False) -> list[ObjectMask]:
        return load_masks(specs, video, pad=pad, strict=strict)

    # -- generation ---------------------------------------------------------------------------
    def _end_stage(self, *parts) -> None:
        """In low-memory mode, free the lazily built networks a stage used."""
        if self.low_memory:
            unload_all(*parts)

    def check_inputs(self, video: DecodedVideo, masks: list[ObjectMask], opt: GenerationOptions) -> list[ObjectMask]:
        """Validate before any network runs; returns the masks the model will use."""
        opt.validate()
        m = self.model
        if video.duration < MIN_DURATION or video.sync_frames.shape[0] < 16:
            raise InputError(f"video segment is {video.duration:.2f} s: at least {MIN_DURATION:.2f} s is needed")
        if m.segaware and not masks:
            raise InputError("this variant is segmentation-aware: give at least one object mask (--mask)")
        if not m.segaware and masks:
            log.warning("variant %s has no segmentation-aware encoder: masks are ignored, one stem is made",
                        self.variant)
            return []
        for o in masks:
            if o.masks.shape[0] != video.sync_frames.shape[0]:
                raise InputError(f"mask '{o.name}' has {o.masks.shape[0]} frames but the video has "
                                 f"{video.sync_frames.shape[0]}: align them first")
        return masks

    @torch.no_grad()
    def generate(self, video: DecodedVideo, masks: list[ObjectMask] | None = None,
                 options: GenerationOptions | None = None) -> GenerationResult:
        """One stem per object (masks), or one stem for the whole scene when the model takes no masks."""
        opt = options or GenerationOptions()
        m, dev, dt = self.model, self.device, self.dtype
        timings: dict[str, float] = {}
        # 1. check inputs
        masks = self.check_inputs(video, list(masks or []), opt)
        names = [o.name for o in masks] or ["audio"]
        n = len(names)
        seq = m.seq_for(video.duration)

        # 2. encode the conditions shared by all objects (CLIP frames, prompts)
        prompts = [opt.prompts.get(nm, opt.prompt) for nm in names]
        negatives = [opt.negative_prompts.get(nm, opt.negative_prompt) for nm in names]
        clip_f, text_f, negative_text_f = self.encode_shared_features(video, prompts, negatives, seq.clip_seq_len,
                                                                      opt.mask_away_clip, timings)
        self._end_stage(m.frame_encoder, m.text_encoder)

        # 3. encode each object's motion with its mask (one batch)
        t0 = time.perf_counter()
        frames = video.sync_frames[None].to(dev, dt)
        if m.segaware:
            obj_masks = torch.stack([o.masks for o in masks]).to(dev, dt)  # (n, T, 1, S, S)
            sync_f = m.encode_sync(frames.expand(n, -1, -1, -1, -1), obj_masks, progress=opt.progress)
        else:
            sync_f = m.encode_sync(frames, progress=opt.progress)
        sync_f = sync_f[:, : seq.sync_seq_len]
        timings["sync"] = time.perf_counter() - t0
        self._end_stage(m.sync_encoder)

        # 4. add the DiT's learned empty features, sample the latents and decode them to waveforms
        conds = m.encode_conditions(prompts, clip_f=clip_f, text_f=text_f, clip_seq_len=seq.clip_seq_len,
                                    mask_away_clip=opt.mask_away_clip or clip_f is None)
        if negative_text_f is not None:
            negative_text_f = negative_text_f.to(conds.text_f)
        wav = sample_audio(m, conds.clip_f, sync_f, conds.text_f, opt, negative_text_f=negative_text_f,
                           latent_seq_len=seq.latent_seq_len, timings=timings,
                           after_dit=lambda: self._end_stage(m.dit))
        self._end_stage(m.codec)
        wav = wav[:, : int(round(video.duration * m.sample_rate))]
        return GenerationResult(names, wav.float().cpu(), m.sample_rate, video.duration, prompts, timings)


@torch.no_grad()
def sample_audio(model: AudioGenerator, clip_f: torch.Tensor, sync_f: torch.Tensor, text_f: torch.Tensor,
                 opt: GenerationOptions, negative_text_f: torch.Tensor | None = None,
                 latent_seq_len: int | None = None, timings: dict[str, float] | None = None,
                 after_dit: Callable[[], None] | None = None) -> torch.Tensor:
    """Conditions `(B, ...)` -> waveforms `(B, L)`: seeded noise, ODE sampling with CFG, codec decode.

    `latent_seq_len` defaults to the model's trained length (the conditions must then have its lengths)."""
    dit, dev = model.dit, clip_f.device
    g = torch.Generator(device=dev).manual_seed(opt.seed)
    # One draw per row: torch.randn(B, n) does not start with torch.randn(1, n) when n % 16 != 0 (CPU
    # normal fill works in blocks of 16), so a batched object would not match its single-object run.
    shape = (1, latent_seq_len or model.seq.latent_seq_len, dit.cfg.latent_dim)
    x0 = torch.cat([torch.randn(shape, generator=g, device=dev) for _ in range(len(clip_f))])
    t0 = time.perf_counter()
    latent = generate_latents(dit, clip_f, sync_f, text_f, x0.to(clip_f.dtype), steps=opt.steps,
                              cfg_strength=opt.cfg_strength, method=opt.sampler,
                              negative_text_features=negative_text_f, progress=opt.progress)
    t1 = time.perf_counter()
    if after_dit is not None:
        after_dit()
    mel = model.codec.decode(latent.float())
    t2 = time.perf_counter()
    wav = model.codec.vocode(mel).float().cpu()
    if timings is not None:
        timings.update(dit=t1 - t0, vae=t2 - t1, vocoder=time.perf_counter() - t2)
    return wav
