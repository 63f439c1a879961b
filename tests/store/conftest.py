"""Store fixtures: a database URL for each backend, and run directories to load.

Every test that takes `database_url` runs twice, on a fresh SQLite file and on a
PostgreSQL database of its own. The PostgreSQL server comes from
LONGTAIL_TEST_POSTGRES_URL; each session creates a database named
longtail_store_test_<random> on it and drops it at the end, so other tests that
use the same server are not disturbed.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.store.synthetic import write_synthetic_run

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _libpq_url(url) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_database_url():
    """A fresh PostgreSQL database for this session, dropped at the end."""
    server = make_url(os.environ.get("LONGTAIL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    try:
        admin = psycopg.connect(_libpq_url(server), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        message = f"PostgreSQL at {server.render_as_string()} is unreachable: {error}"
        if os.environ.get("LONGTAIL_REQUIRE_POSTGRES") == "1":
            pytest.fail(message + " (LONGTAIL_REQUIRE_POSTGRES=1 makes this a failure)")
        pytest.skip(message)

    name = f"longtail_store_test_{secrets.token_hex(4)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """The URL of an empty database: a new SQLite file, or an emptied PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'longtail.db'}"

    url = request.getfixturevalue("postgres_database_url")
    with psycopg.connect(_libpq_url(make_url(url)), autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")
    return url


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory) -> Path:
    """A small complete synthetic run: 1,500 train and 400 test 6x6 RGB images, 5 classes.

    1,500 rows make two blocks of the loader's 1,024, so an error in the second
    block comes after the first block's rows were inserted.
    """
    folder = tmp_path_factory.mktemp("synthetic")
    return write_synthetic_run(
        folder, n_train=1500, n_test=400, num_classes=5, image_shape=(6, 6, 3),
        influence_std=0.01,
    ).path


@pytest.fixture(scope="session")
def large_synthetic_run(tmp_path_factory) -> Path:
    """A synthetic run that takes seconds to load: 6,000 train and 500 test examples."""
    folder = tmp_path_factory.mktemp("large")
    return write_synthetic_run(
        folder, n_train=6_000, n_test=500, num_classes=10, image_shape=(4, 4, 1),
        influence_std=0.01,
    ).path


@pytest.fixture
def run_copy(tmp_path):
    """Return a function that copies a run directory, so a test may damage the copy."""

    def copy(run: Path, name: str = "copy") -> Path:
        target = tmp_path / name
        shutil.copytree(run, target)
        return target

    return copy
