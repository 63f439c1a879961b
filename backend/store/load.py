"""Load a run directory into the store, in one transaction."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, Engine, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.store.bulk import chunks, insert_arrays, insert_rows, python_values
from backend.store.database import describe_url
from backend.store.influence_selection import iter_kept_pairs
from backend.store.models import Example, ExperimentResult, Influence, Run, RunClass
from backend.store.prefetch import prefetch
from backend.store.run_input import LoadError, RunInput, check_influence_block, read_run_input
from backend.store.thumbnails import png_bytes

logger = logging.getLogger(__name__)

DEFAULT_INFLUENCE_FLOOR = 0.02
DEFAULT_TOP_K = 20
# Rows of the influence matrix read at once: 1024 x 10,000 float32 is 40 MB.
BLOCK_ROWS = 1024

EXAMPLE_COLUMNS = (
    "run_id", "split", "index", "label", "mem", "mem_se", "consistency", "consistency_se",
    "in_trials", "out_trials", "accuracy", "thumbnail", "image_ref",
)

# progress(stage, done, total): stage is "examples" or "influences" (done in train rows).
Progress = Callable[[str, int, int], None]


class RunExistsError(LoadError):
    """A run of the same name is already stored and replacing it was not requested."""


@dataclass
class LoadSummary:
    """Counts and duration of one finished load."""

    run_id: int
    name: str
    examples: int
    influences: int
    seconds: float


def load_run(
    engine: Engine,
    path: str | Path,
    name: str | None = None,
    replace: bool = False,
    influence_floor: float = DEFAULT_INFLUENCE_FLOOR,
    top_k: int = DEFAULT_TOP_K,
    progress: Progress | None = None,
    dataset_spec: str | None = None,
) -> LoadSummary:
    """Store a finished run and its kept influences, all in one transaction.

    `dataset_spec` reads the run's dataset from there, for data that has moved.

    On any error, or if the process dies, the transaction rolls back and the database
    keeps what it contained before. An existing run of the same name raises
    RunExistsError unless `replace` is true, in which case the old run goes in the
    same transaction.
    """
    started = time.perf_counter()
    name = check_run_name(name if name is not None else Path(path).resolve().name)
    influence_floor = check_influence_floor(influence_floor)
    top_k = check_top_k(top_k)
    source = read_run_input(path, dataset_spec)
    logger.info("read and checked run %s in %.1f s", source.run.path, time.perf_counter() - started)
    progress = progress or (lambda stage, done, total: None)

    try:
        run_id, examples, influences = _load_in_transaction(
            engine, source, name, replace, influence_floor, top_k, progress
        )
    except IntegrityError as error:
        # Another load inserted the same name between our check and our insert.
        if existing_run_id(engine, name) is None:
            raise
        raise RunExistsError(
            f"run {name!r} was stored by another load while this one ran; pass --replace "
            "to load it again, or --name to store it under another name"
        ) from error

    summary = LoadSummary(run_id, name, examples, influences, time.perf_counter() - started)
    logger.info(
        "loaded run %r (id %d) into %s: %d examples, %d influences in %.1f s",
        name, run_id, describe_url(engine.url), examples, influences, summary.seconds,
    )
    return summary


def existing_run_id(engine: Engine, name: str) -> int | None:
    with engine.connect() as connection:
        return connection.scalar(select(Run.id).where(Run.name == name))


def _load_in_transaction(engine, source, name, replace, influence_floor, top_k, progress):
    with engine.begin() as connection:
        existing = connection.scalar(select(Run.id).where(Run.name == name))
        if existing is not None and not replace:
            raise RunExistsError(
                f"run {name!r} is already in {describe_url(engine.url)}; pass --replace to "
                "load it again, or --name to store it under another name"
            )
        if existing is not None:
            logger.info("replacing run %r (id %d)", name, existing)
            delete_run(connection, existing)

        run_id = _insert_run(connection, source, name, influence_floor, top_k)
        _insert_classes(connection, run_id, source)
        # Thumbnails are encoded in a background thread while earlier rows are inserted.
        example_rows = (row for chunk in prefetch(chunks(_example_rows(run_id, source), 1000))
                        for row in chunk)
        examples = insert_rows(connection, Example.__table__, EXAMPLE_COLUMNS, example_rows)
        progress("examples", examples, examples)
        logger.info("inserted %d examples with thumbnails", examples)
        influences = _insert_influences(
            connection, run_id, source, influence_floor, top_k, progress
        )
    return run_id, examples, influences


def stored_runs(engine: Engine) -> list[Run]:
    """Return every stored run, ordered by name, detached from the database."""
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(select(Run).order_by(Run.name)))


def delete_stored_run(engine: Engine, name: str) -> int:
    """Delete the run called `name` in one transaction; return how many examples it had.

    Raises LoadError, naming the stored runs, if there is none of that name.
    """
    with engine.begin() as connection:
        run_id = connection.scalar(select(Run.id).where(Run.name == name))
        if run_id is None:
            names = connection.scalars(select(Run.name).order_by(Run.name)).all()
            raise LoadError(
                f"run {name!r} not found in {describe_url(engine.url)}; stored runs: "
                f"{', '.join(names) or 'none'} ('longtail db runs' lists them)"
            )
        examples = connection.scalar(
            select(func.count()).select_from(Example).where(Example.run_id == run_id)
        )
        delete_run(connection, run_id)
    logger.info("deleted run %r (id %d) from %s", name, run_id, describe_url(engine.url))
    return int(examples or 0)


def delete_run(connection: Connection, run_id: int) -> None:
    """Delete a run and everything stored with it."""
    # Explicit deletes in child-first order work whether or not the database
    # enforces ON DELETE CASCADE (SQLite does only with foreign_keys on).
    for model in (Influence, Example, RunClass, ExperimentResult):
        connection.execute(delete(model).where(model.run_id == run_id))
    connection.execute(delete(Run).where(Run.id == run_id))


def check_run_name(name: str) -> str:
    """Return the run name if the explorer can address it in a URL path segment.

    That is 1 to 200 characters, no surrounding spaces, no slash, backslash or
    control character, and neither "." nor "..", which browsers resolve away.
    """
    if not name or name != name.strip() or len(name) > 200:
        raise LoadError(
            f"invalid run name {name!r}: expected 1 to 200 characters without leading or "
            "trailing spaces; pass another --name"
        )
    if name in (".", "..") or any(char in "/\\" or not char.isprintable() for char in name):
        raise LoadError(
            f"invalid run name {name!r}: the explorer puts run names in its links, so a "
            "name must not be '.' or '..' nor contain a slash, a backslash or a control "
            "character; pass another --name"
        )
    return name


def check_influence_floor(floor: float) -> float:
    if not -1.0 <= floor <= 1.0:
        raise LoadError(
            f"influence floor must lie in [-1, 1], found {floor}; "
            f"{DEFAULT_INFLUENCE_FLOOR} keeps the pairs worth browsing"
        )
    return float(floor)


def check_top_k(top_k: int) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise LoadError(
            f"top-k must be a non-negative integer, found {top_k!r}; "
            f"{DEFAULT_TOP_K} keeps the 20 largest and 20 most negative of each example"
        )
    return top_k


def _insert_run(connection, source: RunInput, name, influence_floor, top_k) -> int:
    manifest = source.manifest
    config = manifest["config"]
    trial_accuracy = source.estimates["trial_test_accuracy"]
    values = {
        "name": name,
        "dataset": config["dataset"],
        "dataset_name": manifest["dataset"]["name"],
        "fingerprint": manifest["dataset"]["fingerprint"],
        "model": config["model"],
        "config": config,
        "trials": len(trial_accuracy),
        "subset_ratio": config["subset_ratio"],
        "n_train": source.n_train,
        "n_test": source.n_test,
        "num_classes": source.dataset.num_classes,
        "image_shape": list(source.dataset.image_shape),
        "accuracy_mean": float(trial_accuracy.mean()) if len(trial_accuracy) else None,
        "accuracy_std": float(trial_accuracy.std()) if len(trial_accuracy) else None,
        "influence_floor": influence_floor,
        "influence_top_k": top_k,
        "timings": manifest.get("timings", {}),
        "source_path": str(source.run.path.resolve()),
        "created_at": _parse_created(manifest.get("created")),
        "loaded_at": datetime.now(timezone.utc),
    }
    return connection.execute(insert(Run).values(values).returning(Run.id)).scalar_one()


def _parse_created(text: str | None) -> datetime:
    # Manifests store local time with its offset, e.g. 2026-01-31T12:00:00+0100.
    if text:
        try:
            return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            logger.warning("manifest time %r is not ISO 8601; storing the load time", text)
    return datetime.now(timezone.utc)


def _insert_classes(connection, run_id: int, source: RunInput) -> None:
    dataset = source.dataset
    train_counts = np.bincount(dataset.y_train, minlength=dataset.num_classes)
    test_counts = np.bincount(dataset.y_test, minlength=dataset.num_classes)
    rows = [
        {
            "run_id": run_id,
            "label": label,
            "name": class_name,
            "train_count": int(train_counts[label]),
            "test_count": int(test_counts[label]),
        }
        for label, class_name in enumerate(dataset.class_names)
    ]
    connection.execute(insert(RunClass), rows)


def _example_rows(run_id: int, source: RunInput) -> Iterator[tuple]:
    estimates = source.estimates
    dataset = source.dataset
    train_columns = [
        python_values(estimates[key])
        for key in ("mem", "mem_se", "consistency", "consistency_se")
    ]
    # Imported estimates have no trial counts: NaN there becomes NULL.
    in_trials = python_values(estimates["in_trials"])
    out_trials = python_values(estimates["out_trials"])
    train_accuracy = python_values(estimates["train_accuracy"])
    for index, label in enumerate(dataset.y_train.tolist()):
        yield (
            run_id, "train", index, label,
            *(column[index] for column in train_columns),
            in_trials[index], out_trials[index], train_accuracy[index],
            png_bytes(dataset.x_train[index]), None,
        )

    test_accuracy = python_values(estimates["test_accuracy"])
    for index, label in enumerate(dataset.y_test.tolist()):
        yield (
            run_id, "test", index, label, None, None, None, None, None, None,
            test_accuracy[index], png_bytes(dataset.x_test[index]), None,
        )


def _insert_influences(connection, run_id, source, floor, top_k, progress) -> int:
    run = source.run
    train_labels = source.estimates["train_labels"]
    test_labels = source.estimates["test_labels"]
    mem = source.estimates["mem"]

    def checked_blocks():
        for start, infl, infl_se in run.iter_influence_rows(BLOCK_ROWS):
            check_influence_block(run, start, infl, infl_se)
            yield start, infl, infl_se
            progress("influences", min(start + BLOCK_ROWS, source.n_train), source.n_train)

    started = time.perf_counter()
    count = 0
    kept = iter_kept_pairs(checked_blocks(), source.n_test, floor, top_k)
    for pairs in prefetch(kept):
        count += insert_arrays(connection, Influence.__table__, {
            "run_id": np.full(len(pairs), run_id, dtype=np.int64),
            "train_index": pairs.train_index,
            "test_index": pairs.test_index,
            "infl": pairs.infl,
            "infl_se": pairs.infl_se,
            "train_label": train_labels[pairs.train_index],
            "test_label": test_labels[pairs.test_index],
            "train_mem": mem[pairs.train_index],
        })
        logger.debug("inserted %d influences so far, in run id %d", count, run_id)
    elapsed = time.perf_counter() - started
    logger.info(
        "inserted %d influences in %.1f s (%.0f rows/s)", count, elapsed,
        count / elapsed if elapsed else 0,
    )
    return count


__all__ = [
    "DEFAULT_INFLUENCE_FLOOR", "DEFAULT_TOP_K", "LoadError", "LoadSummary",
    "RunExistsError", "delete_run", "delete_stored_run", "load_run", "stored_runs",
]
