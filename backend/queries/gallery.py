"""The gallery: training examples of one class, sorted by mem or consistency score, paginated."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.errors import ApiError
from backend.queries.examples import EXAMPLE_COLUMNS, check_label, class_names, example_public
from backend.schemas import GalleryPublic
from backend.store.models import Example, Run

ORDERS = ("desc", "asc")
# The estimates a gallery can sort by. Imported consistency scores come without mem.
SORT_KEYS = {"mem": Example.mem, "consistency": Example.consistency}


def gallery_order(sort: str, order: str) -> tuple:
    """Return the ORDER BY of a gallery: its estimate in `order`, then the example index."""
    key = SORT_KEYS[sort]
    return (key.desc() if order == "desc" else key.asc()), Example.index


def gallery_filters(
    run: Run, label: int, mem_min: float | None, mem_max: float | None, sort: str = "mem"
) -> list:
    filters = [
        Example.run_id == run.id,
        Example.split == "train",
        Example.label == label,
        SORT_KEYS[sort].is_not(None),
    ]
    if mem_min is not None:
        filters.append(Example.mem >= mem_min)
    if mem_max is not None:
        filters.append(Example.mem <= mem_max)
    return filters


def _has_mem(session: Session, run: Run) -> bool:
    return session.scalar(
        select(Example.index).where(
            Example.run_id == run.id, Example.split == "train", Example.mem.is_not(None)
        ).limit(1)
    ) is not None


def read_gallery(
    session: Session,
    run: Run,
    label: int,
    order: str = "desc",
    mem_min: float | None = None,
    mem_max: float | None = None,
    page: int = 1,
    per_page: int = 60,
    sort: str | None = None,
) -> GalleryPublic:
    """Return one page of a class's training examples with mem in [mem_min, mem_max].

    They are sorted by `sort`, mem or consistency, and those without it are counted
    as missing. None sorts by mem, or by consistency for a run without any mem.
    """
    if sort is None:
        sort = "mem" if _has_mem(session, run) else "consistency"
    class_name = check_label(run, label)
    if mem_min is not None and mem_max is not None and mem_min > mem_max:
        raise ApiError(
            422,
            f"mem_min {mem_min} is above mem_max {mem_max}; swap them or widen the range",
            {"mem_min": mem_min, "mem_max": mem_max},
        )

    filters = gallery_filters(run, label, mem_min, mem_max, sort)
    total = session.scalar(select(func.count()).select_from(Example).where(*filters)) or 0
    missing = session.scalar(
        select(func.count()).select_from(Example).where(
            Example.run_id == run.id, Example.split == "train", Example.label == label,
            SORT_KEYS[sort].is_(None),
        )
    ) or 0

    pages = max(1, -(-total // per_page))
    if page > pages:
        raise ApiError(
            422,
            f"page {page} is past the last page, {pages}, of the {total} examples of class "
            f"{class_name!r} in this range; pass a page from 1 to {pages}",
            {"page": page, "pages": pages},
        )

    rows = session.execute(
        select(*EXAMPLE_COLUMNS)
        .where(*filters)
        .order_by(*gallery_order(sort, order))
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    names = class_names(run)
    return GalleryPublic(
        run=run.name,
        label=label,
        class_name=class_name,
        sort=sort,
        order=order,
        mem_min=mem_min,
        mem_max=mem_max,
        page=page,
        per_page=per_page,
        total=total,
        pages=pages,
        missing=missing,
        examples=[example_public(run, row, names) for row in rows],
    )
