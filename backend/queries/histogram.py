"""Equal-width histograms computed in the database, portable across SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Float, Integer, case, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from backend.schemas import HistogramPublic


class floor_nonnegative(FunctionElement):
    """FLOOR of a non-negative number as an integer.

    SQLite's FLOOR exists only when built with math functions, but for x >= 0 its
    CAST(x AS INTEGER) truncates, which equals the floor. PostgreSQL's CAST rounds,
    so it gets FLOOR.
    """

    type = Integer()
    inherit_cache = True


@compiles(floor_nonnegative)
def _floor_default(element, compiler, **kw):
    return f"CAST(FLOOR({compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(floor_nonnegative, "sqlite")
def _floor_sqlite(element, compiler, **kw):
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


def bin_expression(column: ColumnElement, low: float, high: float, bins: int) -> ColumnElement:
    """Return the bin number 0..bins-1 of `column`; values outside [low, high] are clamped.

    Callers filter out NULLs, since a NULL has no bin.
    """
    width = (high - low) / bins
    clamped = case(
        (column < low, literal(low, Float)),
        (column > high, literal(high, Float)),
        else_=column,
    )
    number = floor_nonnegative((clamped - literal(low, Float)) / literal(width, Float))
    return case((number >= bins, bins - 1), else_=number)


def assemble(rows, low: float, high: float, bins: int) -> HistogramPublic:
    """Build a histogram from (bin, count) rows; absent bins count zero."""
    counts = [0] * bins
    for number, count in rows:
        counts[int(number)] += int(count)
    width = (high - low) / bins
    edges = [round(low + width * step, 10) for step in range(bins + 1)]
    return HistogramPublic(edges=edges, counts=counts)


