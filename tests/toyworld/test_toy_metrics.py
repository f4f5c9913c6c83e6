"""Toy-world metrics: sanity on clean stems, mixtures, silence and wrong-class audio; F1; bootstrap."""

import math

import numpy as np
import pytest
import torch

from saganet.toyworld import (
    SILENCE,
    ClassTemplates,
    WorldConfig,
    bootstrap_ci,
    build_class_templates,
    classify,
    detect_onsets,
    evaluate_target,
    logmel,
    logmel_distance,
    make_scene,
    onset_f1,
    summarise,
)

CFG = WorldConfig()


@pytest.fixture(scope="module")
def templates() -> ClassTemplates:
    return build_class_templates(CFG, n_per_class=16, seed=0)


def test_onset_f1_hand_made():
    assert onset_f1([0.1, 0.5, 1.0], [0.1, 0.5, 1.0]) == 1.0
    assert onset_f1([0.14, 0.55], [0.1, 0.5]) == 1.0  # within 50 ms (boundary included)
    assert onset_f1([0.16], [0.1]) == 0.0
    assert onset_f1([0.1, 0.11], [0.1]) == pytest.approx(2 / 3)  # one-to-one: the extra is a false positive
    assert onset_f1([0.1, 0.5, 0.9, 1.3], [0.1, 0.5]) == pytest.approx(2 * 2 / 6)
    assert onset_f1([], [0.1]) == 0.0 and onset_f1([0.1], []) == 0.0 and onset_f1([], []) == 1.0
    # closest pairs are matched first: 0.13 takes 0.12, so 0.08 still gets 0.05
    assert onset_f1([0.08, 0.13], [0.05, 0.12]) == 1.0
    assert onset_f1([0.3, 0.1], np.array([0.1, 0.3])) == 1.0  # order does not matter


def test_templates_serialise(templates):
    assert templates.features.shape[0] == 16 * len(CFG.classes)
    t2 = ClassTemplates.from_dict(templates.to_dict())
    np.testing.assert_allclose(t2.features, templates.features)
    assert t2.class_names == templates.class_names


def test_true_stems_score_high(templates):
    """20 solo stems (fresh seeds): class accuracy ~1, onset F1 >= 0.8 on average."""
    correct, f1 = [], []
    for i in range(20):
        sc = make_scene("solo", 99, i, CFG)
        correct.append(classify(sc.stems[0], templates) == sc.classes[0])
        f1.append(onset_f1(detect_onsets(sc.stems[0]), sc.onsets[0]))
    assert np.mean(correct) >= 0.95
    assert np.mean(f1) >= 0.9


def test_mixture_leaks_distractor_onsets_silence_scores_zero(templates):
    stem_rows, mix_rows, sil_rows, wrong_rows = [], [], [], []
    for i in range(8):
        sc = make_scene("multi_diff", 7, i, CFG)
        for k in range(len(sc.names)):
            others = [sc.onsets[j] for j in range(len(sc.names)) if j != k]
            args = (sc.stems[k], sc.onsets[k], others, sc.classes[k], templates)
            stem_rows.append(evaluate_target(sc.stems[k], *args))
            mix_rows.append(evaluate_target(sc.mix, *args))
            sil_rows.append(evaluate_target(torch.zeros(CFG.n_samples), *args))
            j = (k + 1) % len(sc.names)  # another object's stem: a different class here
            wrong_rows.append(evaluate_target(sc.stems[j], *args))
    stem, mix, sil, wrong = (summarise(r, n=200) for r in (stem_rows, mix_rows, sil_rows, wrong_rows))
    assert stem["class_correct"][0] >= 0.9 and stem["onset_f1"][0] >= 0.85
    assert stem["logmel_dist"][0] == 0.0
    assert mix["distractor_f1"][0] > stem["distractor_f1"][0] + 0.25
    assert mix["onset_f1"][0] < stem["onset_f1"][0]
    assert mix["logmel_dist"][0] > 0.2
    assert sil["onset_f1"][0] == 0.0 and sil["class_correct"][0] == 0.0 and sil["n_pred_onsets"][0] == 0
    assert wrong["class_correct"][0] <= 0.1
    assert wrong["distractor_f1"][0] > 0.7 and wrong["onset_f1"][0] < 0.5
    assert classify(np.zeros(1000), templates) == SILENCE


