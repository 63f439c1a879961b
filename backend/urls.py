"""URLs of pages and images, built in one place so that JSON and HTML link alike."""

from __future__ import annotations

from urllib.parse import quote, urlencode


def _run(run_name: str) -> str:
    return quote(run_name, safe="")


def run_page(run_name: str) -> str:
    return f"/runs/{_run(run_name)}"


def example_page(run_name: str, split: str, index: int) -> str:
    return f"/runs/{_run(run_name)}/{split}/{index}"


def image(run_name: str, split: str, index: int, scale: int | None = None) -> str:
    url = f"/api/runs/{_run(run_name)}/{split}/{index}/image.png"
    return f"{url}?{urlencode({'scale': scale})}" if scale else url


def pair_page(run_name: str, train_index: int, test_index: int) -> str:
    return f"/runs/{_run(run_name)}/pairs/{train_index}/{test_index}"


def with_query(path: str, **params) -> str:
    """Append the parameters that are not None, so a URL carries only the state that is set."""
    present = {
        key: str(value).lower() if isinstance(value, bool) else value
        for key, value in params.items()
        if value is not None
    }
    return f"{path}?{urlencode(present)}" if present else path
