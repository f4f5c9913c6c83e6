"""The synthetic segmented-solos world: instrument classes, scene sampling, rendering video + masks + audio.

Each object ("instrument") has a class with a visual identity (shape + colour) and a timbre, a base
pitch, its own note onsets, and a slowly drifting position/size. At each onset the object visibly
strikes (a ~3-frame size + brightness pulse) and plays a short decaying note, so both *what* sounds
(timbre <- shape/colour) and *when* (onsets <- pulses) are learnable from the video, and the mask
is the only thing that tells two objects of one class apart.

Everything is plain numpy, vectorised over frames, and fully determined by the `np.random.Generator`
passed in.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "ToyClass",
    "get_class",
    "CLASSES",
    "CLASS_NAMES",
    "WorldConfig",
    "ObjectSpec",
    "Scene",
    "synth_note",
    "render_stem",
    "render_scene",
    "sample_object",
    "sample_onsets",
    "sample_solo",
    "sample_multi_different",
    "sample_multi_same_class",
    "onset_frame_pulse",
]


# ----------------------------------------------------------------------------------------------
# classes


@dataclass(frozen=True)
class ToyClass:
    """One instrument class: its look (shape, RGB colour) and its sound (timbre, pitch range in Hz)."""

    name: str
    shape: str  # circle | ring | square | triangle | diamond | cross
    colour: tuple[int, int, int]
    timbre: str  # pluck | bell | reed | drum | whistle | buzz
    pitch_range: tuple[float, float]
    note_len: float  # seconds of synthesised note (tail is exponentially decayed to ~0 by then)


# Shapes and colours are pairwise distinct, and so are timbres; pitch ranges overlap only partly.
CLASSES: tuple[ToyClass, ...] = (
    ToyClass("pluck", "circle", (255, 140, 0), "pluck", (196.0, 392.0), 0.35),
    ToyClass("bell", "ring", (255, 230, 40), "bell", (440.0, 880.0), 0.9),
    ToyClass("reed", "square", (40, 200, 60), "reed", (130.0, 260.0), 0.3),
    ToyClass("drum", "triangle", (230, 30, 40), "drum", (60.0, 120.0), 0.25),
    ToyClass("whistle", "diamond", (40, 220, 255), "whistle", (880.0, 1760.0), 0.3),
    ToyClass("buzz", "cross", (210, 60, 255), "buzz", (90.0, 180.0), 0.3),
)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)


@dataclass(frozen=True)
class WorldConfig:
    """Global clip settings. 2.56 s at 16 kHz / hop 256 gives exactly 80 latents (x2 downsample) and
    64 video frames at 25 fps (7 sync segments of 16 frames, step 8)."""

    frame_size: int = 96
    fps: int = 25
    sample_rate: int = 16000
    duration: float = 2.56
    min_gap: float = 0.2  # seconds between onsets of one object
    rate_range: tuple[float, float] = (2.0, 5.0)  # notes per second, drawn per object
    stem_peak: float = 0.3  # each stem is normalised to this peak, so a 3-object mix stays < 0.9
    noise_floor: float = 3e-4  # std of the tiny noise added to every stem (-70 dBFS)
    video_noise: float = 3.0  # std of per-frame pixel noise (uint8 units)
    classes: tuple[str, ...] = CLASS_NAMES

    @property
    def n_frames(self) -> int:
        return int(round(self.duration * self.fps))

    @property
    def n_samples(self) -> int:
        return int(round(self.duration * self.sample_rate))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> WorldConfig:
        d = dict(d)
        for k in ("rate_range", "classes"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


def get_class(name: str) -> ToyClass:
    for c in CLASSES:
        if c.name == name:
            return c
    raise KeyError(f"unknown toy class '{name}'; known: {', '.join(CLASS_NAMES)}")


# ----------------------------------------------------------------------------------------------
# objects and scenes


@dataclass
class ObjectSpec:
    """Everything needed to render one object. Positions/sizes are fractions of the frame size."""

    cls: str
    pitch: float  # Hz
    onsets: np.ndarray  # (N,) seconds, sorted
    velocities: np.ndarray  # (N,) in [0.7, 1]
    centre: tuple[float, float]  # (x, y) in [0, 1]
    radius: float  # fraction of frame size
    drift_amp: tuple[float, float]  # (x, y) fractions
    drift_freq: tuple[float, float]  # Hz
    drift_phase: tuple[float, float]
    size_wobble: float  # relative slow size oscillation amplitude
    colour_jitter: tuple[int, int, int]
    timbre_seed: int  # seeds the noise parts of the timbre (drum, whistle breath)
    name: str = "obj0"

    def to_meta(self) -> dict:
        return {
            "name": self.name,
            "class": self.cls,
            "pitch": round(float(self.pitch), 3),
            "onsets": [round(float(t), 5) for t in self.onsets],
        }


@dataclass
class Scene:
    """A rendered clip.

    video  uint8 (T, H, W, 3)     mixture video
    masks  bool  (n_obj, T, H, W) each object's visible silhouette (occlusion applied)
    stems  float32 (n_obj, L)     each object's audio
    mix    float32 (L,)           sum of stems
    """

    video: np.ndarray
    masks: np.ndarray
    stems: np.ndarray
    mix: np.ndarray
    onsets: list[np.ndarray]
    classes: list[str]
    names: list[str]
    objects: list[ObjectSpec] = field(default_factory=list)

    @property
    def class_ids(self) -> list[int]:
        return [CLASS_NAMES.index(c) for c in self.classes]


# ----------------------------------------------------------------------------------------------
# audio


def _exp_env(t: np.ndarray, tau: float, attack: float = 0.002) -> np.ndarray:
    """Linear attack of `attack` s, then exp decay with time constant `tau` s."""
    return np.minimum(t / attack, 1.0) * np.exp(-np.maximum(t - attack, 0.0) / tau)


def _lowpass_noise(rng: np.random.Generator, n: int, sr: int, lo: float, hi: float) -> np.ndarray:
    """White noise band-limited to [lo, hi] Hz by zeroing FFT bins; unit std."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec[(f < lo) | (f > hi)] = 0.0
    x = np.fft.irfft(spec, n)
    return x / (x.std() + 1e-12)


