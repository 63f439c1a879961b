"""Pages of high-influence pairs: the live selection and one pair's permalink."""

from __future__ import annotations

from fastapi import APIRouter, Request

from backend import urls
from backend.deps import RunDep, SessionDep
from backend.pages.rendering import render
from backend.params import Limit, Offset, SelectionDep, TestIndex, TrainIndex
from backend.queries.pairs import check_selection, read_pair, read_pairs

router = APIRouter(include_in_schema=False)


@router.get("/runs/{run}/pairs")
def pairs_page(
    request: Request,
    session: SessionDep,
    run: RunDep,
    selection: SelectionDep,
    limit: Limit = 48,
    offset: Offset = 0,
):
    check_selection(run, selection)
    pairs = read_pairs(session, run, selection, limit, offset)
    return render(
        request, "pairs.html", pairs,
        "/api" + urls.with_query(f"{urls.run_page(run.name)}/pairs",
                                 **selection.model_dump(), limit=limit, offset=offset),
        run=run,
    )


@router.get("/runs/{run}/pairs/{train_index}/{test_index}")
def pair_page(
    request: Request, session: SessionDep, run: RunDep, train_index: TrainIndex,
    test_index: TestIndex,
):
    pair = read_pair(session, run, train_index, test_index)
    return render(
        request, "pair.html", pair, "/api" + urls.pair_page(run.name, train_index, test_index),
        run=run,
    )
