"""Every stored influence of a run, held in memory as numpy arrays for slider moves.

A slider move asks for the summary, histogram and first page of a new selection.
Scanning the influences table for that costs time in proportion to the selected
rows (about 0.5 s for a million in SQLite), while filtering arrays that are
already sorted by influence takes milliseconds. The arrays are read once per run
and dropped when the run is reloaded, because the cache key includes `loaded_at`.
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
# influences takes about 30 MB.
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
    return RunInfluences(
        train_index=flat[:, 0].astype(np.int64),
        test_index=flat[:, 1].astype(np.int64),
        infl=flat[:, 2].copy(),
        infl_se=flat[:, 3].copy(),
        train_mem=flat[:, 4].copy(),
        train_label=flat[:, 5].astype(np.int64),
        test_label=flat[:, 6].astype(np.int64),
    )


def run_influences(session: Session, run: Run) -> RunInfluences:
    """Return the cached influences of a run, reading them on first use."""
    # Run ids restart in every database, and one process may serve several.
    key = (session.get_bind().url.render_as_string(), run.id, run.name, run.loaded_at)
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