def synth_note(toy: ToyClass, pitch: float, sr: int, seed: int = 0) -> np.ndarray:
    """One note of class `toy` at `pitch` Hz: float64 `(round(note_len * sr),)`, peak 1, ends near 0."""
    n = int(round(toy.note_len * sr))
    t = np.arange(n) / sr
    nyq = 0.45 * sr
    rng = np.random.default_rng(seed)
    two_pi_t = 2 * np.pi * t
    if toy.timbre == "pluck":  # harmonic, brighter partials die faster, plucked at 0.3 of the string
        k = np.arange(1, 13)
        k = k[k * pitch < nyq]
        amp = np.abs(np.sin(np.pi * k * 0.3)) / k
        tau = 0.15 / (1 + 0.6 * (k - 1))
        x = (amp[:, None] * np.sin(two_pi_t[None] * k[:, None] * pitch) * _exp_env(t[None], tau[:, None])).sum(0)
    elif toy.timbre == "bell":  # inharmonic partials, long ring
        ratios = np.array([1.0, 2.0, 2.76, 5.40, 8.93])
        amp = np.array([1.0, 0.5, 0.6, 0.35, 0.2])
        keep = ratios * pitch < nyq
        ratios, amp = ratios[keep], amp[keep]
        tau = 0.5 / np.sqrt(ratios)
        x = (amp[:, None] * np.sin(two_pi_t[None] * ratios[:, None] * pitch) * _exp_env(t[None], tau[:, None])).sum(0)
    elif toy.timbre == "reed":  # odd harmonics, held ~0.15 s then released
        k = np.arange(1, 30, 2)
        k = k[k * pitch < nyq]
        wave = (np.sin(two_pi_t[None] * k[:, None] * pitch) / k[:, None]).sum(0)
        env = np.minimum(t / 0.01, 1.0) * np.where(t < 0.15, 1.0, np.exp(-(t - 0.15) / 0.03))
        x = wave * env
    elif toy.timbre == "drum":  # pitch-dropping thump + band noise burst
        f_inst = pitch * (1 + 1.5 * np.exp(-t / 0.02))
        phase = 2 * np.pi * np.cumsum(f_inst) / sr
        thump = np.sin(phase) * _exp_env(t, 0.06, 0.001)
        noise = _lowpass_noise(rng, n, sr, 200.0, 3000.0) * _exp_env(t, 0.025, 0.001)
        x = thump + 0.5 * noise
    elif toy.timbre == "whistle":  # near-sine with vibrato and a little breath
        vib = 1 + 0.01 * np.sin(2 * np.pi * 6 * t)
        phase = 2 * np.pi * np.cumsum(pitch * vib) / sr
        breath = _lowpass_noise(rng, n, sr, 2000.0, 7000.0)
        env = _exp_env(t, 0.09, 0.008)
        x = (np.sin(phase) + 0.15 * np.sin(2 * phase) + 0.05 * breath) * env
    elif toy.timbre == "buzz":  # band-limited sawtooth
        k = np.arange(1, int(nyq // pitch) + 1)
        wave = (np.sin(two_pi_t[None] * k[:, None] * pitch) * ((-1.0) ** (k[:, None] + 1)) / k[:, None]).sum(0)
        x = wave * _exp_env(t, 0.08, 0.002)
    else:
        raise ValueError(f"unknown timbre {toy.timbre}")
    fade = np.minimum((n - np.arange(n)) / (0.01 * sr), 1.0)  # 10 ms fade-out: no click at the end
    x = x * fade
    return x / (np.abs(x).max() + 1e-12)


def render_stem(obj: ObjectSpec, cfg: WorldConfig) -> np.ndarray:
    """The object's audio: its note at each onset, scaled to `cfg.stem_peak`. float64 `(L,)`, no noise."""
    sr, L = cfg.sample_rate, cfg.n_samples
    note = synth_note(get_class(obj.cls), obj.pitch, sr, obj.timbre_seed)
    out = np.zeros(L + len(note))
    for t0, v in zip(obj.onsets, obj.velocities):
        s = int(round(t0 * sr))
        out[s : s + len(note)] += v * note
    out = out[:L]
    peak = np.abs(out).max()
    return out * (cfg.stem_peak / peak) if peak > 0 else out


# ----------------------------------------------------------------------------------------------
# video


def onset_frame_pulse(onsets: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """Strike pulse per frame, float32 `(T,)`: 1, 0.55, 0.25 on the frame nearest each onset and the next two."""
    p = np.zeros(n_frames + 3, np.float32)
    for t0 in onsets:
        k = int(round(t0 * fps))
        for j, a in enumerate((1.0, 0.55, 0.25)):
            if 0 <= k + j < len(p):
                p[k + j] = max(p[k + j], a)
    return p[:n_frames]


def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Inside-test for a shape of size `r` centred at 0; dx, dy, r broadcast to (T, H, W). y points down."""
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "ring":
        d2 = dx * dx + dy * dy
        return (d2 <= r * r) & (d2 >= (0.55 * r) ** 2)
    if shape == "square":
        return np.maximum(ax, ay) <= 0.85 * r
    if shape == "diamond":
        return ax + ay <= 1.2 * r
    if shape == "triangle":  # apex up at -r, flat base at +0.65 r
        return (dy <= 0.65 * r) & (ax <= (dy + r) * 0.65)
    if shape == "cross":
        arm = 0.35 * r
        return ((ax <= arm) & (ay <= r)) | ((ay <= arm) & (ax <= r))
    raise ValueError(f"unknown shape {shape}")


# relative half-extent of each shape (for placement without overlaps)
_SHAPE_EXTENT = {"circle": 1.0, "ring": 1.0, "square": 0.85 * 1.42, "diamond": 1.2, "triangle": 1.0, "cross": 1.0}
_PULSE_GROW = 0.3  # relative size increase at a strike
_PULSE_WHITEN = 0.6  # fraction of the way to white at a strike


def _object_track(obj: ObjectSpec, cfg: WorldConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame centre x, y, radius (pixels) and strike pulse, each `(T,)`."""
    T, S = cfg.n_frames, cfg.frame_size
    t = np.arange(T) / cfg.fps
    cx = (obj.centre[0] + obj.drift_amp[0] * np.sin(2 * np.pi * obj.drift_freq[0] * t + obj.drift_phase[0])) * S
    cy = (obj.centre[1] + obj.drift_amp[1] * np.sin(2 * np.pi * obj.drift_freq[1] * t + obj.drift_phase[1])) * S
    pulse = onset_frame_pulse(obj.onsets, T, cfg.fps)
    wobble = 1 + obj.size_wobble * np.sin(2 * np.pi * 0.3 * t + obj.drift_phase[0])
    r = obj.radius * S * wobble * (1 + _PULSE_GROW * pulse)
    return cx, cy, r, pulse


def _background(cfg: WorldConfig, rng: np.random.Generator) -> np.ndarray:
    """Static dark textured background, float32 `(H, W, 3)`: a tinted grey plus a few low-frequency waves."""
    S = cfg.frame_size
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S
    base = rng.uniform(25, 55) + rng.uniform(-8, 8, size=3)
    tex = np.zeros((S, S), np.float32)
    for _ in range(3):
        fx, fy = rng.uniform(-3, 3, size=2)
        tex += rng.uniform(3, 7) * np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 2 * np.pi))
    return (base[None, None, :] + tex[..., None]).astype(np.float32)


def render_scene(objects: list[ObjectSpec], cfg: WorldConfig, rng: np.random.Generator) -> Scene:
    """Render video, masks and audio for `objects` (drawn in list order: later ones on top).

    `rng` only drives the background and the noise; everything object-specific is in the specs.
    """
    T, S = cfg.n_frames, cfg.frame_size
    bg = _background(cfg, rng)
    video = np.broadcast_to(bg, (T, S, S, 3)).copy()
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) + 0.5  # pixel centres
    masks = np.zeros((len(objects), T, S, S), bool)
    for i, obj in enumerate(objects):
        toy = get_class(obj.cls)
        cx, cy, r, pulse = _object_track(obj, cfg)
        m = _shape_mask(toy.shape, xx[None] - cx[:, None, None], yy[None] - cy[:, None, None], r[:, None, None])
        colour = np.clip(np.array(toy.colour, np.float32) + np.array(obj.colour_jitter, np.float32), 0, 255)
        # strike: brighten towards white in proportion to the pulse
        col_t = colour[None] + _PULSE_WHITEN * pulse[:, None] * (255.0 - colour[None])  # (T, 3)
        video = np.where(m[..., None], col_t[:, None, None, :], video)
        masks[:i] &= ~m[None]  # occlusion: earlier objects lose the pixels this one covers
        masks[i] = m
    video += rng.standard_normal(video.shape, dtype=np.float32) * cfg.video_noise
    video = np.clip(np.rint(video), 0, 255).astype(np.uint8)

    stems = np.stack([render_stem(o, cfg) for o in objects]) if objects else np.zeros((0, cfg.n_samples))
    stems = stems + rng.standard_normal(stems.shape) * cfg.noise_floor
    stems = stems.astype(np.float32)
    mix = stems.sum(0, dtype=np.float32) if objects else np.zeros(cfg.n_samples, np.float32)
    return Scene(
        video=video,
        masks=masks,
        stems=stems,
        mix=mix,
        onsets=[o.onsets.copy() for o in objects],
        classes=[o.cls for o in objects],
        names=[o.name for o in objects],
        objects=list(objects),
    )


