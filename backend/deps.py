"""Request dependencies: a database session per request and the run named in the path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.errors import not_found
from backend.store.models import Run

# How many run names a "run not found" message lists before it cuts the list short.
LISTED_RUNS = 10


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_run(
    session: SessionDep,
    run: Annotated[str, Path(description="Run name, as listed by GET /api/runs.")],
) -> Run:
    # Stored names have no control characters (see check_run_name), and PostgreSQL
    # rejects a NUL in a query, so such a name is not looked up.
    printable = all(char.isprintable() for char in run)
    found = session.scalars(select(Run).where(Run.name == run)).one_or_none() if printable else None
    if found is None:
        names = session.scalars(select(Run.name).order_by(Run.name).limit(LISTED_RUNS + 1)).all()
        known = ", ".join(names[:LISTED_RUNS]) + (", ..." if len(names) > LISTED_RUNS else "")
        raise not_found(
            f"run {run!r} not found; known runs: {known or 'none'}; "
            "load one with 'longtail load RUN_DIR --db URL'",
            {"run": run},
        )
    return found


RunDep = Annotated[Run, Depends(get_run)]
