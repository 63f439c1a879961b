"""Images of examples as PNG, scaled up without blurring, with HTTP caching headers."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Response
from sqlalchemy import select

from backend.deps import RunDep, SessionDep
from backend.errors import not_found
from backend.imaging import scale_png
from backend.params import MAX_INDEX, Scale
from backend.queries.examples import check_index
from backend.store.models import Example

router = APIRouter(prefix="/api/runs/{run}", tags=["images"])

# A loaded run never changes, and a reloaded one gets new bytes and so a new ETag.
# An hour of caching spares repeat requests while a user pages back and forth.
CACHE_CONTROL = "public, max-age=3600"

Split = Annotated[Literal["train", "test"], Path(description="train or test.")]
Index = Annotated[int, Path(ge=0, le=MAX_INDEX, description="Index of the example.")]


@router.get(
    "/{split}/{index}/image.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 304: {"description": "Not modified."}},
)
def read_image(
    request: Request, session: SessionDep, run: RunDep, split: Split, index: Index,
    scale: Scale = None,
) -> Response:
    """Return an example's image as PNG, enlarged by an integer factor with nearest neighbour."""
    check_index(run, split, index)
    thumbnail = session.scalar(
        select(Example.thumbnail).where(
            Example.run_id == run.id, Example.split == split, Example.index == index
        )
    )
    if thumbnail is None:
        raise not_found(
            f"run {run.name!r} stores no image for {split} example {index}",
            {"split": split, "index": index},
        )

    etag = '"' + hashlib.sha256(thumbnail + f"/{scale}".encode()).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(scale_png(thumbnail, scale), media_type="image/png", headers=headers)


def _etags(header: str) -> set[str]:
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return tags - {""}