# ----------------------------------------------------------------------------------------------
# sampling


def sample_onsets(rng: np.random.Generator, cfg: WorldConfig) -> np.ndarray:
    """Random onsets (seconds, sorted): gaps = min_gap + exponential, at a per-object rate; >= 2 notes."""
    rate = rng.uniform(*cfg.rate_range)
    mean_extra = max(1.0 / rate - cfg.min_gap, 0.02)
    end = cfg.duration - 0.15  # leave room for the last note to be heard
    while True:
        t = rng.uniform(0.05, 0.4)
        out = []
        while t < end:
            out.append(t)
            t += cfg.min_gap + rng.exponential(mean_extra)
        if len(out) >= 2:
            return np.round(np.asarray(out), 5)


def sample_object(
    rng: np.random.Generator,
    cfg: WorldConfig,
    cls: str | None = None,
    radius_range: tuple[float, float] = (0.1, 0.15),
    drift_range: tuple[float, float] = (0.02, 0.07),
    name: str = "obj0",
) -> ObjectSpec:
    """Sample one object (class uniformly from `cfg.classes` unless given), centred at (0.5, 0.5)."""
    cls = cls if cls is not None else str(rng.choice(list(cfg.classes)))
    toy = get_class(cls)
    lo, hi = toy.pitch_range
    onsets = sample_onsets(rng, cfg)
    return ObjectSpec(
        cls=cls,
        pitch=float(lo * (hi / lo) ** rng.uniform()),  # log-uniform within the class range
        onsets=onsets,
        velocities=rng.uniform(0.7, 1.0, size=len(onsets)),
        centre=(0.5, 0.5),
        radius=float(rng.uniform(*radius_range)),
        drift_amp=tuple(rng.uniform(*drift_range, size=2).tolist()),
        drift_freq=tuple(rng.uniform(0.1, 0.4, size=2).tolist()),
        drift_phase=tuple(rng.uniform(0, 2 * np.pi, size=2).tolist()),
        size_wobble=float(rng.uniform(0.0, 0.08)),
        colour_jitter=tuple(int(v) for v in rng.integers(-15, 16, size=3)),
        timbre_seed=int(rng.integers(2**31)),
        name=name,
    )


