"""A PostgreSQL database of its own for one test session, on the server the tests share.

The server comes from LONGTAIL_TEST_POSTGRES_URL. Each caller gets a new database
named PREFIX_<random hex>, dropped on exit, so suites that run at the same time on
the same server never see each other's tables. An unreachable server skips the
tests, or fails them when LONGTAIL_REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL, make_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_server_url() -> URL:
    return make_url(os.environ.get("LONGTAIL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))


def libpq_url(url: URL) -> str:
    """Return `url` in the form psycopg.connect accepts (no SQLAlchemy driver suffix)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def temporary_postgres_database(prefix: str) -> Iterator[str]:
    """Create a database named PREFIX_<random hex>, yield its SQLAlchemy URL, drop it."""
    server = postgres_server_url()
    try:
        admin = psycopg.connect(libpq_url(server), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        message = f"PostgreSQL at {server.render_as_string()} is unreachable: {error}"
        if os.environ.get("LONGTAIL_REQUIRE_POSTGRES") == "1":
            pytest.fail(message + " (LONGTAIL_REQUIRE_POSTGRES=1 makes this a failure)")
        pytest.skip(message + "; set LONGTAIL_TEST_POSTGRES_URL to a server that accepts it")

    name = f"{prefix}_{secrets.token_hex(4)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            # FORCE ends connections that a server thread's pool may still hold.
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
