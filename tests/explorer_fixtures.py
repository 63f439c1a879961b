"""Fixtures of the explorer tests: databases loaded from a real run, and servers on them.

Import them into a conftest.py. All are session-scoped and shared by the API and
browser tests. The run is the real `digits_run` of tests/conftest.py, stored by the
store's own loader with its default influence floor and top-k, so the explorer
reads exactly what `longtail load` writes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from backend.app import create_app
from backend.store.database import open_database
from backend.store.load import load_run
from tests.postgres import temporary_postgres_database

RUN_NAME = "digits"
BACKENDS = ("sqlite", "postgresql")


def load_database(url: str, run_path: Path, name: str) -> None:
    """Create or upgrade the schema at `url` and load the run there under `name`."""
    engine = open_database(url)
    try:
        load_run(engine, run_path, name=name)
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve_in_thread(database_url: str) -> Iterator[str]:
    """Run a real uvicorn server on 127.0.0.1 in a background thread; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(database_url), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"explorer server did not start on 127.0.0.1:{port}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def sqlite_explorer_database(digits_run, tmp_path_factory) -> str:
    """URL of a SQLite database holding the digits run under the name 'digits'."""
    path = tmp_path_factory.mktemp("explorer") / "explorer.db"
    url = f"sqlite:///{path}"
    load_database(url, digits_run, RUN_NAME)
    return url


@pytest.fixture(scope="session")
def postgresql_explorer_database(digits_run) -> Iterator[str]:
    """URL of a PostgreSQL database of this session's own, holding the digits run."""
    with temporary_postgres_database("longtail_explorer_test") as url:
        load_database(url, digits_run, RUN_NAME)
        yield url


@pytest.fixture(scope="session")
def sqlite_explorer_server(sqlite_explorer_database) -> Iterator[str]:
    """Base URL of a running explorer on the SQLite database."""
    with serve_in_thread(sqlite_explorer_database) as url:
        yield url


@pytest.fixture(scope="session")
def postgresql_explorer_server(postgresql_explorer_database) -> Iterator[str]:
    """Base URL of a running explorer on the PostgreSQL database."""
    with serve_in_thread(postgresql_explorer_database) as url:
        yield url
