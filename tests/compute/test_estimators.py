"""Estimators against exact values from enumerating every subset."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from compute.estimators import (
    difference_of_means,
    estimate_memorization,
    influence_matrix,
)
from compute.exact import exact_estimates
from compute.subsets import draw_subset, membership_mask

N_TRAIN, SUBSET = 10, 7


def nearest_neighbour_learner():
    """A deterministic 1-NN learner on a tiny 2-D problem with a mislabeled point."""
    rng = np.random.default_rng(7)
    x_train = rng.normal(size=(N_TRAIN, 2)) + np.repeat([[0, 0], [3, 0]], N_TRAIN // 2, axis=0)
    y_train = np.repeat([0, 1], N_TRAIN // 2)
    y_train[0] = 1  # a mislabeled example that only 1-NN on itself gets right
    x_test = rng.normal(size=(6, 2)) + np.repeat([[0, 0], [3, 0]], 3, axis=0)
    y_test = np.repeat([0, 1], 3)

    def learner(subset: np.ndarray):
        def predict(points):
            distances = ((points[:, None, :] - x_train[subset][None, :, :]) ** 2).sum(axis=2)
            return y_train[subset][distances.argmin(axis=1)]

        return predict(x_train) == y_train, predict(x_test) == y_test

    return learner


def sampled_outcomes(learner, trials: int, seed: int):
    mask = membership_mask(seed, np.arange(trials), N_TRAIN, SUBSET)
    rows = [learner(np.flatnonzero(row)) for row in mask]
    train = np.array([row[0] for row in rows])
    test = np.array([row[1] for row in rows])
    return mask, train, test


def test_subset_draw_exact_size_and_seeded():
    first = draw_subset(3, 11, 100, 70)
    again = draw_subset(3, 11, 100, 70)
    other = draw_subset(3, 12, 100, 70)
    assert len(first) == 70
    assert len(np.unique(first)) == 70
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_subset_draw_uniform_inclusion():
    mask = membership_mask(0, np.arange(4000), 20, 14)
    inclusion = mask.mean(axis=0)
    # Each example is in a subset with probability 0.7; 4000 draws give a standard error of 0.0072.
    assert np.all(np.abs(inclusion - 0.7) < 4 * math.sqrt(0.7 * 0.3 / 4000))


def test_memorization_within_standard_errors_of_exact():
    learner = nearest_neighbour_learner()
    exact_mem, _ = exact_estimates(learner, N_TRAIN, SUBSET)
    mask, train, _ = sampled_outcomes(learner, 3000, seed=1)
    estimates = estimate_memorization(mask, train)

    assert exact_mem[0] > 0.5, "the mislabeled example must be memorized"
    z = (estimates.mem - exact_mem) / np.maximum(estimates.mem_se, 1e-12)
    assert np.all(np.abs(z) < 4), f"z-scores {np.round(z, 2)}"


def test_influence_within_standard_errors_of_exact():
    learner = nearest_neighbour_learner()
    _, exact_infl = exact_estimates(learner, N_TRAIN, SUBSET)
    mask, _, test = sampled_outcomes(learner, 3000, seed=2)
    infl, infl_se = influence_matrix(mask, test)

    assert np.abs(exact_infl).max() > 0.05, "the problem must have some influence to find"
    exact_zero = exact_infl == 0
    z = (infl - exact_infl) / np.maximum(infl_se, 1e-12)
    assert np.all(np.abs(z[~exact_zero]) < 4.5), f"max |z| {np.abs(z[~exact_zero]).max():.2f}"


def test_standard_errors_match_spread_of_replicates():
    learner = nearest_neighbour_learner()
    subsets = list(itertools.combinations(range(N_TRAIN), SUBSET))
    masks = np.zeros((len(subsets), N_TRAIN), dtype=bool)
    for row, subset in enumerate(subsets):
        masks[row, list(subset)] = True
    correct = np.array([learner(np.array(subset))[0] for subset in subsets])
    p_in = (masks & correct).sum(axis=0) / masks.sum(axis=0)
    p_out = (~masks & correct).sum(axis=0) / (~masks).sum(axis=0)

    # Replicates of 1,000 uniform trials each; the learner is deterministic, so a
    # trial is a row of the table. The plug-in standard error is biased low when
    # a count is near 0 or t, so t is large enough for that bias to stay below 3%.
    trials, replicates = 1000, 300
    rng = np.random.default_rng(0)
    mems, ses = [], []
    for _ in range(replicates):
        rows = rng.integers(0, len(subsets), size=trials)
        estimates = estimate_memorization(masks[rows], correct[rows])
        mems.append(estimates.mem)
        ses.append(estimates.mem_se)
    mems, ses = np.array(mems), np.array(ses)
    ratio = SUBSET / N_TRAIN
    true_sd = np.sqrt(p_in * (1 - p_in) / (trials * ratio) + p_out * (1 - p_out) / (trials * (1 - ratio)))

    varied = true_sd > 0
    assert varied.sum() >= 3
    # 300 replicates know a standard deviation to about 4%.
    spread = mems[:, varied].std(axis=0) / true_sd[varied]
    reported = ses[:, varied].mean(axis=0) / true_sd[varied]
    assert np.all(np.abs(spread - 1) < 0.12), f"replicate spread / true SD {np.round(spread, 3)}"
    assert np.all(np.abs(reported - 1) < 0.05), f"mean reported SE / true SD {np.round(reported, 3)}"
    assert np.all(ses[:, ~varied] == 0)
    coverage = (np.abs(mems - (p_in - p_out)) <= 1.96 * ses)[:, varied].mean()
    assert 0.92 < coverage < 0.98, f"95% interval coverage {coverage:.3f}"


def test_memorization_missing_when_never_held_out():
    mask = np.array([[True, True], [True, False], [True, True]])
    correct = np.array([[True, True], [True, False], [False, True]])
    estimates = estimate_memorization(mask, correct)

    assert np.isnan(estimates.mem[0])
    assert np.isnan(estimates.mem_se[0])
    assert np.isnan(estimates.consistency[0])
    assert estimates.in_trials[0] == 3
    assert estimates.out_trials[0] == 0
    assert estimates.mem[1] == pytest.approx(1.0 - 0.0)


def test_difference_of_means_values():
    estimate, error = difference_of_means(
        np.array([3]), np.array([4]), np.array([1]), np.array([5])
    )
    assert estimate[0] == pytest.approx(0.75 - 0.2)
    assert error[0] == pytest.approx(math.sqrt(0.75 * 0.25 / 4 + 0.2 * 0.8 / 5))


def test_influence_blocks_match_whole_product():
    rng = np.random.default_rng(0)
    mask = rng.random((50, 30)) < 0.7
    test = rng.random((50, 8)) < 0.6
    whole, whole_se = influence_matrix(mask, test)

    from compute.estimators import iter_influence_blocks

    blocks = list(iter_influence_blocks(mask, test, block_rows=7))
    assert [start for start, _, _ in blocks] == list(range(0, 30, 7))
    assert np.array_equal(np.concatenate([b[1] for b in blocks]), whole, equal_nan=True)
    assert np.array_equal(np.concatenate([b[2] for b in blocks]), whole_se, equal_nan=True)

    # Direct definition for one pair.
    i, j = 4, 3
    expected = test[mask[:, i], j].mean() - test[~mask[:, i], j].mean()
    assert whole[i, j] == pytest.approx(expected, abs=1e-6)
