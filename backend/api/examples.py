"""JSON routes of examples: one example, its top influences, and a class's gallery."""

from __future__ import annotations

from fastapi import APIRouter

from backend.deps import RunDep, SessionDep
from backend.params import (
    GallerySort,
    InfluenceLimit,
    InfluenceOrder,
    LabelPath,
    MemMax,
    MemMin,
    Order,
    Page,
    PerPage,
    TestIndex,
    TrainIndex,
)
from backend.queries.examples import read_example, read_influences
from backend.queries.gallery import read_gallery
from backend.schemas import ExamplePublic, GalleryPublic, InfluencesPublic

router = APIRouter(prefix="/api/runs/{run}", tags=["examples"])




@router.get("/train/{index}", response_model=ExamplePublic)
def read_train_example(session: SessionDep, run: RunDep, index: TrainIndex) -> ExamplePublic:
    """Read a training example: label, mem, consistency score, trial counts."""
    return read_example(session, run, "train", index)


@router.get("/test/{index}", response_model=ExamplePublic)
def read_test_example(session: SessionDep, run: RunDep, index: TestIndex) -> ExamplePublic:
    """Read a test example: label and the fraction of models correct on it."""
    return read_example(session, run, "test", index)


@router.get("/train/{index}/influences", response_model=InfluencesPublic)
def read_train_influences(
    session: SessionDep, run: RunDep, index: TrainIndex, limit: InfluenceLimit = 10,
    order: InfluenceOrder = "desc",
) -> InfluencesPublic:
    """List the test examples that a training example influences most, or least."""
    return read_influences(session, run, "train", index, limit, order)


@router.get("/test/{index}/influences", response_model=InfluencesPublic)
def read_test_influences(
    session: SessionDep, run: RunDep, index: TestIndex, limit: InfluenceLimit = 10,
    order: InfluenceOrder = "desc",
) -> InfluencesPublic:
    """List the training examples that influence a test example most, or least."""
    return read_influences(session, run, "test", index, limit, order)


@router.get("/classes/{label}/examples", response_model=GalleryPublic)
def read_class_gallery(
    session: SessionDep,
    run: RunDep,
    label: LabelPath,
    order: Order = "desc",
    mem_min: MemMin = None,
    mem_max: MemMax = None,
    page: Page = 1,
    per_page: PerPage = 60,
    sort: GallerySort = None,
) -> GalleryPublic:
    """List one page of a class's training examples sorted by mem or consistency score."""
    return read_gallery(session, run, label, order, mem_min, mem_max, page, per_page, sort)
