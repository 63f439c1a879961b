"""JSON routes of runs."""

from __future__ import annotations

from fastapi import APIRouter

from backend.deps import RunDep, SessionDep
from backend.queries.runs import read_run_overview, read_runs
from backend.schemas import RunOverviewPublic, RunsPublic

router = APIRouter(prefix="/api/runs", tags=["runs"])


@router.get("", response_model=RunsPublic)
def list_runs(session: SessionDep) -> RunsPublic:
    """List every run in the database, newest load first."""
    return read_runs(session)


@router.get("/{run}", response_model=RunOverviewPublic)
def read_run(session: SessionDep, run: RunDep) -> RunOverviewPublic:
    """Read a run with its mem histograms and the selection summary at default thresholds."""
    return read_run_overview(session, run)
