"""API tests run against a real server on 127.0.0.1 and a database loaded from a real run."""

from __future__ import annotations

import httpx
import pytest

from tests.explorer_fixtures import RUN_NAME, explorer_database, explorer_server  # noqa: F401


@pytest.fixture(scope="session")
def client(explorer_server) -> httpx.Client:  # noqa: F811
    with httpx.Client(base_url=explorer_server, timeout=30) as http:
        yield http


@pytest.fixture(scope="session")
def run_name() -> str:
    return RUN_NAME
