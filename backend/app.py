"""The explorer's FastAPI application: JSON under /api, HTML pages, static files."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from backend.api import examples, exports, images, pairs, runs
from backend.errors import install_error_handlers
from backend.pages import examples as example_pages
from backend.pages import pairs as pair_pages
from backend.pages import runs as run_pages
from backend.pages.rendering import STATIC, build_templates
from backend.query_check import reject_unknown_query_parameters
from backend.store.database import describe_url, open_database
from backend.store.models import Run

logger = logging.getLogger(__name__)

DESCRIPTION = (
    "Browse memorization and influence estimates of training examples. Every HTML page "
    "has a JSON twin under /api with the same state in its query string. Errors share "
    'one shape: {"error": {"status", "message", "detail"}}.'
)


def create_app(database_url: str) -> FastAPI:
    """Build the app on the database at `database_url`, creating or upgrading its schema.

    Raises backend.store.database.DatabaseError if the URL is invalid or the database
    cannot be reached or upgraded.
    """
    engine = open_database(database_url)
    app = FastAPI(
        title="Longtail explorer", description=DESCRIPTION, version="0.1.0",
        lifespan=_lifespan, dependencies=[Depends(reject_unknown_query_parameters)],
    )
    app.state.engine = engine
    app.state.templates = build_templates()

    install_error_handlers(app)
    # Pairs before examples: both have four-segment paths below /api/runs/{run}.
    for router in (runs.router, pairs.router, examples.router, images.router, exports.router):
        app.include_router(router)
    for router in (run_pages.router, pair_pages.router, example_pages.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.add_api_route("/favicon.ico", read_favicon, include_in_schema=False)
    return app


def read_favicon() -> FileResponse:
    """Serve the icon to clients that ask for /favicon.ico instead of reading the page's link."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine: Engine = app.state.engine
    url = describe_url(engine.url)
    logger.info("explorer started on %s with %s", url, _count_runs(engine))
    try:
        yield
    finally:
        logger.info("explorer stopped on %s with %s", url, _count_runs(engine))
        engine.dispose()


def _count_runs(engine: Engine) -> str:
    """Return "N runs" for the start and stop log lines, or why the count failed."""
    try:
        with engine.connect() as connection:
            count = connection.scalar(select(func.count()).select_from(Run))
    except SQLAlchemyError as error:
        logger.error("counting the runs in %s failed: %s", describe_url(engine.url), error)
        return "an unknown number of runs"
    return f"{count} run" if count == 1 else f"{count} runs"
