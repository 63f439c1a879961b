"""Query and path parameters shared by the JSON API and the HTML pages, validated on entry."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Path, Query
from pydantic import BeforeValidator, Field

from backend.deps import RunDep
from backend.queries.pairs import DEFAULT_MEM_THRESHOLD, default_selection
from backend.schemas import SelectionThresholds

# Upper bounds keep every value inside the database's 64-bit integers and every page
# small enough to render; they are far above any real run's size.
MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000_000
MAX_PAGE = 1_000_000
MAX_PER_PAGE = 500
MAX_INDEX = 2**31 - 1

TrainIndex = Annotated[int, Path(ge=0, le=MAX_INDEX, description="Index of the training example.")]
TestIndex = Annotated[int, Path(ge=0, le=MAX_INDEX, description="Index of the test example.")]


def _empty_as_none(value):
    """Return None for an empty form field, which a browser sends as `mem_min=`."""
    return None if value == "" else value


def _class_index(value):
    """Return a label that is written as a class index, or raise ValueError naming the rule.

    Labels in links are class indices, 0 to K-1. A class name such as 'cat', or a
    number such as 3.0, is rejected rather than read as a guess.
    """
    if isinstance(value, str) and not value.isdigit():
        raise ValueError(
            "labels are class indices such as 3 (the run's JSON, GET /api/runs/NAME, lists "
            "each class's label and name)"
        )
    return value


LabelPath = Annotated[int, BeforeValidator(_class_index), Path(
    ge=0, le=MAX_INDEX, description="Class label: the class index, 0 to K-1."
)]

MemThreshold = Annotated[float, Query(
    ge=-1.0, le=1.0, description="Lowest memorization of the training example, in [-1, 1]."
)]
InflThreshold = Annotated[float | None, Query(
    ge=-1.0, le=1.0,
    description="Lowest influence of the pair, in [-1, 1]; default 0.15, or the run's "
    "influence floor if that is higher.",
)]
# Before validators run last to first: a blank field becomes None, then a class
# index is checked. The range applies to the number alone, because None has no order.
LabelFilter = Annotated[
    Annotated[int, Field(ge=0, le=MAX_INDEX)] | None,
    BeforeValidator(_class_index), BeforeValidator(_empty_as_none),
    Query(description="Only pairs whose training example has this label (a class index); "
          "empty or absent for every class."),
]
SameClass = Annotated[bool, Query(
    description="Only pairs whose training and test examples share a label."
)]
Limit = Annotated[int, Query(ge=0, le=MAX_LIMIT, description="Number of items to return.")]
InfluenceLimit = Annotated[int, Query(ge=0, le=MAX_LIMIT, description="Number of pairs.")]
PageInfluenceLimit = Annotated[int, Query(
    ge=1, le=MAX_LIMIT, description="Influences listed each way on an example page."
)]
InfluenceOrder = Annotated[Literal["desc", "asc"], Query(
    description="desc: highest influence first; asc: lowest (most negative) first."
)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip first.")]

Order = Annotated[Literal["desc", "asc"], Query(
    description="desc: highest first; asc: lowest first."
)]
GallerySort = Annotated[Literal["mem", "consistency"] | None, Query(
    description="The estimate to sort by: mem, or the consistency score, which imported "
    "scores may have without mem. Absent: mem, or the consistency score for a run "
    "without any mem. A mem range applies in either case."
)]


# An empty bound means no bound, so the gallery's form works with either field blank.
# The range applies to the number alone, because None has no order.
MemBound = Annotated[float, Field(ge=-1.0, le=1.0)]
MemMin = Annotated[MemBound | None, BeforeValidator(_empty_as_none), Query(
    description="Lowest mem shown, in [-1, 1]; empty or absent for none."
)]
MemMax = Annotated[MemBound | None, BeforeValidator(_empty_as_none), Query(
    description="Highest mem shown, in [-1, 1]; empty or absent for none."
)]
Page = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")]
PerPage = Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="Examples per page.")]
Scale = Annotated[int | None, Query(
    ge=1, le=32, description="Integer zoom factor; default: the image's longer side near 112 px."
)]


def get_selection(
    run: RunDep,
    mem_threshold: MemThreshold = DEFAULT_MEM_THRESHOLD,
    infl_threshold: InflThreshold = None,
    label: LabelFilter = None,
    same_class: SameClass = True,
) -> SelectionThresholds:
    if infl_threshold is None:
        infl_threshold = default_selection(run).infl_threshold
    return SelectionThresholds(
        mem_threshold=mem_threshold, infl_threshold=infl_threshold,
        label=label, same_class=same_class,
    )


SelectionDep = Annotated[SelectionThresholds, Depends(get_selection)]
