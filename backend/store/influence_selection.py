"""Selection of the influences the store keeps out of the full (n_train, n_test) matrix.

A pair (i, j) is kept when infl_ij >= floor, or when it is among the top_k largest
or the top_k most negative influences of training example i (its row) or of test
example j (its column). Missing (NaN) influences are never kept. Ties at the k-th
place are broken arbitrarily. The matrix is read in blocks of rows, so memory grows
with the kept pairs and n_test, not with n_train * n_test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

SIGNS = (1, -1)


@dataclass
class KeptPairs:
    """Kept pairs as parallel arrays; infl_se is NaN where the standard error is missing."""

    train_index: np.ndarray  # int64
    test_index: np.ndarray  # int64
    infl: np.ndarray  # float32
    infl_se: np.ndarray  # float32

    def __len__(self) -> int:
        return len(self.train_index)


def pair_keys(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Return one int64 per (train, test) pair that sorts in (train, test) order."""
    return train.astype(np.int64) * (1 << 32) + test.astype(np.int64)


def contains_sorted(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """Mark the needles found in `haystack`, an ascending array."""
    if len(haystack) == 0:
        return np.zeros(len(needles), dtype=bool)
    positions = np.minimum(np.searchsorted(haystack, needles), len(haystack) - 1)
    return haystack[positions] == needles


def top_rows_mask(block: np.ndarray, top_k: int) -> np.ndarray:
    """Mark the top_k largest and the top_k most negative finite values of every row."""
    mask = np.zeros(block.shape, dtype=bool)
    k = min(top_k, block.shape[1])
    if k == 0:
        return mask

    missing = np.isnan(block)
    has_missing = bool(missing.any())
    for keys in (block, -block):
        if has_missing:
            keys = np.where(missing, np.float32(-np.inf), keys)
        rows, columns = row_top_columns(keys, k)
        mask[rows, columns] = True

    # A row with fewer than 2 * k finite values would otherwise mark some of its NaNs.
    if has_missing:
        mask &= ~missing
    return mask


def row_top_columns(keys: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (row, column) of the k largest keys of every row."""
    n_rows, n_columns = keys.shape
    if n_columns < 64 * k:
        columns = np.argpartition(keys, n_columns - k, axis=1)[:, n_columns - k:]
        return np.repeat(np.arange(n_rows), k), columns.ravel()

    # The k-th largest key of every 8th column is a lower bound of the row's k-th
    # largest, and it leaves about 8 * k candidates per row: a partition of those is
    # much cheaper than one of the whole row.
    sample = keys[:, ::8]
    bound = np.partition(sample, sample.shape[1] - k, axis=1)[:, sample.shape[1] - k]
    flat = np.flatnonzero(keys >= bound[:, None])
    rows, columns = np.divmod(flat, n_columns)

    positions, counts = group_positions(rows, n_rows)
    width = int(counts.max())
    padded_keys = np.full((n_rows, width), -np.inf, dtype=np.float32)
    padded_keys[rows, positions] = keys.ravel()[flat]
    padded_columns = np.full((n_rows, width), -1, dtype=np.int64)
    padded_columns[rows, positions] = columns

    top = np.argpartition(padded_keys, width - k, axis=1)[:, width - k:]
    picked = np.take_along_axis(padded_columns, top, axis=1).ravel()
    picked_rows = np.repeat(np.arange(n_rows), k)
    # Padding (column -1) is picked only in place of a -inf key, which is missing anyway.
    real = picked >= 0
    return picked_rows[real], picked[real]


def group_positions(groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Return each entry's position within its group, and the size of every group."""
    order = np.argsort(groups, kind="stable")
    counts = np.bincount(groups, minlength=n_groups)
    starts = np.cumsum(counts) - counts
    positions = np.empty(len(groups), dtype=np.int64)
    positions[order] = np.arange(len(groups)) - starts[groups[order]]
    return positions, counts


class ColumnTops:
    """The running top_k largest and most negative influences of every test example.

    For each sign the state is a (top_k, n_test) array of sorting keys (sign * infl,
    NaN as -inf, larger is better) with the train rows and standard errors beside it.
    """

    def __init__(self, n_test: int, top_k: int) -> None:
        self.n_test = n_test
        self.top_k = top_k
        self.keys = {sign: np.empty((0, n_test), np.float32) for sign in SIGNS}
        self.rows = {sign: np.empty((0, n_test), np.int64) for sign in SIGNS}
        self.infl_se = {sign: np.empty((0, n_test), np.float32) for sign in SIGNS}

    def update(self, start: int, infl: np.ndarray, infl_se: np.ndarray) -> None:
        """Merge a block of rows, the first of which is training example `start`."""
        if self.top_k == 0:
            return
        missing = np.isnan(infl)
        has_missing = bool(missing.any())
        for sign in SIGNS:
            keys = infl if sign == 1 else -infl
            if has_missing:
                keys = np.where(missing, np.float32(-np.inf), keys)
            if self.keys[sign].shape[0] < self.top_k:
                self._merge_dense(sign, start, keys, infl_se)
            else:
                self._merge_sparse(sign, start, keys, infl_se)

    def _merge_dense(self, sign, start, keys, infl_se) -> None:
        rows = np.broadcast_to(np.arange(start, start + keys.shape[0])[:, None], keys.shape)
        keys = np.concatenate([self.keys[sign], keys])
        k = min(self.top_k, keys.shape[0])
        picked = np.argpartition(-keys, k - 1, axis=0)[:k]
        self.keys[sign] = np.take_along_axis(keys, picked, axis=0)
        self.rows[sign] = np.take_along_axis(
            np.concatenate([self.rows[sign], rows]), picked, axis=0
        )
        self.infl_se[sign] = np.take_along_axis(
            np.concatenate([self.infl_se[sign], infl_se]), picked, axis=0
        )

    def _merge_sparse(self, sign, start, keys, infl_se) -> None:
        # Once a column holds k values, only a value above its current k-th best can
        # enter, and after the first blocks few do: merge just those.
        threshold = self.keys[sign].min(axis=0)
        # flatnonzero and divmod are several times faster than a 2-D nonzero.
        flat = np.flatnonzero(keys > threshold)
        if len(flat) == 0:
            return
        candidate_rows, candidate_columns = np.divmod(flat, self.n_test)
        touched = np.zeros(self.n_test, dtype=bool)
        touched[candidate_columns] = True
        columns = np.flatnonzero(touched)
        group_of_column = np.cumsum(touched) - 1
        groups = group_of_column[candidate_columns]
        positions, counts = group_positions(groups, len(columns))

        # One row per touched column: its k current values, then its candidates.
        k = self.top_k
        width = k + int(counts.max())
        slots = (groups, k + positions)
        padded_keys = np.full((len(columns), width), -np.inf, dtype=np.float32)
        padded_keys[:, :k] = self.keys[sign][:, columns].T
        padded_keys[slots] = keys.ravel()[flat]
        padded_rows = np.full((len(columns), width), -1, dtype=np.int64)
        padded_rows[:, :k] = self.rows[sign][:, columns].T
        padded_rows[slots] = candidate_rows + start
        padded_se = np.full((len(columns), width), np.nan, dtype=np.float32)
        padded_se[:, :k] = self.infl_se[sign][:, columns].T
        padded_se[slots] = infl_se.ravel()[flat]

        top = np.argpartition(padded_keys, width - k, axis=1)[:, width - k:]
        self.keys[sign][:, columns] = np.take_along_axis(padded_keys, top, axis=1).T
        self.rows[sign][:, columns] = np.take_along_axis(padded_rows, top, axis=1).T
        self.infl_se[sign][:, columns] = np.take_along_axis(padded_se, top, axis=1).T

    def pairs(self) -> KeptPairs:
        """Return every finite column-top pair once."""
        parts = {"train": [], "test": [], "infl": [], "infl_se": []}
        for sign in SIGNS:
            finite = np.isfinite(self.keys[sign])
            parts["train"].append(self.rows[sign][finite])
            parts["test"].append(np.nonzero(finite)[1])
            parts["infl"].append(sign * self.keys[sign][finite])
            parts["infl_se"].append(self.infl_se[sign][finite])
        train, test, infl, infl_se = (np.concatenate(parts[key]) for key in parts)

        # A column with fewer than 2 * top_k finite values has pairs in both lists.
        _, first = np.unique(pair_keys(train, test), return_index=True)
        return KeptPairs(train[first], test[first], infl[first], infl_se[first])


def iter_kept_pairs(
    blocks: Iterator[tuple[int, np.ndarray, np.ndarray]],
    n_test: int,
    floor: float,
    top_k: int,
) -> Iterator[KeptPairs]:
    """Yield the kept pairs of each block of rows, then the remaining column tops.

    `blocks` yields (first train index, infl block, infl_se block) as
    `RunDir.iter_influence_rows` does. Every kept pair is yielded exactly once.
    """
    column_tops = ColumnTops(n_test, top_k)
    emitted = []
    for start, infl, infl_se in blocks:
        with np.errstate(invalid="ignore"):
            keep = infl >= floor
        keep |= top_rows_mask(infl, top_k)
        column_tops.update(start, infl, infl_se)

        rows, columns = np.divmod(np.flatnonzero(keep), n_test)
        emitted.append(pair_keys(rows + start, columns))
        # Keys come out ascending: blocks go down the rows, flatnonzero goes row-major.
        yield KeptPairs(rows + start, columns, infl[rows, columns], infl_se[rows, columns])

    # Column tops are known only after the last block, and most were kept already.
    tops = column_tops.pairs()
    fresh = ~contains_sorted(
        np.concatenate(emitted) if emitted else np.empty(0, np.int64),
        pair_keys(tops.train_index, tops.test_index),
    )
    yield KeptPairs(
        tops.train_index[fresh], tops.test_index[fresh], tops.infl[fresh], tops.infl_se[fresh]
    )
