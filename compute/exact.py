"""Exact memorization and influence of a deterministic learner, by enumeration.

The subsampled estimators target the difference of two conditional means over
uniformly random size-m subsets. For a deterministic learner on a tiny training
set every subset can be enumerated, which gives those means exactly: the
reference that the estimators are tested against.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

# A learner maps the sorted indices of a subset to (train correctness (n,), test correctness (n',)).
Learner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

# Enumeration beyond this many subsets is too slow to be a test reference.
MAX_SUBSETS = 200_000


def exact_estimates(learner: Learner, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Return exact (mem (n,), infl (n, n')) over all C(n, m) subsets of size m."""
    count = math.comb(n, m)
    if count > MAX_SUBSETS:
        raise ValueError(f"C({n}, {m}) = {count} subsets exceed the limit of {MAX_SUBSETS}")

    masks, train_rows, test_rows = [], [], []
    for subset in itertools.combinations(range(n), m):
        indices = np.array(subset)
        train_correct, test_correct = learner(indices)
        mask = np.zeros(n, dtype=bool)
        mask[indices] = True
        masks.append(mask)
        train_rows.append(train_correct)
        test_rows.append(test_correct)
    mask = np.array(masks, dtype=np.float64)
    train = np.array(train_rows, dtype=np.float64)
    test = np.array(test_rows, dtype=np.float64)

    # Every example is in C(n-1, m-1) subsets and out of C(n-1, m).
    in_count, out_count = mask.sum(axis=0), (1 - mask).sum(axis=0)
    mem = (mask * train).sum(axis=0) / in_count - ((1 - mask) * train).sum(axis=0) / out_count
    infl = (mask.T @ test) / in_count[:, None] - ((1 - mask).T @ test) / out_count[:, None]
    return mem, infl
