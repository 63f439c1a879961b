"""The explorer's FastAPI application: JSON under /api, HTML pages, static files."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from backend.api import examples, exports, images, pairs, runs
from backend.errors import install_error_handlers
from backend.pages import examples as example_pages
from backend.pages import pairs as pair_pages
from backend.pages import runs as run_pages
from backend.pages.rendering import STATIC, build_templates

DESCRIPTION = (
    "Browse memorization and influence estimates of training examples. Every HTML page "
    "has a JSON twin under /api with the same state in its query string. Errors share "
    'one shape: {"error": {"status", "message", "detail"}}.'
)


def create_app(database_url: str, engine: Engine | None = None) -> FastAPI:
    """Build the app on the database at `database_url` (or on `engine`, if given)."""
    app = FastAPI(title="Longtail explorer", description=DESCRIPTION, version="0.1.0")
    app.state.engine = engine if engine is not None else create_engine(database_url)
    app.state.templates = build_templates()

    install_error_handlers(app)
    # Pairs before examples: both have four-segment paths below /api/runs/{run}.
    for router in (runs.router, pairs.router, examples.router, images.router, exports.router):
        app.include_router(router)
    for router in (run_pages.router, pair_pages.router, example_pages.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app
