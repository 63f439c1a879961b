"""API tests run against real servers on 127.0.0.1 and databases loaded from a real run.

Every test that takes `client` runs twice: on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.explorer_fixtures import (  # noqa: F401
    BACKENDS,
    RUN_NAME,
    postgresql_explorer_database,
    postgresql_explorer_server,
    sqlite_explorer_database,
    sqlite_explorer_server,
)


@pytest.fixture(scope="session", params=BACKENDS)
def client(request) -> Iterator[httpx.Client]:
    server = request.getfixturevalue(f"{request.param}_explorer_server")
    with httpx.Client(base_url=server, timeout=30) as http:
        yield http


@pytest.fixture(scope="session")
def run_name() -> str:
    return RUN_NAME
