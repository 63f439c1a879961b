"""Loading real run directories: what is stored, and what a second load does."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.store.database import open_database
from backend.store.load import LoadError, RunExistsError, load_run
from backend.store.models import Example, Influence, Run, RunClass
from compute.rundir import RunDir
from tests.store.db_state import database_state


@pytest.fixture
def loaded_digits(database_url, digits_run):
    engine = open_database(database_url)
    summary = load_run(engine, digits_run)
    yield engine, summary
    engine.dispose()


def stored_matrix(connection, run_id, shape):
    """Return the stored influences as a matrix, NaN where a pair was not kept."""
    rows = connection.execute(
        select(Influence.train_index, Influence.test_index, Influence.infl)
        .where(Influence.run_id == run_id)
    ).all()
    matrix = np.full(shape, np.nan)
    for train_index, test_index, infl in rows:
        matrix[train_index, test_index] = infl
    return matrix, len(rows)


def test_load_stores_run_and_examples(loaded_digits, digits_run):
    engine, summary = loaded_digits
    manifest = RunDir(digits_run).read_manifest()
    with Session(engine) as session:
        run = session.scalars(select(Run)).one()
    assert summary.name == "digits"
    assert run.name == "digits"
    assert run.fingerprint == manifest["dataset"]["fingerprint"]
    assert (run.n_train, run.n_test, run.num_classes) == (1438, 359, 10)
    assert run.trials == 64
    assert run.influence_floor == 0.02
    assert run.influence_top_k == 20
    assert run.config == manifest["config"]

    estimates = RunDir(digits_run).read_estimates()
    with Session(engine) as session:
        classes = session.scalars(select(RunClass).order_by(RunClass.label)).all()
        train = session.scalars(
            select(Example).where(Example.split == "train").order_by(Example.index)
        ).all()
        test = session.scalars(
            select(Example).where(Example.split == "test").order_by(Example.index)
        ).all()

    assert [item.name for item in classes] == [str(digit) for digit in range(10)]
    assert sum(item.train_count for item in classes) == 1438
    assert summary.examples == 1438 + 359
    assert [example.label for example in train] == estimates["train_labels"].tolist()
    assert [example.label for example in test] == estimates["test_labels"].tolist()

    stored_mem = np.array([np.nan if e.mem is None else e.mem for e in train])
    np.testing.assert_array_equal(stored_mem, estimates["mem"])
    assert [e.in_trials for e in train] == estimates["in_trials"].tolist()
    assert all(example.mem is None for example in test)

    image = Image.open(io.BytesIO(train[0].thumbnail))
    assert image.format == "PNG"
    assert image.size == (8, 8)


def test_load_keeps_floor_and_top_k(loaded_digits, digits_run):
    engine, summary = loaded_digits
    infl, _ = RunDir(digits_run).influence()
    infl = np.asarray(infl, dtype=np.float64)
    with engine.connect() as connection:
        kept, count = stored_matrix(connection, summary.run_id, infl.shape)
    assert summary.influences == count

    stored = ~np.isnan(kept)
    np.testing.assert_array_equal(kept[stored], infl[stored])
    # Every pair at or above the floor is kept.
    assert stored[np.nan_to_num(infl, nan=-1) >= 0.02].all()
    # Ties make the top-k pairs ambiguous, but not their values.
    for matrix, values in ((infl, kept), (infl.T, kept.T)):
        for line, kept_line in zip(matrix, values):
            finite = np.sort(line[~np.isnan(line)])
            kept_values = np.sort(kept_line[~np.isnan(kept_line)])
            np.testing.assert_array_equal(kept_values[-20:], finite[-20:])
            np.testing.assert_array_equal(kept_values[:20], finite[:20])

    # Labels and mem are copied onto each pair, so pair selection needs no join.
    estimates = RunDir(digits_run).read_estimates()
    with Session(engine) as session:
        rows = session.scalars(select(Influence).limit(500)).all()
    for row in rows:
        assert row.train_label == estimates["train_labels"][row.train_index]
        assert row.test_label == estimates["test_labels"][row.test_index]
        assert row.train_mem == pytest.approx(estimates["mem"][row.train_index])


def test_load_again_raises_run_exists(loaded_digits, digits_run, database_url):
    engine, _ = loaded_digits
    before = database_state(database_url)

    with pytest.raises(RunExistsError, match="run 'digits' is already in .*pass --replace"):
        load_run(engine, digits_run)

    assert database_state(database_url) == before


def test_load_replace_swaps_run(loaded_digits, digits_run, database_url):
    engine, first = loaded_digits

    second = load_run(engine, digits_run, replace=True, influence_floor=0.5, top_k=1)

    state = database_state(database_url)
    assert state["runs"] == ["digits"]
    assert list(state["influences"]) == [second.run_id]
    assert state["influences"][second.run_id] == second.influences
    assert second.influences < first.influences


def test_load_under_second_name(loaded_digits, digits_run, database_url):
    engine, first = loaded_digits

    second = load_run(engine, digits_run, name="digits again")

    state = database_state(database_url)
    assert state["runs"] == ["digits", "digits again"]
    assert state["influences"][second.run_id] == first.influences


@pytest.mark.parametrize("name", ["bad/name", "back\\slash", "..", "tab\there"])
def test_load_rejects_unaddressable_name(digits_run, database_url, name):
    engine = open_database(database_url)
    try:
        with pytest.raises(LoadError, match="invalid run name"):
            load_run(engine, digits_run, name=name)
        with engine.connect() as connection:
            assert connection.scalar(select(Run.id).where(Run.name == name)) is None
    finally:
        engine.dispose()
