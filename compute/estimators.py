"""Memorization, influence and consistency estimates from trial outcomes.

With M the (t, n) membership mask and C the (t, n') correctness on test examples,
the in-subset correct counts of every (train, test) pair are the matrix product
M^T C, and the held-out counts follow from C's column sums. The product runs over
blocks of training rows, so memory stays bounded for large n x n'.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

# Training rows per block of the influence product. A block of float32 results
# costs block_rows * n_test * 4 bytes for each of infl and its standard error.
DEFAULT_BLOCK_ROWS = 1024


@dataclass
class MemorizationEstimates:
    """Per training example: memorization, consistency score and their inputs."""

    mem: np.ndarray  # float64 (n,), NaN where missing
    mem_se: np.ndarray
    consistency: np.ndarray  # accuracy on i over trials that held i out
    consistency_se: np.ndarray
    in_trials: np.ndarray  # int64 (n,), trials whose subset contained i
    out_trials: np.ndarray

    @property
    def missing(self) -> np.ndarray:
        return np.isnan(self.mem)


def difference_of_means(
    correct_in: np.ndarray, in_trials: np.ndarray, correct_out: np.ndarray, out_trials: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return p_in - p_out and its standard error from two binomial counts.

    The standard error is sqrt(p_in (1 - p_in) / t_in + p_out (1 - p_out) / t_out).
    Entries with t_in == 0 or t_out == 0 are NaN in both outputs.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        p_in = correct_in / in_trials
        p_out = correct_out / out_trials
        estimate = p_in - p_out
        error = np.sqrt(p_in * (1 - p_in) / in_trials + p_out * (1 - p_out) / out_trials)
    undefined = (in_trials == 0) | (out_trials == 0)
    estimate = np.where(undefined, np.nan, estimate)
    error = np.where(undefined, np.nan, error)
    return estimate, error


def estimate_memorization(mask: np.ndarray, train_correct: np.ndarray) -> MemorizationEstimates:
    """Estimate mem and consistency of every training example from (t, n) booleans."""
    if mask.shape != train_correct.shape:
        raise ValueError(
            f"membership mask {mask.shape} and train correctness {train_correct.shape} differ"
        )
    trials = mask.shape[0]
    in_trials = mask.sum(axis=0, dtype=np.int64)
    out_trials = trials - in_trials
    correct_in = (mask & train_correct).sum(axis=0, dtype=np.int64)
    correct_out = train_correct.sum(axis=0, dtype=np.int64) - correct_in

    mem, mem_se = difference_of_means(correct_in, in_trials, correct_out, out_trials)
    with np.errstate(divide="ignore", invalid="ignore"):
        consistency = correct_out / out_trials
        consistency_se = np.sqrt(consistency * (1 - consistency) / out_trials)
    consistency = np.where(out_trials == 0, np.nan, consistency)
    consistency_se = np.where(out_trials == 0, np.nan, consistency_se)

    never_in = int((in_trials == 0).sum())
    never_out = int((out_trials == 0).sum())
    if never_in or never_out:
        logger.warning(
            "%d training examples were in no trial and %d in every trial; their "
            "memorization is missing, so run more trials to estimate it",
            never_in,
            never_out,
        )
    return MemorizationEstimates(mem, mem_se, consistency, consistency_se, in_trials, out_trials)


def iter_influence_blocks(
    mask: np.ndarray, test_correct: np.ndarray, block_rows: int = DEFAULT_BLOCK_ROWS
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield (first row, infl, infl_se) for blocks of training rows.

    Each block is float32 of shape (rows, n'), NaN for training examples that were
    in no trial or in every trial. The product runs in float32, which counts
    exactly up to 2**24 trials.
    """
    trials = mask.shape[0]
    if trials >= 2**24:
        raise ValueError(f"{trials} trials exceed the 2**24 that float32 counts exactly")
    if test_correct.shape[0] != trials:
        raise ValueError(
            f"membership mask has {trials} trials but test correctness has {test_correct.shape[0]}"
        )
    correct = test_correct.astype(np.float32)
    correct_total = correct.sum(axis=0, dtype=np.float64)
    for start in range(0, mask.shape[1], block_rows):
        members = mask[:, start : start + block_rows]
        in_trials = members.sum(axis=0, dtype=np.int64)[:, None]
        correct_in = members.T.astype(np.float32) @ correct
        correct_out = correct_total[None, :] - correct_in
        infl, infl_se = difference_of_means(
            correct_in.astype(np.float64), in_trials, correct_out, trials - in_trials
        )
        yield start, infl.astype(np.float32), infl_se.astype(np.float32)


def influence_matrix(mask: np.ndarray, test_correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the whole (n, n') influence and standard-error matrices, for small problems."""
    blocks = list(iter_influence_blocks(mask, test_correct))
    infl = np.concatenate([block[1] for block in blocks])
    infl_se = np.concatenate([block[2] for block in blocks])
    return infl, infl_se
