"""Which influences are kept, against a brute-force selection."""

from __future__ import annotations

import numpy as np
import pytest

from backend.store.influence_selection import iter_kept_pairs


def brute_force_kept(matrix: np.ndarray, floor: float, top_k: int) -> np.ndarray:
    """Mark kept pairs one row and one column at a time, by full sorts."""
    finite = ~np.isnan(matrix)
    kept = np.where(finite, matrix, -np.inf) >= floor
    for axis in (0, 1):
        lines = matrix if axis == 1 else matrix.T
        marks = kept if axis == 1 else kept.T
        for line, mark in zip(lines, marks):
            positions = np.flatnonzero(~np.isnan(line))
            by_value = positions[np.argsort(line[positions])]
            mark[by_value[:top_k]] = True
            mark[by_value[len(by_value) - top_k:] if top_k else []] = True
    return kept


def select(matrix, infl_se, floor, top_k, block_rows):
    blocks = (
        (start, matrix[start:start + block_rows], infl_se[start:start + block_rows])
        for start in range(0, len(matrix), block_rows)
    )
    return list(iter_kept_pairs(blocks, matrix.shape[1], floor, top_k))


@pytest.mark.parametrize("seed", range(40))
def test_selection_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_train = int(rng.integers(1, 50))
    # Wide rows take the sampled path of the row selection.
    n_test = int(rng.integers(1, 40) * rng.choice([1, 1, 30]))
    top_k = int(rng.integers(0, 6))
    floor = float(rng.uniform(-0.1, 0.4))
    # Continuous values, so no ties make the expected set ambiguous.
    matrix = rng.normal(0, 0.2, (n_train, n_test)).astype(np.float32)
    matrix[rng.random(matrix.shape) < rng.uniform(0, 0.5)] = np.nan
    infl_se = rng.uniform(0, 0.1, matrix.shape).astype(np.float32)

    parts = select(matrix, infl_se, floor, top_k, block_rows=int(rng.integers(1, 12)))

    train = np.concatenate([part.train_index for part in parts])
    test = np.concatenate([part.test_index for part in parts])
    kept = np.zeros(matrix.shape, dtype=bool)
    kept[train, test] = True
    assert len(train) == kept.sum(), "a pair was yielded twice"
    assert np.array_equal(kept, brute_force_kept(matrix, floor, top_k))
    assert np.array_equal(np.concatenate([part.infl for part in parts]), matrix[train, test])
    assert np.array_equal(np.concatenate([part.infl_se for part in parts]), infl_se[train, test])


def test_selection_skips_missing_rows():
    matrix = np.full((3, 4), np.nan, dtype=np.float32)
    matrix[1] = [0.5, -0.5, 0.0, 0.01]

    parts = select(matrix, np.zeros_like(matrix), floor=0.02, top_k=1, block_rows=2)

    pairs = {
        (int(i), int(j)) for part in parts for i, j in zip(part.train_index, part.test_index)
    }
    # Row 1: 0.5 (floor and top), -0.5 (most negative); each column's only value.
    assert pairs == {(1, 0), (1, 1), (1, 2), (1, 3)}
