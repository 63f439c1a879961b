"""`longtail db upgrade`: create the database, or upgrade its schema to this version."""

from __future__ import annotations

import argparse

from backend.cli.load_command import add_database_option, quiet_alembic
from backend.store.database import current_revision, describe_url, open_database


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "db", help="manage the database schema",
        description="Manage the schema of the Longtail database (Alembic migrations).",
    )
    actions = parser.add_subparsers(dest="db_action", required=True, metavar="ACTION")
    upgrade = actions.add_parser(
        "upgrade", help="create the database or upgrade it to the newest schema",
        description="Create the tables of a new database, or apply the migrations that "
        "an existing one lacks. 'load' and 'serve' do the same on first use.",
    )
    add_database_option(upgrade)
    upgrade.set_defaults(run=run_upgrade)


def run_upgrade(args: argparse.Namespace) -> int:
    quiet_alembic()
    engine = open_database(args.db)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    print(f"database {describe_url(args.db)} is at schema revision {revision}")
    return 0
