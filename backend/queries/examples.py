"""Examples and their top influences: the example pages and their JSON twins."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend import urls
from backend.errors import ApiError, not_found
from backend.schemas import ExamplePublic, InfluencePublic, InfluencesPublic
from backend.store.models import Example, Influence, Run

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


def class_names(run: Run) -> dict[int, str]:
    return {run_class.label: run_class.name for run_class in run.classes}


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
    session: Session, run: Run, split: str, index: int, limit: int
) -> InfluencesPublic:
    """Return the pairs of one example with the highest influence, highest first.

    For a training example these are the test examples it helps most; for a test
    example, the training examples that help it most.
    """
    example = read_example(session, run, split, index)
    own, other = (
        (Influence.train_index, Influence.test_index)
        if split == "train"
        else (Influence.test_index, Influence.train_index)
    )
    rows = session.execute(
        select(other.label("other"), Influence.infl, Influence.infl_se)
        .where(Influence.run_id == run.id, own == index)
        .order_by(Influence.infl.desc(), other)
        .limit(limit)
    ).all()

    other_split = "test" if split == "train" else "train"
    others = read_examples(session, run, other_split, (row.other for row in rows))
    influences = []
    for row in rows:
        if row.other not in others:
            continue
        pair = (index, row.other) if split == "train" else (row.other, index)
        influences.append(InfluencePublic(
            infl=row.infl,
            infl_se=row.infl_se,
            example=others[row.other],
            pair_url=urls.pair_page(run.name, *pair),
        ))
    return InfluencesPublic(run=run.name, example=example, limit=limit, influences=influences)
