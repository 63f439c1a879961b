"""Pages of runs: the list and one run's overview."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from backend import urls
from backend.deps import RunDep, SessionDep
from backend.pages.rendering import render
from backend.queries.runs import read_run_overview, read_runs

router = APIRouter(include_in_schema=False)


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/runs")


@router.get("/runs")
def runs_page(request: Request, session: SessionDep):
    return render(request, "runs.html", read_runs(session), "/api/runs")


@router.get("/runs/{run}")
def run_page(request: Request, session: SessionDep, run: RunDep):
    overview = read_run_overview(session, run)
    return render(request, "run.html", overview, "/api" + urls.run_page(run.name))
