"""JSON routes of high-influence pairs."""

from __future__ import annotations

from fastapi import APIRouter

from backend.deps import RunDep, SessionDep
from backend.params import Limit, Offset, SelectionDep, TestIndex, TrainIndex
from backend.queries.pairs import check_selection, read_pair, read_pairs
from backend.schemas import PairDetailPublic, PairsPublic

router = APIRouter(prefix="/api/runs/{run}/pairs", tags=["pairs"])


@router.get("", response_model=PairsPublic)
def list_pairs(
    session: SessionDep, run: RunDep, selection: SelectionDep, limit: Limit = 50, offset: Offset = 0
) -> PairsPublic:
    """Select the pairs above both thresholds: summary, influence histogram, one page of pairs."""
    check_selection(run, selection)
    return read_pairs(session, run, selection, limit, offset)


@router.get("/{train_index}/{test_index}", response_model=PairDetailPublic)
def read_pair_detail(
    session: SessionDep, run: RunDep, train_index: TrainIndex, test_index: TestIndex
) -> PairDetailPublic:
    """Read one pair: both examples and the influence of the training on the test example."""
    return read_pair(session, run, train_index, test_index)