def _extent(obj: ObjectSpec) -> float:
    """Max distance (fraction of frame) any pixel of the object gets from its centre."""
    shape = get_class(obj.cls).shape
    return obj.radius * (1 + obj.size_wobble) * (1 + _PULSE_GROW) * _SHAPE_EXTENT[shape] + max(obj.drift_amp)


def _place(objs: list[ObjectSpec], rng: np.random.Generator, tries: int = 500) -> None:
    """Pick centres so that objects stay inside the frame and never overlap (rejection sampling).

    If no such placement is found the last candidate is kept; `render_scene` handles occlusion anyway.
    """
    ext = [_extent(o) for o in objs]
    for _ in range(tries):
        cs = [rng.uniform(e, 1 - e, size=2) if e < 0.5 else np.array([0.5, 0.5]) for e in ext]
        ok = all(
            np.linalg.norm(cs[i] - cs[j]) > ext[i] + ext[j] for i in range(len(objs)) for j in range(i)
        )
        if ok:
            break
    for o, c in zip(objs, cs):
        o.centre = (float(c[0]), float(c[1]))


def sample_solo(rng: np.random.Generator, cfg: WorldConfig | None = None, cls: str | None = None) -> list[ObjectSpec]:
    """Train/val scene: one object, somewhere in the frame."""
    cfg = cfg or WorldConfig()
    obj = sample_object(rng, cfg, cls=cls)
    _place([obj], rng)
    return [obj]


