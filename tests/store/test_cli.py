"""The load, db upgrade and estimate --db commands, run as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import run_longtail
from tests.store.db_state import database_state


def test_load_command_second_load_and_replace(database_url, synthetic_run):
    first = run_longtail("load", str(synthetic_run), "--db", database_url)
    second = run_longtail("load", str(synthetic_run), "--db", database_url, check=False)
    replaced = run_longtail(
        "load", str(synthetic_run), "--db", database_url, "--replace",
        "--influence-floor", "0.5", "--top-k", "1",
    )

    assert "run 'run' loaded into" in first.stdout
    assert second.returncode == 2
    assert "error: run 'run' is already in" in second.stderr
    assert "pass --replace" in second.stderr
    assert "Traceback" not in second.stderr
    assert "run 'run' loaded into" in replaced.stdout
    state = database_state(database_url)
    assert state["runs"] == ["run"]
    # One largest and one most negative per row and per column, nothing above 0.5.
    assert sum(state["influences"].values()) <= 2 * (1500 + 400)


def test_db_runs_and_delete(database_url, synthetic_run):
    run_longtail("db", "upgrade", "--db", database_url)
    empty = run_longtail("db", "runs", "--db", database_url)
    run_longtail("load", str(synthetic_run), "--db", database_url, "--name", "first")
    run_longtail("load", str(synthetic_run), "--db", database_url, "--name", "second")
    listed = run_longtail("db", "runs", "--db", database_url)
    before_delete = database_state(database_url)
    unknown = run_longtail("db", "delete", "third", "--db", database_url, check=False)
    unchanged = database_state(database_url)
    deleted = run_longtail("db", "delete", "first", "--db", database_url)

    assert "no runs in" in empty.stdout
    lines = listed.stdout.splitlines()
    assert lines[0].split() == [
        "name", "dataset", "model", "trials", "train", "test", "floor", "loaded", "(UTC)"
    ]
    assert [line.split()[0] for line in lines[1:]] == ["first", "second"]
    assert unknown.returncode == 2
    assert "run 'third' not found" in unknown.stderr
    assert "stored runs: first, second" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    assert unchanged == before_delete
    assert "deleted run 'first' (1900 examples)" in deleted.stdout
    state = database_state(database_url)
    assert state["runs"] == ["second"]
    assert len(state["examples"]) == 1
    assert len(state["influences"]) == 1


def test_load_command_invalid_top_k(tmp_path, synthetic_run):
    url = f"sqlite:///{tmp_path / 'longtail.db'}"
    result = run_longtail("load", str(synthetic_run), "--db", url, "--top-k", "-1", check=False)

    assert result.returncode == 2
    assert "top-k must be a non-negative integer, found -1" in result.stderr


def test_db_upgrade_default_url(tmp_path):
    # The default database is longtail.db in the working directory.
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "db", "upgrade"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "is at schema revision 0001" in result.stdout
    assert (tmp_path / "longtail.db").is_file()


def test_db_upgrade_unsupported_url():
    result = run_longtail("db", "upgrade", "--db", "mysql://user@127.0.0.1/longtail", check=False)

    assert result.returncode == 2
    assert "unsupported database 'mysql'" in result.stderr


def test_db_upgrade_unreachable_server():
    # Port 1 on this machine has no PostgreSQL server.
    url = "postgresql+psycopg://postgres@127.0.0.1:1/longtail"
    result = run_longtail("db", "upgrade", "--db", url, check=False)

    assert result.returncode == 2
    assert "cannot open database postgresql+psycopg://postgres@127.0.0.1:1/longtail" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_estimate_with_db_loads_run(digits_run, tmp_path):
    # The run is complete, so the estimate keeps its estimates and only loads it.
    database_url = f"sqlite:///{tmp_path / 'longtail.db'}"
    run = tmp_path / "digits"
    shutil.copytree(digits_run, run)
    run_longtail(
        "estimate", "--dataset", "digits", "--trials", "64", "--epochs", "5",
        "--shard-size", "16", "--out", str(run), "--db", database_url,
    )

    again = run_longtail(
        "estimate", "--dataset", "digits", "--trials", "64", "--epochs", "5",
        "--shard-size", "16", "--out", str(run), "--db", database_url, check=False,
    )

    state = database_state(database_url)
    assert state["runs"] == ["digits"]
    assert sum(state["examples"].values()) == 1438 + 359
    assert again.returncode == 2
    assert "run 'digits' is already in" in again.stderr
    assert "pass --replace to replace it, or another --out directory" in again.stderr


def test_estimate_checks_db_before_training(tmp_path):
    out = tmp_path / "digits"
    result = run_longtail(
        "estimate", "--dataset", "digits", "--trials", "8", "--epochs", "1",
        "--out", str(out), "--db", "mysql://user@127.0.0.1/longtail", check=False,
    )

    assert result.returncode == 2
    assert "unsupported database 'mysql'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_relative_dataset_path_then_moved_data(tmp_path, digits):
    work = tmp_path / "work"
    work.mkdir()
    np.savez(work / "small.npz", x_train=digits.x_train[:200], y_train=digits.y_train[:200],
             x_test=digits.x_test[:50], y_test=digits.y_test[:50])
    run_longtail("estimate", "--dataset", "npz:small.npz", "--trials", "8", "--epochs", "1",
                 "--out", "run", cwd=work)
    stored = json.loads((work / "run" / "manifest.json").read_text())["config"]["dataset"]
    moved = tmp_path / "moved.npz"
    (work / "small.npz").rename(moved)
    url = f"sqlite:///{tmp_path / 'longtail.db'}"
    missing = run_longtail("load", str(work / "run"), "--db", url, check=False)
    other = run_longtail("load", str(work / "run"), "--db", url, "--dataset", "digits",
                         check=False)
    loaded = run_longtail("load", "work/run", "--db", url, "--dataset", "npz:moved.npz",
                          cwd=tmp_path)

    assert stored == f"npz:{work / 'small.npz'}"
    assert missing.returncode == 2
    assert "not found" in missing.stderr
    assert "has moved, pass its new place with 'longtail load RUN_DIR --dataset SPEC'" in (
        missing.stderr
    )
    assert other.returncode == 2
    assert f"dataset 'digits' is not the data of run {work / 'run'}" in other.stderr
    assert "run 'run' loaded into" in loaded.stdout


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://", "sqlite:///:memory:"])
def test_in_memory_database_rejected(tmp_path, url):
    result = run_longtail(
        "estimate", "--dataset", "digits", "--trials", "8", "--epochs", "1",
        "--out", str(tmp_path / "run"), "--db", url, check=False,
    )

    assert result.returncode == 2
    assert "is an in-memory SQLite database, which is gone when the command ends" in (
        result.stderr
    )
    assert not (tmp_path / "run").exists()


def test_db_runs_missing_file_not_created(tmp_path):
    path = tmp_path / "typo.db"
    result = run_longtail("db", "runs", "--db", f"sqlite:///{path}", check=False)

    assert result.returncode == 2
    assert f"SQLite database file {path} not found" in result.stderr
    assert not path.exists()
