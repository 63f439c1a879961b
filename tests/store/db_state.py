"""Read back what the store holds, for before-and-after comparisons in tests."""

from __future__ import annotations

from sqlalchemy import func, select

from backend.store.database import create_database_engine
from backend.store.models import Example, Influence, Run, RunClass


def database_state(url: str) -> dict:
    """Return the run names and the row count of every run's examples, classes, influences."""
    engine = create_database_engine(url)
    try:
        with engine.connect() as connection:
            runs = connection.execute(select(Run.id, Run.name).order_by(Run.name)).all()
            state = {"runs": [name for _, name in runs]}
            for model in (RunClass, Example, Influence):
                counts = connection.execute(
                    select(model.run_id, func.count()).group_by(model.run_id)
                ).all()
                state[model.__tablename__] = dict(sorted(counts))
            return state
    finally:
        engine.dispose()
