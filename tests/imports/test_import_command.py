"""`longtail import` on SQLite and PostgreSQL, through the command's own entry point.

The command runs in-process (backend.cli.main), because a subprocess per call would
spend most of its time importing PyTorch.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from backend.cli import main
from backend.cli.import_command import default_out
from backend.store.database import create_database_engine
from backend.store.models import Example, Influence, Run
from compute.rundir import RunDir
from tests.explorer_fixtures import serve_in_thread
from tests.imports.conftest import TRAIN_LABELS
from tests.imports.test_import_files import influence_file_arrays
from tests.store.db_state import database_state


def longtail(capsys, *args: str) -> tuple[int, str, str]:
    """Run the longtail command with these arguments; return (exit code, stdout, stderr)."""
    code = main(list(args))
    output = capsys.readouterr()
    return code, output.out, output.err


def test_import_influence_file_stored(tmp_path, small_dataset, database_url, capsys):
    arrays = influence_file_arrays()
    path = tmp_path / "cifar100_infl_matrix.npz"
    np.savez(path, **arrays)
    code, out, _ = longtail(
        capsys, "import", str(path), "--dataset", small_dataset, "--name", "authors",
        "--db", database_url, "--out", str(tmp_path / "run"), "--influence-floor", "0.1",
        "--top-k", "0",
    )

    assert code == 0
    assert "imported influence-matrix file" in out
    assert "run 'authors' loaded into" in out
    engine = create_database_engine(database_url)
    try:
        with engine.connect() as connection:
            run = connection.execute(select(Run)).one()
            train = connection.execute(
                select(Example.index, Example.mem, Example.in_trials)
                .where(Example.split == "train").order_by(Example.index)
            ).all()
            influences = connection.execute(
                select(Influence.train_index, Influence.test_index, Influence.infl)
                .order_by(Influence.train_index, Influence.test_index)
            ).all()
    finally:
        engine.dispose()

    assert run.trials == 0
    assert run.model == "external"
    assert run.accuracy_mean is None
    assert [row.mem for row in train] == arrays["tr_mem"].tolist()
    assert all(row.in_trials is None for row in train)
    # Kept: every influence at or above 0.1, which is all of classes 1 and 2.
    assert len(influences) == 12
    assert (influences[0].train_index, influences[0].test_index) == (1, 2)
    assert abs(influences[0].infl - 0.1) < 1e-6


def test_import_labels_disagree_database_untouched(
    tmp_path, small_dataset, database_url, capsys
):
    good = tmp_path / "good.npz"
    np.savez(good, labels=TRAIN_LABELS, scores=np.full(10, 0.5))
    code, _, _ = longtail(
        capsys, "import", str(good), "--dataset", small_dataset, "--name", "before",
        "--db", database_url, "--out", str(tmp_path / "before"),
    )
    assert code == 0
    before = database_state(database_url)

    shuffled = tmp_path / "shuffled.npz"
    np.savez(shuffled, labels=TRAIN_LABELS[::-1], scores=np.full(10, 0.5))
    code, _, err = longtail(
        capsys, "import", str(shuffled), "--dataset", small_dataset, "--name", "after",
        "--db", database_url, "--out", str(tmp_path / "after"),
    )

    assert code == 2
    # TRAIN_LABELS reversed first differs at index 1: 2 against 1.
    assert err.startswith(
        f"longtail import: error: {shuffled}: labels[1] is 2, but training example 1 of "
        "dataset 'small' has label 1; the file's examples are not the dataset's"
    )
    assert database_state(database_url) == before
    assert not (tmp_path / "after").exists()


def test_import_name_taken_before_writing(tmp_path, small_dataset, database_url, capsys):
    path = tmp_path / "scores.npz"
    np.savez(path, labels=TRAIN_LABELS, scores=np.full(10, 0.5))
    first, _, _ = longtail(
        capsys, "import", str(path), "--dataset", small_dataset, "--name", "scores",
        "--db", database_url, "--out", str(tmp_path / "first"),
    )
    second, _, err = longtail(
        capsys, "import", str(path), "--dataset", small_dataset, "--name", "scores",
        "--db", database_url, "--out", str(tmp_path / "second"),
    )

    assert first == 0
    assert second == 2
    assert "error: run 'scores' is already in" in err
    assert "pass --replace to import it again, or another --name" in err
    assert not (tmp_path / "second").exists()


@pytest.mark.parametrize("name", ["a/b", "..", " spaced"])
def test_import_invalid_name_writes_nothing(
    tmp_path, small_dataset, database_url, capsys, monkeypatch, name
):
    path = tmp_path / "scores.npz"
    np.savez(path, labels=TRAIN_LABELS, scores=np.full(10, 0.5))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, _, err = longtail(
        capsys, "import", str(path), "--dataset", small_dataset, "--name", name,
        "--db", database_url,
    )

    assert code == 2
    assert f"invalid run name {name!r}" in err
    assert list(work.iterdir()) == []


def test_default_folders_differ_per_name():
    folders = {default_out(name) for name in ("a b", "a_b", "?x", "#x")}

    assert len(folders) == 4
    assert default_out("a_b") == Path("runs/imported/a_b")


def test_import_into_finished_run_names_its_load(
    tmp_path, small_dataset, database_url, capsys
):
    path = tmp_path / "scores.npz"
    np.savez(path, labels=TRAIN_LABELS, scores=np.full(10, 0.5))
    out = tmp_path / "run"
    longtail(capsys, "import", str(path), "--dataset", small_dataset, "--name", "scores",
             "--db", database_url, "--out", str(out))
    code, _, err = longtail(
        capsys, "import", str(path), "--dataset", small_dataset, "--name", "scores",
        "--db", database_url, "--out", str(out), "--replace",
    )

    assert code == 2
    assert f"longtail load {out} --db {database_url} --name scores --replace" in err


def test_import_layout_flag_in_spec(tmp_path, database_url, capsys):
    # (N, 3, 4, 3) fits both NHWC and NCHW, so only --layout makes it loadable.
    dataset = tmp_path / "ambiguous.npz"
    np.savez(
        dataset, x_train=np.zeros((10, 3, 4, 3), np.uint8), y_train=TRAIN_LABELS,
        x_test=np.zeros((6, 3, 4, 3), np.uint8), y_test=np.array([2, 0, 1, 0, 1, 2]),
    )
    scores = tmp_path / "scores.npz"
    np.savez(scores, labels=TRAIN_LABELS, scores=np.full(10, 0.5))
    common = ("import", str(scores), "--dataset", f"npz:{dataset}", "--db", database_url)

    rejected, _, err = longtail(capsys, *common, "--name", "a", "--out", str(tmp_path / "a"))
    accepted, _, _ = longtail(
        capsys, *common, "--layout", "nchw", "--name", "b", "--out", str(tmp_path / "b"),
    )

    assert rejected == 2
    assert "cannot tell the channel axis of 'x_train' with shape (10, 3, 4, 3)" in err
    assert accepted == 0
    manifest = RunDir(tmp_path / "b").read_manifest()
    assert manifest["config"]["dataset"] == f"npz:{dataset}?layout=nchw"
    assert manifest["dataset"]["image_shape"] == [4, 3, 3]


def test_imported_scores_counted_on_run_page(tmp_path, small_dataset, database_url, capsys):
    """A run with consistency scores and no mem shows its training examples per class."""
    path = tmp_path / "scores.npz"
    np.savez(path, labels=TRAIN_LABELS, scores=np.linspace(0, 1, len(TRAIN_LABELS)))
    code, _, _ = longtail(
        capsys, "import", str(path), "--dataset", small_dataset, "--name", "scores",
        "--db", database_url, "--out", str(tmp_path / "run"),
    )
    with serve_in_thread(database_url) as base:
        page = httpx.get(f"{base}/runs/scores").text
        by_mem = httpx.get(f"{base}/runs/scores/classes/1", params={"sort": "mem"}).text
        gallery = httpx.get(f"{base}/api/runs/scores/classes/1/examples").json()

    assert code == 0
    for label in range(3):
        count = int((TRAIN_LABELS == label).sum())
        assert f"{count} train, {count} without mem" in page
        assert f"/runs/scores/classes/{label}?sort=consistency" in page
    assert "Sort by consistency score</a> to see them" in by_mem
    assert gallery["sort"] == "consistency"
    assert gallery["total"] == int((TRAIN_LABELS == 1).sum())
    assert gallery["missing"] == 0
    scores = [example["consistency"] for example in gallery["examples"]]
    assert scores == sorted(scores, reverse=True)


def test_imported_pairs_have_no_standard_error(tmp_path, small_dataset, database_url, capsys):
    """Pairs of an imported influence matrix carry no standard error to judge noise by."""
    path = tmp_path / "cifar100_infl_matrix.npz"
    np.savez(path, **influence_file_arrays())
    code, _, _ = longtail(
        capsys, "import", str(path), "--dataset", small_dataset, "--name", "authors",
        "--db", database_url, "--out", str(tmp_path / "run"), "--influence-floor", "0.1",
    )
    with serve_in_thread(database_url) as base:
        summary = httpx.get(
            f"{base}/api/runs/authors/pairs",
            params={"mem_threshold": -1, "infl_threshold": 0.1, "limit": 0},
        ).json()["summary"]
        overview = httpx.get(f"{base}/api/runs/authors").json()["default_summary"]
        run_page = httpx.get(f"{base}/runs/authors").text

    assert code == 0
    assert summary["pairs"] > 0
    assert summary["pairs_with_se"] == 0
    assert summary["pairs_above_two_se"] == 0
    assert overview["pairs"] > 0
    assert "<b>no SE</b><span>above twice their standard error</span>" in run_page
