"""`longtail db`: upgrade the database's schema, list its runs, delete one of them."""

from __future__ import annotations

import argparse

from backend.cli.load_command import add_database_option, quiet_alembic
from backend.store.database import current_revision, describe_url, open_database
from backend.store.load import delete_stored_run, stored_runs


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "db", help="manage the database: its schema and its runs",
        description="Upgrade the schema of the Longtail database (Alembic migrations), "
        "list its runs, or delete one.",
    )
    actions = parser.add_subparsers(dest="db_action", required=True, metavar="ACTION")
    upgrade = actions.add_parser(
        "upgrade", help="create the database or upgrade it to the newest schema",
        description="Create the tables of a new database, or apply the migrations that "
        "an existing one lacks. 'load' and 'serve' do the same on first use.",
    )
    add_database_option(upgrade)
    upgrade.set_defaults(run=run_upgrade)

    runs = actions.add_parser(
        "runs", help="list the stored runs",
        description="List every run in the database with its dataset, model, trials, "
        "example counts and when it was loaded.",
    )
    add_database_option(runs)
    runs.set_defaults(run=run_list)

    remove = actions.add_parser(
        "delete", help="delete a stored run",
        description="Delete a run and everything stored with it (examples, thumbnails, "
        "influences, experiment results) in one transaction. Its run directory on disk "
        "is left as it is, so 'longtail load' can store it again.",
    )
    remove.add_argument("name", metavar="NAME", help="run name, as 'longtail db runs' lists it")
    add_database_option(remove)
    remove.set_defaults(run=run_delete)


def run_upgrade(args: argparse.Namespace) -> int:
    quiet_alembic()
    engine = open_database(args.db)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    print(f"database {describe_url(args.db)} is at schema revision {revision}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    quiet_alembic()
    engine = open_database(args.db, must_exist=True)
    try:
        runs = stored_runs(engine)
    finally:
        engine.dispose()
    if not runs:
        print(f"no runs in {describe_url(args.db)}; store one with 'longtail load RUN_DIR'")
        return 0
    header = ("name", "dataset", "model", "trials", "train", "test", "floor", "loaded (UTC)")
    rows = [header] + [
        # A name with a space is quoted, so that it reads as one column.
        (repr(run.name) if any(char.isspace() for char in run.name) else run.name,
         run.dataset_name, run.model, str(run.trials), str(run.n_train),
         str(run.n_test), f"{run.influence_floor:g}", f"{run.loaded_at:%Y-%m-%d %H:%M}")
        for run in runs
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def run_delete(args: argparse.Namespace) -> int:
    quiet_alembic()
    engine = open_database(args.db, must_exist=True)
    try:
        examples = delete_stored_run(engine, args.name)
    finally:
        engine.dispose()
    print(f"deleted run {args.name!r} ({examples} examples) from {describe_url(args.db)}")
    return 0
