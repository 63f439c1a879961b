"""`longtail serve` as a user runs it: schema creation on a fresh URL, start and stop logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import inspect

from backend.cli import main as longtail
from backend.store.database import create_database_engine, current_revision, head_revision
from tests.conftest import REPO
from tests.explorer_fixtures import free_port
from tests.postgres import temporary_postgres_database

# Trust authentication ignores the password, so it only has to stay out of the logs.
PASSWORD = "not-a-real-password"


def serve_until_ready(url: str) -> tuple[subprocess.Popen, str]:
    """Start `longtail serve --db url` on a free port; return the process and its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--db", url, "--port", str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"longtail serve exited {process.returncode}: "
                                 f"{process.stderr.read()}")
        try:
            httpx.get(f"{base}/api/runs", timeout=1)
            return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"longtail serve did not listen on {base} within 60 s")


def stop(process: subprocess.Popen) -> str:
    """Stop the server as Ctrl+C does and return what it logged."""
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    return stderr


def schema_of(url: str) -> tuple[set[str], str | None]:
    engine = create_database_engine(url)
    try:
        return set(inspect(engine).get_table_names()), current_revision(engine)
    finally:
        engine.dispose()


def test_serve_creates_schema_sqlite(tmp_path):
    path = tmp_path / "fresh.db"
    url = f"sqlite:///{path}"
    process, base = serve_until_ready(url)
    try:
        body = httpx.get(f"{base}/api/runs").json()
    finally:
        log = stop(process)

    assert body == {"runs": [], "count": 0}
    tables, revision = schema_of(url)
    assert {"runs", "examples", "influences"} <= tables
    assert revision == head_revision()
    assert f"explorer started on {url} with 0 runs" in log
    assert f"explorer stopped on {url} with 0 runs" in log


def test_serve_logs_postgres_url_without_password():
    with temporary_postgres_database("longtail_serve_test") as url:
        with_password = url.replace("postgres@", f"postgres:{PASSWORD}@", 1)
        process, base = serve_until_ready(with_password)
        try:
            status = httpx.get(f"{base}/api/runs").status_code
        finally:
            log = stop(process)
        tables, _ = schema_of(url)

    assert status == 200
    assert "runs" in tables
    assert PASSWORD not in log
    assert "postgres:***@127.0.0.1" in log
    assert "with 0 runs" in log


@pytest.mark.parametrize("url, words", [
    ("sqlite:////no-such-folder/longtail.db", ["folder /no-such-folder does not exist"]),
    ("mysql://user@127.0.0.1/longtail", ["unsupported database 'mysql'"]),
    # Port 1 on this machine has no PostgreSQL server.
    ("postgresql+psycopg://postgres@127.0.0.1:1/test", ["cannot open database", "server"]),
])
def test_serve_bad_database_url(capsys, url, words):
    # In-process: the subprocess tests above already cover the command's start-up.
    status = longtail(["serve", "--db", url, "--port", str(free_port())])

    assert status == 2
    error = capsys.readouterr().err
    assert error.startswith("longtail serve: error: ")
    for word in words:
        assert word in error


def test_serve_port_in_use_rejected(tmp_path, capsys):
    import socket

    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        code = longtail(["serve", "--db", f"sqlite:///{tmp_path / 'db.sqlite'}",
                         "--port", str(port)])

    error = capsys.readouterr().err
    assert code == 2
    assert f"port {port} on 127.0.0.1 is already in use; pass --port" in error
