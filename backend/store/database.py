"""Database URLs, engines and schema upgrades through Alembic.

`open_database(url)` is the one entry point for every command and the web app: it
creates the engine, upgrades the schema to the newest migration and returns the
engine.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

logger = logging.getLogger(__name__)

# A relative SQLite path is resolved against the working directory.
DEFAULT_URL = "sqlite:///longtail.db"

# Migrations live at the repository root, so the store needs a source checkout or an
# editable install (the Dockerfile makes one).
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"

SUPPORTED_BACKENDS = ("sqlite", "postgresql")


class DatabaseError(ValueError):
    """A database URL is invalid, or the database cannot be reached or upgraded."""


def parse_url(url: str) -> URL:
    """Parse a database URL; a bare postgresql:// URL gets the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise DatabaseError(
            f"invalid database URL {url!r}: {error}; expected sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DATABASE"
        ) from error
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise DatabaseError(
            f"unsupported database {parsed.get_backend_name()!r} in URL "
            f"{describe_url(parsed)}; use sqlite:///PATH or postgresql+psycopg://..."
        )
    if parsed.drivername == "postgresql":
        # SQLAlchemy's default PostgreSQL driver is psycopg2; Longtail installs psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def describe_url(url: str | URL) -> str:
    """Return the URL as text with its password hidden, for messages and logs."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            return url
    return url.render_as_string(hide_password=True)


def create_database_engine(url: str) -> Engine:
    """Create an engine for `url` without touching the schema."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            folder = Path(database).resolve().parent
            if not folder.is_dir():
                raise DatabaseError(
                    f"SQLite database {database!r}: folder {folder} does not exist; "
                    "create it or pass another --db path"
                )
        engine = create_engine(parsed)
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _configure_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the explorer read while a run is loading; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # 256 MiB of page cache (negative means KiB): index inserts of a large load stay in memory.
    cursor.execute("PRAGMA cache_size=-262144")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    """Return an Alembic config that runs the migrations on `engine`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    script = ScriptDirectory.from_config(_script_config())
    return script.get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema of `engine`'s database to `revision`."""
    try:
        command.upgrade(alembic_config(engine), revision)
    except CommandError as error:
        raise DatabaseError(
            f"cannot upgrade {describe_url(engine.url)} to {revision}: {error}; the "
            "database may have been made by a newer Longtail, so upgrade Longtail"
        ) from error


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade the schema of `engine`'s database to `revision` ("base" drops everything)."""
    command.downgrade(alembic_config(engine), revision)


def check_lasting(url: str, must_exist: bool = False) -> None:
    """Raise DatabaseError for a SQLite URL whose data would not outlive the command.

    That is an in-memory database (`sqlite://`, `sqlite:///`, `:memory:`), which a
    command would fill and then drop. With `must_exist`, a SQLite file that does
    not exist yet is rejected too, so that a mistyped path is not created empty.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    database = parsed.database or ""
    if database in ("", ":memory:") or parsed.query.get("mode") == "memory":
        raise DatabaseError(
            f"{describe_url(url)} is an in-memory SQLite database, which is gone when the "
            "command ends; pass a file, such as sqlite:///longtail.db"
        )
    if must_exist and not Path(database).exists():
        raise DatabaseError(
            f"SQLite database file {database} not found; check the path ('longtail load' "
            "creates the database)"
        )


def open_database(url: str = DEFAULT_URL, must_exist: bool = False) -> Engine:
    """Create the engine for `url`, upgrade its schema to the newest migration, return it.

    `must_exist` rejects a SQLite file that does not exist, instead of creating it.
    """
    check_lasting(url, must_exist)
    engine = create_database_engine(url)
    try:
        before = current_revision(engine)
        head = head_revision()
        if before != head:
            logger.info("upgrading %s from %s to %s", describe_url(engine.url), before, head)
            upgrade(engine)
    except OperationalError as error:
        engine.dispose()
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise DatabaseError(
            f"cannot open database {describe_url(engine.url)}: {reason}; check that the "
            "server is running and the URL is right"
        ) from error
    return engine


def _script_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config