def test_same_class_other_object_is_right_class_wrong_rhythm(templates):
    rows = []
    for i in range(6):
        sc = make_scene("multi_same", 3, i, CFG)
        rows.append(evaluate_target(sc.stems[1], sc.stems[0], sc.onsets[0], [sc.onsets[1]], sc.classes[0], templates))
    s = summarise(rows, n=200)
    assert s["class_correct"][0] >= 0.8  # right class ...
    assert s["distractor_f1"][0] > s["onset_f1"][0] + 0.4  # ... but the other object's rhythm


def test_detector_is_level_robust_and_ignores_noise():
    sc = make_scene("solo", 11, 0, CFG)
    ref = sc.onsets[0]
    for gain in (0.1, 1.0, 3.0):
        assert onset_f1(detect_onsets(np.clip(sc.stems[0] * gain, -1, 1)), ref) >= 0.8
    noise = np.random.default_rng(0).standard_normal(CFG.n_samples) * 0.05  # stationary noise: no onsets
    assert len(detect_onsets(noise)) <= 2


def test_robust_to_additive_noise(templates):
    """Stems + white noise at 10 dB SNR: still classified right and onsets found."""
    rng = np.random.default_rng(0)
    correct, f1 = [], []
    for i in range(12):
        sc = make_scene("solo", 5, i, CFG)
        x = sc.stems[0]
        x = x + rng.standard_normal(len(x)) * np.sqrt(np.mean(x**2)) * 10 ** (-10 / 20)
        correct.append(classify(x, templates) == sc.classes[0])
        f1.append(onset_f1(detect_onsets(x), sc.onsets[0]))
    assert np.mean(correct) >= 0.9 and np.mean(f1) >= 0.5


def test_logmel():
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    m = logmel(x)
    assert m.shape == (80, 16000 // 256 + 1)
    assert logmel_distance(x, torch.from_numpy(x)) == 0.0
    assert logmel_distance(x, 0.1 * x) == pytest.approx(1.0, abs=1e-3)  # log10 units, above the floor


def test_no_distractors_gives_nan(templates):
    sc = make_scene("solo", 1, 0, CFG)
    r = evaluate_target(sc.stems[0], sc.stems[0], sc.onsets[0], [], sc.classes[0], templates)
    assert math.isnan(r["distractor_f1"]) and r["onset_f1"] > 0.8
    assert math.isnan(summarise([r])["distractor_f1"][0])


def test_bootstrap_ci_and_summarise():
    v = np.random.default_rng(0).normal(0.6, 0.2, size=200)
    m, lo, hi = bootstrap_ci(v, n=1000, seed=1)
    assert lo < m < hi and m == pytest.approx(v.mean())
    assert (hi - lo) == pytest.approx(2 * 1.96 * v.std() / np.sqrt(len(v)), rel=0.25)
    assert bootstrap_ci(v, seed=1) == bootstrap_ci(v, seed=1)
    m20, lo20, hi20 = bootstrap_ci(v[:20], n=1000, seed=1)
    assert hi20 - lo20 > hi - lo  # fewer samples -> wider interval
    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    rows = [{"a": 1.0, "b": True, "name": "x"}, {"a": 0.0, "b": False, "name": "y"}, {"a": float("nan"), "b": True}]
    s = summarise(rows)
    assert set(s) == {"a", "b"}
    assert s["a"][0] == 0.5 and s["b"][0] == pytest.approx(2 / 3)
    for mean, lo_, hi_ in s.values():
        assert lo_ <= mean <= hi_