def _multi_objects(rng: np.random.Generator, cfg: WorldConfig, classes: list[str]) -> list[ObjectSpec]:
    # smaller objects and drift so that 2-3 fit without overlapping
    objs = [
        sample_object(rng, cfg, cls=c, radius_range=(0.075, 0.1), drift_range=(0.015, 0.04), name=f"obj{j}")
        for j, c in enumerate(classes)
    ]
    _place(objs, rng)
    return objs


def sample_multi_different(
    rng: np.random.Generator, cfg: WorldConfig | None = None, n: int | None = None
) -> list[ObjectSpec]:
    """Test kind (a): 2-3 objects of pairwise different classes."""
    cfg = cfg or WorldConfig()
    n = int(n if n is not None else rng.integers(2, 4))
    classes = [str(c) for c in rng.choice(list(cfg.classes), size=n, replace=False)]
    return _multi_objects(rng, cfg, classes)


def _onset_overlap(a: np.ndarray, b: np.ndarray, tol: float = 0.05) -> float:
    """Fraction of onsets (of the shorter list) that have a partner within `tol` in the other list."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    d = np.abs(a[:, None] - b[None, :]).min(1 if len(a) <= len(b) else 0)
    return float((d <= tol).mean())


def sample_multi_same_class(
    rng: np.random.Generator, cfg: WorldConfig | None = None, cls: str | None = None
) -> list[ObjectSpec]:
    """Test kind (b): two objects of one class with clearly different rhythms (< 40% coinciding onsets)."""
    cfg = cfg or WorldConfig()
    cls = cls if cls is not None else str(rng.choice(list(cfg.classes)))
    while True:
        objs = _multi_objects(rng, cfg, [cls, cls])
        if _onset_overlap(objs[0].onsets, objs[1].onsets) < 0.4:
            return objs
