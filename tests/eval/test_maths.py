"""Known answers for the metric maths (saganet.eval.maths)."""

import numpy as np
import pytest
from scipy import linalg

from saganet.errors import InputError
from saganet.eval import maths


def test_fd_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(200, 8))
    assert abs(maths.frechet_distance(x, x)) < 1e-8


def test_fd_matches_closed_form_between_gaussians():
    rng = np.random.default_rng(1)
    d = 4
    a1, a2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a1 @ a1.T + np.eye(d), a2 @ a2.T + 0.5 * np.eye(d)
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    # closed form through the symmetric form sqrt(S1^1/2 S2 S1^1/2): independent of the code's sqrtm(S1 S2)
    r1 = linalg.sqrtm(s1).real
    expected = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(r1 @ s2 @ r1).real)
    assert maths.frechet_distance_from_stats(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-9)
    # and from samples: large sets drawn from the two Gaussians come close to it
    x = rng.multivariate_normal(m1, s1, size=40000)
    y = rng.multivariate_normal(m2, s2, size=40000)
    assert maths.frechet_distance(x, y) == pytest.approx(expected, rel=0.05)


def test_fd_1d_gaussians():
    # N(0, 1) vs N(3, 4): (0-3)^2 + 1 + 4 - 2*2 = 10
    assert maths.frechet_distance_from_stats([0.0], [[1.0]], [3.0], [[4.0]]) == pytest.approx(10.0)


def test_kl_identical_zero_and_asymmetric():
    rng = np.random.default_rng(2)
    p = rng.normal(size=(5, 10))
    assert maths.kl_paired(p, p) == pytest.approx(0.0, abs=1e-12)
    assert maths.kl_paired(p, p, "sigmoid") == pytest.approx(0.0, abs=1e-12)
    # KL(ref || gen) by hand for one pair of 2-class posteriors
    ref = np.log([[0.9, 0.1]])
    gen = np.log([[0.5, 0.5]])
    kl_ref_gen = 0.9 * np.log(0.9 / 0.5) + 0.1 * np.log(0.1 / 0.5)
    kl_gen_ref = 0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1)
    assert maths.kl_paired(gen, ref) == pytest.approx(kl_ref_gen)
    assert maths.kl_paired(ref, gen) == pytest.approx(kl_gen_ref)
    assert kl_ref_gen != pytest.approx(kl_gen_ref)


def test_kl_averages_over_pairs():
    ref = np.log([[0.9, 0.1], [0.5, 0.5]])
    gen = np.log([[0.5, 0.5], [0.5, 0.5]])
    one = 0.9 * np.log(0.9 / 0.5) + 0.1 * np.log(0.1 / 0.5)
    assert maths.kl_paired(gen, ref) == pytest.approx(one / 2)


def test_is_uniform_is_one_and_confident_distinct_is_class_count():
    assert maths.inception_score(np.zeros((100, 7)))[0] == pytest.approx(1.0)
    logits = np.full((60, 6), -1e4)
    logits[np.arange(60), np.arange(60) % 6] = 0.0
    # unshuffled, every split of 6 rows holds each class once: exactly 6
    mean, std = maths.inception_score(logits, splits=10, shuffle_seed=None)
    assert mean == pytest.approx(6.0, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    # av-benchmark shuffles (seed 2020): splits then hold at most 6 distinct classes
    assert 1.0 < maths.inception_score(logits, splits=10)[0] <= 6.0 + 1e-6


def test_is_confident_single_split():
    logits = np.full((12, 4), -1e4)
    logits[np.arange(12), np.arange(12) % 4] = 0.0
    assert maths.inception_score(logits, splits=1)[0] == pytest.approx(4.0, rel=1e-6)
    # one class only: confident but not diverse -> 1
    same = np.full((12, 4), -1e4)
    same[:, 2] = 0
    assert maths.inception_score(same, splits=1)[0] == pytest.approx(1.0)


def test_cosine_desync_and_distractor():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert maths.mean_cosine(a, a) == pytest.approx(1.0)
    assert maths.mean_cosine(a, -a) == pytest.approx(-1.0)
    logits = np.zeros((2, 21))
    logits[0, 10] = 5  # offset 0
    logits[1, 0] = 5  # offset -2 s
    assert maths.desync(logits) == pytest.approx(1.0)
    sim = np.array([[0.9, 0.2], [0.7, 0.4]])
    r = maths.target_vs_distractor(sim)
    assert r["accuracy"] == 0.5
    assert r["margin"] == pytest.approx(((0.9 - 0.2) + (0.4 - 0.7)) / 2)


def test_bad_inputs_are_input_errors():
    with pytest.raises(InputError):
        maths.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(InputError):
        maths.kl_paired(np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(InputError):
        maths.frechet_distance(np.full((4, 2), np.nan), np.zeros((4, 2)))
    with pytest.raises(InputError):
        maths.target_vs_distractor(np.zeros((1, 1)))
