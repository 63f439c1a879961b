"""Examples and their top influences: the example pages and their JSON twins."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from backend import urls
from backend.errors import ApiError, not_found
from backend.queries.influence_cache import run_influences, run_key
from backend.schemas import ExamplePublic, InfluencePublic, InfluencesPublic
from backend.store.models import Example, Run, RunClass

# Every column of an example except the image bytes, which only the image route reads.
EXAMPLE_COLUMNS = (
    Example.split,
    Example.index,
    Example.label,
    Example.mem,
    Example.mem_se,
    Example.consistency,
    Example.consistency_se,
    Example.in_trials,
    Example.out_trials,
    Example.accuracy,
    Example.thumbnail.is_not(None).label("has_image"),
)


# Class names of recently served runs, by run_key. Loading run.classes on every
# request cost about 4 ms for 100 classes (profiled on a 2-core machine).
_class_names: OrderedDict[tuple, dict[int, str]] = OrderedDict()
CACHED_CLASS_NAMES = 64


def class_names(run: Run) -> dict[int, str]:
    """Return {label: class name} of a run that belongs to a session."""
    session = object_session(run)
    key = run_key(session, run)
    names = _class_names.get(key)
    if names is None:
        rows = session.execute(
            select(RunClass.label, RunClass.name).where(RunClass.run_id == run.id)
        )
        names = {label: name for label, name in rows}
        _class_names[key] = names
        while len(_class_names) > CACHED_CLASS_NAMES:
            _class_names.popitem(last=False)
    return names


def check_label(run: Run, label: int, status: int = 404) -> str:
    """Return the class name of `label`, or raise naming the labels that exist."""
    names = class_names(run)
    if label not in names:
        raise ApiError(
            status,
            f"run {run.name!r} has no class with label {label}; "
            f"labels are {min(names, default=0)}..{max(names, default=-1)}",
            {"label": label},
        )
    return names[label]


def check_index(run: Run, split: str, index: int) -> int:
    size = run.n_train if split == "train" else run.n_test
    if not 0 <= index < size:
        raise not_found(
            f"run {run.name!r} has no {split} example {index}; "
            f"{split} indices are 0..{size - 1}",
            {"split": split, "index": index},
        )
    return index


def example_public(run: Run, row, names: dict[int, str]) -> ExamplePublic:
    return ExamplePublic(
        split=row.split,
        index=row.index,
        label=row.label,
        class_name=names.get(row.label, str(row.label)),
        mem=row.mem,
        mem_se=row.mem_se,
        consistency=row.consistency,
        consistency_se=row.consistency_se,
        in_trials=row.in_trials,
        out_trials=row.out_trials,
        accuracy=row.accuracy,
        has_image=bool(row.has_image),
        image_url=urls.image(run.name, row.split, row.index),
        page_url=urls.example_page(run.name, row.split, row.index),
    )


def read_example(session: Session, run: Run, split: str, index: int) -> ExamplePublic:
    """Return one example, or raise 404 naming the valid index range."""
    check_index(run, split, index)
    row = session.execute(
        select(*EXAMPLE_COLUMNS).where(
            Example.run_id == run.id, Example.split == split, Example.index == index
        )
    ).one_or_none()
    if row is None:
        raise not_found(
            f"{split} example {index} of run {run.name!r} is not in the database; "
            "reload the run with 'longtail load'",
            {"split": split, "index": index},
        )
    return example_public(run, row, class_names(run))


def read_examples(
    session: Session, run: Run, split: str, indices: Iterable[int]
) -> dict[int, ExamplePublic]:
    """Return the examples of `split` with the given indices, keyed by index."""
    wanted = sorted(set(indices))
    if not wanted:
        return {}
    rows = session.execute(
        select(*EXAMPLE_COLUMNS).where(
            Example.run_id == run.id, Example.split == split, Example.index.in_(wanted)
        )
    ).all()
    names = class_names(run)
    return {row.index: example_public(run, row, names) for row in rows}


def read_influences(
    session: Session, run: Run, split: str, index: int, limit: int, order: str = "desc"
) -> InfluencesPublic:
    """Return the stored influences of one example, highest first, or lowest with "asc".

    For a training example these are the test examples it helps most; for a test
    example, the training examples that help it most. With "asc", they are the
    ones it hurts most, or that hurt it most, among the most negative influences
    that the run stores. They come from the run's cached influences, so the first
    request after a start or a reload reads them all.
    """
    example = read_example(session, run, split, index)
    influences = run_influences(session, run)
    positions = influences.example_positions(split, index)
    exact = exactly_ranked(
        influences.infl[positions], run.influence_floor, run.influence_top_k, order
    )
    if order == "asc":
        positions = positions[::-1]
    positions = positions[: min(limit, exact)]
    if split == "train":
        other_split, other_indices = "test", influences.test_index[positions]
    else:
        other_split, other_indices = "train", influences.train_index[positions]
    others = read_examples(session, run, other_split, other_indices.tolist())

    items = []
    for position, other in zip(positions.tolist(), other_indices.tolist()):
        if other not in others:
            continue
        pair = (index, other) if split == "train" else (other, index)
        infl_se = float(influences.infl_se[position])
        items.append(InfluencePublic(
            infl=float(influences.infl[position]),
            infl_se=None if np.isnan(infl_se) else infl_se,
            example=others[other],
            pair_url=urls.pair_page(run.name, *pair),
        ))
    return InfluencesPublic(
        run=run.name, example=example, limit=limit, order=order, exact_count=exact,
        influences=items,
    )


def exactly_ranked(stored: np.ndarray, floor: float, top_k: int, order: str) -> int:
    """Return how many of an example's stored influences lead its full ranking exactly.

    `stored` contains them highest first. The store keeps every influence at or above
    the floor, and each example's top_k largest and top_k most negative. Highest
    first, the ranking is therefore exact through the larger of the first two sets.
    Lowest first, it is exact through the top_k most negative, or through all of
    them where a floor of -1 kept every influence. Beyond that, influences of the
    full matrix may be missing from the list.
    """
    if order == "asc":
        exact = len(stored) if floor <= -1.0 else top_k
    else:
        exact = max(int(np.count_nonzero(stored >= floor)), top_k)
    return min(exact, len(stored))
