"""Alembic environment of the Longtail store.

`backend.store.database` runs the migrations with its own engine (passed in
`config.attributes["engine"]`). The `alembic` command line works too, on the URL
given as `alembic -x db=URL ...` or on the default SQLite file.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from backend.store.database import DEFAULT_URL, create_database_engine
from backend.store.models import Base

# Any constant works; it only has to differ from other applications' advisory locks.
POSTGRES_MIGRATION_LOCK = 7_206_511_001


def run_migrations() -> None:
    config = context.config
    engine = config.attributes.get("engine")
    owned = engine is None
    if owned:
        engine = create_database_engine(context.get_x_argument(as_dictionary=True).get(
            "db", DEFAULT_URL
        ))

    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                compare_type=True,
                # SQLite alters tables by copying them; batch mode writes those copies.
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    # Two processes opening a new database at once (load and serve)
                    # would otherwise both try to create the tables.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"),
                        {"key": POSTGRES_MIGRATION_LOCK},
                    )
                context.run_migrations()
    finally:
        if owned:
            engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; pass -x db=URL instead")
run_migrations()
