"""High-influence pairs: the selection above two thresholds, its summary and its pages.

A pair (i, j) is selected when mem_i >= mem_threshold, infl_ij >= infl_threshold and,
with `same_class`, label(i) == label(j). Every filter reads the `influences` table
alone, which carries copies of both labels and of mem_i for this purpose.
"""

from __future__ import annotations

from itertools import chain

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend import urls
from backend.errors import not_found
from backend.queries.examples import check_index, read_example
from backend.schemas import (
    HistogramPublic,
    PairDetailPublic,
    PairPublic,
    PairsPublic,
    SelectionSummary,
    SelectionThresholds,
)
from backend.store.models import Influence, Run

# The thresholds of Feldman & Zhang (2020) for their high-influence pairs.
DEFAULT_MEM_THRESHOLD = 0.25
DEFAULT_INFL_THRESHOLD = 0.15
DEFAULT_SELECTION = SelectionThresholds(
    mem_threshold=DEFAULT_MEM_THRESHOLD, infl_threshold=DEFAULT_INFL_THRESHOLD
)
HISTOGRAM_BINS = 20


def selection_filters(run: Run, selection: SelectionThresholds) -> list:
    filters = [
        Influence.run_id == run.id,
        Influence.infl >= selection.infl_threshold,
        Influence.train_mem >= selection.mem_threshold,
    ]
    if selection.same_class:
        filters.append(Influence.train_label == Influence.test_label)
    if selection.label is not None:
        filters.append(Influence.train_label == selection.label)
    return filters


def _selected_rows(session: Session, run: Run, selection: SelectionThresholds) -> np.ndarray:
    """Return (train_index, test_index, infl) of every selected pair as a float array.

    One index scan feeds the summary and the histogram, which numpy computes; three
    aggregate queries would scan the same rows three times.
    """
    result = session.execute(
        select(Influence.train_index, Influence.test_index, Influence.infl)
        .where(*selection_filters(run, selection))
    )
    # fromiter over flat values: numpy converts a list of Row objects ten times slower.
    values = np.fromiter(chain.from_iterable(result), dtype=np.float64)
    return values.reshape(-1, 3)


def summarize_rows(rows: np.ndarray) -> SelectionSummary:
    """Count pairs, unique test and training examples, and tests with exactly one pair."""
    _, per_test = np.unique(rows[:, 1], return_counts=True)
    return SelectionSummary(
        pairs=len(rows),
        test_examples=len(per_test),
        train_examples=len(np.unique(rows[:, 0])),
        single_train_test_examples=int((per_test == 1).sum()),
    )


def summarize_selection(
    session: Session, run: Run, selection: SelectionThresholds
) -> SelectionSummary:
    """Summarize the pairs that pass the selection's thresholds and filters."""
    return summarize_rows(_selected_rows(session, run, selection))


def influence_histogram(rows: np.ndarray, low: float) -> HistogramPublic:
    """Histogram of the selected influences in HISTOGRAM_BINS bins from `low` to 1."""
    high = max(1.0, low + 1e-6)
    counts, edges = np.histogram(np.clip(rows[:, 2], low, high), HISTOGRAM_BINS, (low, high))
    return HistogramPublic(
        edges=[round(float(edge), 10) for edge in edges], counts=counts.tolist()
    )


def pair_public(run: Run, row) -> PairPublic:
    return PairPublic(
        train_index=row.train_index,
        test_index=row.test_index,
        train_label=row.train_label,
        test_label=row.test_label,
        train_mem=row.train_mem,
        infl=row.infl,
        infl_se=row.infl_se,
        train_image_url=urls.image(run.name, "train", row.train_index),
        test_image_url=urls.image(run.name, "test", row.test_index),
        pair_url=urls.pair_page(run.name, row.train_index, row.test_index),
    )


def select_pairs(
    session: Session, run: Run, selection: SelectionThresholds, limit: int, offset: int
) -> list[PairPublic]:
    """Return one page of the selected pairs, highest influence first."""
    rows = session.execute(
        select(
            Influence.train_index, Influence.test_index, Influence.train_label,
            Influence.test_label, Influence.train_mem, Influence.infl, Influence.infl_se,
        )
        .where(*selection_filters(run, selection))
        .order_by(Influence.infl.desc(), Influence.train_index, Influence.test_index)
        .limit(limit)
        .offset(offset)
    ).all()
    return [pair_public(run, row) for row in rows]


def read_pairs(
    session: Session, run: Run, selection: SelectionThresholds, limit: int, offset: int
) -> PairsPublic:
    """Return the summary, influence histogram and one page of a selection."""
    rows = _selected_rows(session, run, selection)
    return PairsPublic(
        run=run.name,
        selection=selection,
        limit=limit,
        offset=offset,
        summary=summarize_rows(rows),
        histogram=influence_histogram(rows, selection.infl_threshold),
        pairs=select_pairs(session, run, selection, limit, offset),
    )


def read_pair(session: Session, run: Run, train_index: int, test_index: int) -> PairDetailPublic:
    """Return one stored pair with both examples, or 404 if its influence was not stored."""
    check_index(run, "train", train_index)
    check_index(run, "test", test_index)
    row = session.execute(
        select(Influence.infl, Influence.infl_se, Influence.train_mem,
               Influence.train_label, Influence.test_label)
        .where(
            Influence.run_id == run.id,
            Influence.train_index == train_index,
            Influence.test_index == test_index,
        )
    ).one_or_none()
    if row is None:
        raise not_found(
            f"run {run.name!r} stores no influence of train {train_index} on test {test_index}: "
            f"it is below the stored floor {run.influence_floor} and outside both examples' "
            f"top {run.influence_top_k}",
            {"train_index": train_index, "test_index": test_index},
        )

    selected = (
        row.train_mem is not None
        and row.train_mem >= DEFAULT_MEM_THRESHOLD
        and row.infl >= DEFAULT_INFL_THRESHOLD
        and row.train_label == row.test_label
    )
    return PairDetailPublic(
        run=run.name,
        train=read_example(session, run, "train", train_index),
        test=read_example(session, run, "test", test_index),
        infl=row.infl,
        infl_se=row.infl_se,
        selected_by_default=selected,
        default_selection=DEFAULT_SELECTION,
    )


