"""Every stored influence of a run, held in memory as numpy arrays.

A slider move requests the summary, histogram and first page of a new selection.
Scanning the influences table for that costs time in proportion to the selected
rows (about 0.5 s for a million in SQLite), while filtering arrays that are
already sorted by influence takes milliseconds. The top influences of one example
come from the same arrays, grouped by example, so they need no query either. The
arrays are read once per run and dropped when the run is reloaded, because the
cache key includes `loaded_at`.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from itertools import chain

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.store.models import Influence, Run

logger = logging.getLogger(__name__)

# Runs whose influences stay cached; a CIFAR-100-size run of 1,000,000 stored
# influences takes about 64 MB (seven 8-byte columns and two 4-byte orders).
CACHED_RUNS = 4

COLUMNS = (
    Influence.train_index, Influence.test_index, Influence.infl, Influence.infl_se,
    Influence.train_mem, Influence.train_label, Influence.test_label,
)


@dataclass(frozen=True)
class RunInfluences:
    """Stored influences of one run, sorted by infl descending, then train and test index."""

    train_index: np.ndarray
    test_index: np.ndarray
    infl: np.ndarray
    infl_se: np.ndarray
    train_mem: np.ndarray  # NaN where the training example has no estimate
    train_label: np.ndarray
    test_label: np.ndarray
    # Positions grouped by train (test) index, in influence order within each group;
    # the group of example i is by_train[train_starts[i]:train_starts[i + 1]].
    by_train: np.ndarray
    train_starts: np.ndarray
    by_test: np.ndarray
    test_starts: np.ndarray

    def example_positions(self, split: str, index: int) -> np.ndarray:
        """Return the positions of one example's influences, highest influence first.

        Ties keep the global order, so they go by the other example's index.
        """
        if split == "train":
            return self.by_train[self.train_starts[index] : self.train_starts[index + 1]]
        return self.by_test[self.test_starts[index] : self.test_starts[index + 1]]

    def select(
        self, mem_threshold: float, infl_threshold: float, label: int | None, same_class: bool
    ) -> np.ndarray:
        """Return the positions of the selected pairs, in influence order."""
        # infl is sorted descending, so its threshold keeps a prefix.
        count = int(np.searchsorted(-self.infl, -infl_threshold, side="right"))
        keep = self.train_mem[:count] >= mem_threshold
        if same_class:
            keep &= self.train_label[:count] == self.test_label[:count]
        if label is not None:
            keep &= self.train_label[:count] == label
        return np.flatnonzero(keep)


_cache: OrderedDict[tuple, RunInfluences] = OrderedDict()
_lock = threading.Lock()


def run_key(session: Session, run: Run) -> tuple:
    """Return the key of a run's cached data: it changes when the run is reloaded."""
    # Run ids restart in every database, and one process may serve several.
    return (session.get_bind().url.render_as_string(), run.id, run.name, run.loaded_at)


def _group(index: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return positions stably sorted by `index`, and where each index's group starts."""
    # A stable sort keeps the influence order inside every group.
    order = np.argsort(index, kind="stable").astype(np.int32)
    starts = np.searchsorted(index[order], np.arange(size + 1))
    return order, starts


def _read(session: Session, run: Run) -> RunInfluences:
    result = session.execute(select(*COLUMNS).where(Influence.run_id == run.id))
    flat = np.fromiter(
        chain.from_iterable(
            (row[0], row[1], row[2], np.nan if row[3] is None else row[3],
             np.nan if row[4] is None else row[4], row[5], row[6])
            for row in result
        ),
        dtype=np.float64,
    ).reshape(-1, len(COLUMNS))
    order = np.lexsort((flat[:, 1], flat[:, 0], -flat[:, 2]))
    flat = flat[order]
    train_index = flat[:, 0].astype(np.int64)
    test_index = flat[:, 1].astype(np.int64)
    by_train, train_starts = _group(train_index, run.n_train)
    by_test, test_starts = _group(test_index, run.n_test)
    return RunInfluences(
        train_index=train_index,
        test_index=test_index,
        infl=flat[:, 2].copy(),
        infl_se=flat[:, 3].copy(),
        train_mem=flat[:, 4].copy(),
        train_label=flat[:, 5].astype(np.int64),
        test_label=flat[:, 6].astype(np.int64),
        by_train=by_train,
        train_starts=train_starts,
        by_test=by_test,
        test_starts=test_starts,
    )


def run_influences(session: Session, run: Run) -> RunInfluences:
    """Return the cached influences of a run, reading them on first use."""
    key = run_key(session, run)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    influences = _read(session, run)
    logger.info("cached %d influences of run %s", len(influences.infl), run.name)
    with _lock:
        _cache[key] = influences
        _cache.move_to_end(key)
        while len(_cache) > CACHED_RUNS:
            _cache.popitem(last=False)
    return influences
