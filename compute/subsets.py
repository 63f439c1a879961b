"""Seeded draws of trial subsets and per-trial random streams.

Every random choice of trial k derives from (seed, k) alone, so a trial gives the
same subset, initial weights and minibatch order whichever shard, worker or batch
of models trains it. That is what lets an interrupted run resume exactly.
"""

from __future__ import annotations

import numpy as np
import torch

# Distinct streams per trial, so the subset draw and the weight init never share numbers.
STREAM_SUBSET = 0
STREAM_INIT = 1
STREAM_ORDER = 2


def trial_seed(seed: int, trial: int, stream: int, attempt: int = 0) -> int:
    """Return a 63-bit seed for one random stream of one attempt at a trial.

    A trial whose training failed is retried with attempt 1, 2, ...: a new draw
    that is still a function of (seed, trial) alone.
    """
    entropy = [seed, trial, stream] + ([attempt] if attempt else [])
    sequence = np.random.SeedSequence(entropy)
    return int(sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def draw_subset(seed: int, trial: int, n: int, m: int, attempt: int = 0) -> np.ndarray:
    """Return the sorted indices of trial k's subset: m of n, uniformly without replacement."""
    rng = np.random.default_rng(trial_seed(seed, trial, STREAM_SUBSET, attempt))
    return np.sort(rng.choice(n, size=m, replace=False))


def membership_mask(seed: int, trials: np.ndarray, n: int, m: int) -> np.ndarray:
    """Return the (len(trials), n) boolean membership mask of the given trials."""
    mask = np.zeros((len(trials), n), dtype=bool)
    for row, trial in enumerate(trials):
        mask[row, draw_subset(seed, int(trial), n, m)] = True
    return mask


def torch_generator(seed: int, trial: int, stream: int, attempt: int = 0) -> torch.Generator:
    """Return a CPU torch generator for one stream of one attempt at a trial."""
    return torch.Generator().manual_seed(trial_seed(seed, trial, stream, attempt))
