"""Browser tests drive Debian's headless Chromium through Playwright; no browser is downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.explorer_fixtures import (  # noqa: F401
    RUN_NAME,
    sqlite_explorer_database,
    sqlite_explorer_server,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.is_file():
        message = f"{CHROMIUM} not found; install it with 'apt-get install -y chromium'"
        if os.environ.get("LONGTAIL_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (LONGTAIL_REQUIRE_BROWSER=1 requires the browser tests)")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, sqlite_explorer_server):  # noqa: F811
    context = browser.new_context(
        base_url=sqlite_explorer_server, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    # Any failed request of a page load (a missing icon, script or image) is a bug.
    failed = []
    page.on("response", lambda response: response.status >= 400 and failed.append(
        f"{response.status} {response.url}"
    ))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not failed, f"failed requests: {failed}"


@pytest.fixture(scope="session")
def run_name() -> str:
    return RUN_NAME
