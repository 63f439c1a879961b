"""CSV exports of a gallery and of a pair selection, with the same filters as their pages."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from backend.deps import RunDep, SessionDep
from backend.params import GallerySort, LabelPath, MemMax, MemMin, Order, SelectionDep
from backend.queries.examples import class_names
from backend.queries.gallery import gallery_filters, gallery_order, read_gallery
from backend.queries.pairs import check_selection, selection_filters
from backend.store.models import Example, Influence

router = APIRouter(prefix="/api/runs/{run}", tags=["exports"])

# Rows fetched from the database per chunk of CSV sent.
CHUNK_ROWS = 5000

GALLERY_COLUMNS = (
    "index", "label", "mem", "mem_se", "consistency", "consistency_se",
    "in_trials", "out_trials", "accuracy",
)
PAIR_COLUMNS = (
    "train_index", "test_index", "train_label", "test_label", "train_mem", "infl", "infl_se",
)


def _csv_lines(header: tuple[str, ...], rows, extra) -> Iterator[str]:
    """Yield CSV text chunk by chunk; `extra(row)` returns the values of the named columns."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for chunk in rows.partitions(CHUNK_ROWS):
        writer.writerows((*row, *extra(row)) for row in chunk)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _csv_response(filename: str, header: tuple[str, ...], rows, extra) -> StreamingResponse:
    return StreamingResponse(
        _csv_lines(header, rows, extra),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/classes/{label}/examples.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
def export_gallery(
    session: SessionDep,
    run: RunDep,
    label: LabelPath,
    order: Order = "desc",
    mem_min: MemMin = None,
    mem_max: MemMax = None,
    sort: GallerySort = None,
) -> StreamingResponse:
    """Export every training example of a gallery (all pages) as CSV."""
    # Validates label and range with the gallery's own rules before streaming starts,
    # and resolves the default sort.
    sort = read_gallery(
        session, run, label, order, mem_min, mem_max, page=1, per_page=1, sort=sort
    ).sort
    rows = session.execute(
        select(*(getattr(Example, column) for column in GALLERY_COLUMNS))
        .where(*gallery_filters(run, label, mem_min, mem_max, sort))
        .order_by(*gallery_order(sort, order))
        .execution_options(yield_per=CHUNK_ROWS)
    )
    names = class_names(run)
    return _csv_response(
        f"{run.name}-class-{label}.csv", (*GALLERY_COLUMNS, "class_name"), rows,
        lambda row: (names[row[1]],),
    )


@router.get("/pairs.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
def export_pairs(session: SessionDep, run: RunDep, selection: SelectionDep) -> StreamingResponse:
    """Export every pair of a selection as CSV, highest influence first."""
    check_selection(run, selection)
    rows = session.execute(
        select(*(getattr(Influence, column) for column in PAIR_COLUMNS))
        .where(*selection_filters(run, selection))
        .order_by(Influence.infl.desc(), Influence.train_index, Influence.test_index)
        .execution_options(yield_per=CHUNK_ROWS)
    )
    names = class_names(run)
    return _csv_response(
        f"{run.name}-pairs.csv", (*PAIR_COLUMNS, "train_class", "test_class"), rows,
        lambda row: (names[row[2]], names[row[3]]),
    )
