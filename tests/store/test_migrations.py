"""Alembic migrations: upgrade, downgrade, and agreement with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from backend.store.database import (
    create_database_engine,
    current_revision,
    downgrade,
    head_revision,
    open_database,
    upgrade,
)
from backend.store.models import Base

TABLES = {"runs", "classes", "examples", "influences", "experiment_results"}


def table_names(engine) -> set[str]:
    with engine.connect() as connection:
        return set(inspect(connection).get_table_names())


def test_upgrade_from_empty_creates_tables(database_url):
    engine = open_database(database_url)
    try:
        assert current_revision(engine) == head_revision()
        assert TABLES <= table_names(engine)
    finally:
        engine.dispose()


def test_models_match_migrations(database_url):
    engine = open_database(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
    finally:
        engine.dispose()


def test_downgrade_to_base_drops_tables(database_url):
    engine = create_database_engine(database_url)
    try:
        upgrade(engine)
        downgrade(engine, "base")
        assert table_names(engine) & TABLES == set()
        assert current_revision(engine) is None

        upgrade(engine)
        assert TABLES <= table_names(engine)
    finally:
        engine.dispose()


def test_open_database_twice_keeps_schema(database_url):
    for _ in range(2):
        engine = open_database(database_url)
        assert current_revision(engine) == head_revision()
        engine.dispose()
