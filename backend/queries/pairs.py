"""High-influence pairs: the selection above two thresholds, its summary and its pages.

A pair (i, j) is selected when mem_i >= mem_threshold, infl_ij >= infl_threshold and,
with `same_class`, label(i) == label(j). Selections filter the run's influences held
in memory (see influence_cache.py); single pairs are read from the database.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend import urls
from backend.errors import ApiError, not_found
from backend.queries.examples import check_index, check_label, read_example
from backend.queries.influence_cache import run_influences
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
HISTOGRAM_BINS = 20


def influence_cut(threshold: float) -> float:
    """Return an influence threshold as the float32 value that stored influences meet.

    Influences are float32 estimates, so 1/50 is stored as 0.0199999996. The load
    keeps it at a floor of 0.02, compared in float32, and a selection at 0.02
    must select it too.
    """
    return float(np.float32(threshold))


def default_selection(run: Run) -> SelectionThresholds:
    """Return the run's default selection: Feldman & Zhang's thresholds, raised to its floor.

    A run loaded with a floor above 0.15 stores no pair between 0.15 and its floor,
    so its default selection starts at the floor.
    """
    return SelectionThresholds(
        mem_threshold=DEFAULT_MEM_THRESHOLD,
        infl_threshold=max(DEFAULT_INFL_THRESHOLD, run.influence_floor),
    )


def check_selection(run: Run, selection: SelectionThresholds) -> None:
    """Raise a 422 ApiError for a selection that the run's stored influences cannot serve.

    A run keeps only the influences at or above its floor (and each example's
    largest ones), so a lower threshold would count too few pairs.
    """
    if selection.label is not None:
        check_label(run, selection.label, status=422)
    floor = run.influence_floor
    if influence_cut(selection.infl_threshold) < influence_cut(floor):
        raise ApiError(
            422,
            f"infl_threshold {selection.infl_threshold} is below {floor}, the lowest "
            f"influence stored for run {run.name!r}, so pairs below {floor} would be "
            f"missing; use infl_threshold >= {floor}, or load the run again with a lower "
            "--influence-floor",
            {"infl_threshold": selection.infl_threshold, "influence_floor": floor},
        )


def selection_filters(run: Run, selection: SelectionThresholds) -> list:
    filters = [
        Influence.run_id == run.id,
        Influence.infl >= influence_cut(selection.infl_threshold),
        Influence.train_mem >= selection.mem_threshold,
    ]
    if selection.same_class:
        filters.append(Influence.train_label == Influence.test_label)
    if selection.label is not None:
        filters.append(Influence.train_label == selection.label)
    return filters


def _selection(session: Session, run: Run, selection: SelectionThresholds):
    influences = run_influences(session, run)
    positions = influences.select(
        selection.mem_threshold, influence_cut(selection.infl_threshold), selection.label,
        selection.same_class,
    )
    return influences, positions


def summarize_positions(influences, positions: np.ndarray, n_test: int) -> SelectionSummary:
    """Count pairs, unique test and training examples, tests with exactly one pair,
    pairs with a standard error, and pairs whose influence exceeds twice it.
    """
    per_test = np.bincount(influences.test_index[positions], minlength=n_test)
    infl_se = influences.infl_se[positions]
    above = influences.infl[positions] > 2 * infl_se
    return SelectionSummary(
        pairs=len(positions),
        test_examples=int((per_test > 0).sum()),
        train_examples=len(np.unique(influences.train_index[positions])),
        single_train_test_examples=int((per_test == 1).sum()),
        pairs_with_se=int(np.count_nonzero(~np.isnan(infl_se))),
        pairs_above_two_se=int(np.count_nonzero(above)),
    )


def summarize_selection(
    session: Session, run: Run, selection: SelectionThresholds
) -> SelectionSummary:
    """Summarize the pairs that pass the selection's thresholds and filters."""
    influences, positions = _selection(session, run, selection)
    return summarize_positions(influences, positions, run.n_test)


def influence_histogram(values: np.ndarray, low: float) -> HistogramPublic:
    """Histogram of the selected influences in HISTOGRAM_BINS bins from `low` to 1."""
    high = max(1.0, low + 1e-6)
    counts, edges = np.histogram(np.clip(values, low, high), HISTOGRAM_BINS, (low, high))
    return HistogramPublic(
        edges=[round(float(edge), 10) for edge in edges], counts=counts.tolist()
    )


def _optional(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def select_pairs(run: Run, influences, positions: np.ndarray) -> list[PairPublic]:
    """Return the pairs at the given positions of the cached influences."""
    pairs = []
    for position in positions:
        train_index = int(influences.train_index[position])
        test_index = int(influences.test_index[position])
        pairs.append(PairPublic(
            train_index=train_index,
            test_index=test_index,
            train_label=int(influences.train_label[position]),
            test_label=int(influences.test_label[position]),
            train_mem=_optional(influences.train_mem[position]),
            infl=float(influences.infl[position]),
            infl_se=_optional(influences.infl_se[position]),
            train_image_url=urls.image(run.name, "train", train_index),
            test_image_url=urls.image(run.name, "test", test_index),
            pair_url=urls.pair_page(run.name, train_index, test_index),
        ))
    return pairs


def read_pairs(
    session: Session, run: Run, selection: SelectionThresholds, limit: int, offset: int
) -> PairsPublic:
    """Return the summary, influence histogram and one page of a selection."""
    influences, positions = _selection(session, run, selection)
    return PairsPublic(
        run=run.name,
        selection=selection,
        limit=limit,
        offset=offset,
        summary=summarize_positions(influences, positions, run.n_test),
        histogram=influence_histogram(influences.infl[positions], selection.infl_threshold),
        pairs=select_pairs(run, influences, positions[offset : offset + limit]),
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
            f"it is below the stored floor {run.influence_floor} and not among the "
            f"{run.influence_top_k} largest or most negative influences of either example; "
            "reload the run with a lower 'longtail load --influence-floor' to store it",
            {"train_index": train_index, "test_index": test_index},
        )

    default = default_selection(run)
    selected = (
        row.train_mem is not None
        and row.train_mem >= default.mem_threshold
        and row.infl >= influence_cut(default.infl_threshold)
        and row.train_label == row.test_label
    )
    return PairDetailPublic(
        run=run.name,
        train=read_example(session, run, "train", train_index),
        test=read_example(session, run, "test", test_index),
        infl=row.infl,
        infl_se=row.infl_se,
        selected_by_default=selected,
        default_selection=default,
    )


