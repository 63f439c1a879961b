"""Pages of examples: a class's gallery, a training example and a test example."""

from __future__ import annotations

from fastapi import APIRouter, Request

from backend import urls
from backend.deps import RunDep, SessionDep
from backend.pages.rendering import render
from backend.params import (
    MAX_LIMIT,
    GallerySort,
    LabelPath,
    MemMax,
    MemMin,
    Order,
    Page,
    PageInfluenceLimit,
    PerPage,
    TestIndex,
    TrainIndex,
)
from backend.queries.examples import read_influences
from backend.queries.gallery import read_gallery

router = APIRouter(include_in_schema=False)

# Pairs listed on an example page.
PAGE_INFLUENCES = 12


@router.get("/runs/{run}/classes/{label}")
def gallery_page(
    request: Request,
    session: SessionDep,
    run: RunDep,
    label: LabelPath,
    order: Order = "desc",
    mem_min: MemMin = None,
    mem_max: MemMax = None,
    page: Page = 1,
    per_page: PerPage = 60,
    sort: GallerySort = None,
):
    gallery = read_gallery(session, run, label, order, mem_min, mem_max, page, per_page, sort)
    sort = gallery.sort
    state = {"sort": sort, "order": order, "mem_min": mem_min, "mem_max": mem_max,
             "per_page": per_page}
    base = f"{urls.run_page(run.name)}/classes/{label}"
    return render(
        request, "gallery.html", gallery,
        urls.with_query(f"/api{base}/examples", page=page, **state),
        run=run,
        page_url=lambda number: urls.with_query(base, page=number, **state),
        csv_url=urls.with_query(f"/api{base}/examples.csv", sort=sort, order=order,
                                mem_min=mem_min, mem_max=mem_max),
        base_url=base,
    )


def _example_page(
    request: Request, session, run, split: str, index: int, template: str, limit: int
):
    influences = read_influences(session, run, split, index, limit)
    # The lowest influences, of which the negative ones are shown: the examples it
    # hurts, or that hurt it.
    lowest = read_influences(session, run, split, index, limit, "asc")
    page = urls.example_page(run.name, split, index)
    json_url = urls.with_query(f"/api{page}/influences", limit=limit)
    # A list cut at the limit offers the rest of the exactly ranked influences, up
    # to the most a page lists.
    more = min(influences.exact_count, MAX_LIMIT)
    more_url = urls.with_query(page, limit=more) if more > limit else None
    return render(
        request, template, influences, json_url, run=run, more_url=more_url, more=more,
        negative=[item for item in lowest.influences if item.infl < 0],
    )


@router.get("/runs/{run}/train/{index}")
def train_example_page(
    request: Request, session: SessionDep, run: RunDep, index: TrainIndex,
    limit: PageInfluenceLimit = PAGE_INFLUENCES,
):
    return _example_page(request, session, run, "train", index, "train_example.html", limit)


@router.get("/runs/{run}/test/{index}")
def test_example_page(
    request: Request, session: SessionDep, run: RunDep, index: TestIndex,
    limit: PageInfluenceLimit = PAGE_INFLUENCES,
):
    return _example_page(request, session, run, "test", index, "test_example.html", limit)
