"""`longtail serve`: run the web explorer on a database."""

from __future__ import annotations

import argparse
import errno
import logging
import socket
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_DB = "sqlite:///longtail.db"


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, found {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must lie in 1..65535, found {port}")
    return port


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the web explorer and its JSON API",
        description="Serve the explorer's HTML pages and JSON API (OpenAPI schema at "
        "/openapi.json) on the runs stored in a database.",
    )
    parser.add_argument("--db", default=DEFAULT_DB,
                        help="database URL, sqlite:///PATH or postgresql+psycopg://... "
                        "(default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=_port, default=8000,
                        help="TCP port to listen on (default: %(default)s)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    serve(args.db, args.host, args.port)
    return 0


def check_port_free(host: str, port: int) -> None:
    """Raise UsageError naming the port when something already listens on it."""
    from backend.cli import UsageError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"port {port} on {host} is already in use; pass --port with another number"
                ) from None
            raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def warn_if_new_sqlite_file(database_url: str) -> None:
    """Log a warning when a SQLite URL names a file that does not exist yet."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix) or database_url == "sqlite://":
        return
    path = Path(database_url[len(prefix):])
    if str(path) != ":memory:" and not path.exists():
        logger.warning(
            "database file %s does not exist, so the explorer starts with no runs; check "
            "the path, or load a run with 'longtail load RUN_DIR --db %s'",
            path, database_url,
        )


def serve(database_url: str, host: str, port: int) -> None:
    """Serve the explorer until interrupted, creating or upgrading the database schema first."""
    import uvicorn

    from backend.app import create_app
    from backend.cli.load_command import quiet_alembic

    check_port_free(host, port)
    warn_if_new_sqlite_file(database_url)
    quiet_alembic()
    app = create_app(database_url)
    logger.info("serving the explorer on http://%s:%d", host, port)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        logger.info("stopped the explorer on http://%s:%d", host, port)
