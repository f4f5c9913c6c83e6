"""The synthetic segmented-solos world: determinism, shapes, masks, audio, strikes, splits on disk."""

import dataclasses
import json

import av
import numpy as np
import pytest

from saganet.io.audio import read_audio
from saganet.toyworld import (
    CLASS_NAMES,
    CLASSES,
    WorldConfig,
    generate_arrays,
    load_split_arrays,
    make_scene,
    onset_frame_pulse,
    render_scene,
    sample_multi_different,
    sample_multi_same_class,
    sample_solo,
    write_split,
)

CFG = WorldConfig()
SAMPLERS = [sample_solo, sample_multi_different, sample_multi_same_class]


def _scene(sampler, seed, cfg=CFG):
    rng = np.random.default_rng(seed)
    return render_scene(sampler(rng, cfg), cfg, rng)


def test_classes_are_distinct():
    assert len(CLASSES) >= 4
    for attr in ("name", "shape", "colour", "timbre"):
        assert len({getattr(c, attr) for c in CLASSES}) == len(CLASSES)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_deterministic_given_seed(sampler):
    a, b, c = _scene(sampler, 7), _scene(sampler, 7), _scene(sampler, 8)
    for field in ("video", "masks", "stems", "mix"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.classes == b.classes and all(np.array_equal(x, y) for x, y in zip(a.onsets, b.onsets))
    assert not np.array_equal(a.mix, c.mix)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shapes_dtypes_masks_audio(sampler, seed):
    sc = _scene(sampler, seed)
    n, T, S, L = len(sc.names), CFG.n_frames, CFG.frame_size, CFG.n_samples
    assert (T, L) == (64, 40960)
    assert sc.video.shape == (T, S, S, 3) and sc.video.dtype == np.uint8
    assert sc.masks.shape == (n, T, S, S) and sc.masks.dtype == bool
    assert sc.stems.shape == (n, L) and sc.stems.dtype == np.float32
    assert sc.mix.shape == (L,) and sc.mix.dtype == np.float32
    assert len(sc.onsets) == len(sc.classes) == n and len(set(sc.names)) == n
    # every object visible in every frame, and not touching the border (drawn fully inside)
    assert sc.masks.any(axis=(2, 3)).all()
    border = sc.masks[..., 0, :] | sc.masks[..., -1, :] | sc.masks[..., :, 0] | sc.masks[..., :, -1]
    assert not border.any()
    assert (sc.masks.sum(0) <= 1).all()  # silhouettes are disjoint
    np.testing.assert_allclose(sc.stems.sum(0), sc.mix, atol=1e-6)
    assert np.abs(sc.mix).max() < 0.95 and np.abs(sc.stems).max() <= CFG.stem_peak + 0.01
    for o in sc.onsets:
        assert len(o) >= 2 and np.all(np.diff(o) >= CFG.min_gap - 1e-6)
        assert o.min() >= 0 and o.max() < CFG.duration
    # the object's colour is what the video shows inside its mask (between strikes)
    for k, cls in enumerate(sc.classes):
        colour = np.array([c.colour for c in CLASSES if c.name == cls][0], float)
        quiet = onset_frame_pulse(sc.onsets[k], T, CFG.fps) == 0
        pix = sc.video[quiet][sc.masks[k][quiet]].astype(float)
        assert np.abs(pix.mean(0) - colour).max() < 20


def test_sound_is_silent_before_first_onset_and_loud_after():
    sc = _scene(sample_solo, 3)
    on = sc.onsets[0]
    s0 = int(on[0] * CFG.sample_rate)
    assert np.abs(sc.stems[0, : s0 - 5]).max() < 0.01
    assert np.abs(sc.stems[0, s0 : s0 + 400]).max() > 0.1


@pytest.mark.parametrize("seed", range(4))
def test_strikes_are_visible_at_onsets(seed):
    """At each onset frame the object's mask grows and its pixels brighten vs the frame before."""
    sc = _scene(sample_solo, seed)
    m, v = sc.masks[0], sc.video.astype(float)
    pulse = onset_frame_pulse(sc.onsets[0], CFG.n_frames, CFG.fps)
    hits = [k for k in np.flatnonzero(pulse == 1.0) if k > 0 and pulse[k - 1] == 0]
    assert len(hits) >= 2
    for k in hits:
        assert m[k].sum() > 1.2 * m[k - 1].sum()
        assert v[k][m[k]].mean() > v[k - 1][m[k - 1]].mean() + 30
    # every onset maps to a pulse frame within half a frame
    frames = np.flatnonzero(pulse == 1.0) / CFG.fps
    assert all(np.min(np.abs(frames - t)) <= 0.5 / CFG.fps + 1e-9 for t in sc.onsets[0])


@pytest.mark.parametrize("seed", range(5))
def test_multi_scene_kinds(seed):
    d = _scene(sample_multi_different, seed)
    assert 2 <= len(d.classes) <= 3 and len(set(d.classes)) == len(d.classes)
    s = _scene(sample_multi_same_class, seed)
    assert len(s.classes) == 2 and s.classes[0] == s.classes[1]
    a, b = s.onsets
    near = np.abs(a[:, None] - b[None]).min(1) <= 0.05
    assert near.mean() < 0.5  # different rhythms


def test_render_draws_later_objects_on_top():
    """Two still objects at the same place: the one drawn last keeps its whole silhouette and its colour, the
    other keeps only what is not covered; swapping the order swaps the roles. (Render speed is not a test.)"""
    rng = np.random.default_rng(0)
    a, b = sample_multi_different(rng, CFG, n=2)
    still = dict(centre=(0.5, 0.5), drift_amp=(0.0, 0.0), size_wobble=0.0)
    a = dataclasses.replace(a, radius=0.2, **still)
    b = dataclasses.replace(b, radius=0.12, **still)
    alone = {o.name: render_scene([o], CFG, np.random.default_rng(1)).masks[0] for o in (a, b)}
    assert alone[a.name].any() and alone[b.name].any() and (alone[a.name] & alone[b.name]).any()
    for bottom, top in ((a, b), (b, a)):
        sc = render_scene([bottom, top], CFG, np.random.default_rng(1))
        np.testing.assert_array_equal(sc.masks[1], alone[top.name])
        np.testing.assert_array_equal(sc.masks[0], alone[bottom.name] & ~alone[top.name])
        assert not (sc.masks[0] & sc.masks[1]).any()
        # the top object's pixels carry its class colour (strikes only whiten it; noise is small)
        top_colour = np.array(next(c.colour for c in CLASSES if c.name == top.cls), np.float32)
        seen = sc.video[sc.masks[1]].astype(np.float32).mean(0)
        assert np.abs(seen - top_colour).max() < 60, (seen, top_colour)


def test_small_frame_size_config():
    cfg = WorldConfig(frame_size=64, duration=2.0)
    sc = make_scene("multi_same", 0, 0, cfg)
    assert sc.video.shape == (50, 64, 64, 3) and sc.mix.shape == (32000,)
    assert sc.masks.any(axis=(2, 3)).all()


def test_generate_arrays_rows():
    solo = generate_arrays(3, seed=5, kind="solo")
    assert len(solo) == 3 and solo.video.shape == (3, 64, 96, 96, 3) and solo.mask.shape == (3, 64, 96, 96)
    np.testing.assert_allclose(solo.target, solo.mix, atol=1e-6)
    assert all(p in CLASS_NAMES for p in solo.prompt) and solo.prompt == solo.class_name
    multi = generate_arrays(2, seed=5, kind="multi_same")
    assert len(multi) == 4 and list(multi.clip_index) == [0, 0, 1, 1]
    assert multi.prompt[0] == multi.prompt[1] == multi.class_name[0]
    np.testing.assert_array_equal(multi.distractor_onsets[0], multi.onsets[1])
    diff = generate_arrays(2, seed=5, kind="multi_diff")
    assert all(p == "" for p in diff.prompt)
    # clip i is independent of how many clips are generated
    np.testing.assert_array_equal(generate_arrays(1, seed=5, kind="solo", start=2).mix[0], solo.mix[2])


def test_write_split_and_read_back(tmp_path):
    out = write_split(tmp_path, "test_same", n=2, progress=False)
    info = json.loads((out / "world.json").read_text())
    assert info["kind"] == "multi_same" and WorldConfig.from_dict(info["world"]) == CFG
    recs = [json.loads(x) for x in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["id"] for r in recs] == ["test_same_00000", "test_same_00001"]
    arrays = load_split_arrays(tmp_path, "test_same")
    np.testing.assert_array_equal(arrays.mix, generate_arrays(2, seed=info["seed"], kind="multi_same").mix)

    r = recs[0]
    d = out / r["id"]
    sc = make_scene("multi_same", info["seed"], 0)
    assert [t["prompt"] for t in r["targets"]] == sc.classes
    assert [o["class"] for o in r["objects"]] == sc.classes
    for k, o in enumerate(r["objects"]):
        np.testing.assert_allclose(o["onsets"], sc.onsets[k], atol=1e-5)
        wav, sr = read_audio(d / f"stem_{o['name']}.wav")
        assert sr == 16000
        np.testing.assert_allclose(wav.numpy(), sc.stems[k], atol=1e-7)
        with av.open(str(d / f"mask_{o['name']}.mp4")) as c:
            luma = np.stack([f.to_ndarray(format="gray") for f in c.decode(video=0)])
        np.testing.assert_array_equal(luma / 255.0 > 0.5, sc.masks[k])

    # the mixture video decodes with the package's video reader (or PyAV), with its audio track
    try:
        from saganet.io.video import decode_video, probe_video
    except ImportError:  # pragma: no cover - reader written concurrently
        decode_video = None
    if decode_video is not None:
        info_v = probe_video(d / "video.mp4")
        assert info_v.has_audio and abs(info_v.fps - 25) < 1e-6
        dv = decode_video(d / "video.mp4", sync_size=96, clip_size=96, keep_original=True)
        frames = dv.original_frames.numpy()
    else:
        with av.open(str(d / "video.mp4")) as c:
            frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert frames.shape == sc.video.shape
    assert np.abs(frames.astype(float) - sc.video).mean() < 6


def test_write_split_solo_layout(tmp_path):
    out = write_split(tmp_path, "train", n=1, progress=False)
    files = sorted(p.name for p in (out / "train_00000").iterdir())
    assert files == ["mask_obj0.mp4", "mix.wav", "stem_obj0.wav", "video.mp4"]
    assert not list(out.glob("**/.*"))  # no temporary files left
