"""Reject query parameters that a route does not take.

FastAPI (0.165) ignores them, so a link with a misspelt parameter (`mem_treshold=0.5`)
would show the default view without a word, and the link would not reproduce
what its author saw.
"""

from __future__ import annotations

from fastapi import Request

from backend.errors import ApiError

# Query parameter names of each route, computed on its first request.
_known_by_route: dict[int, frozenset[str]] = {}


def reject_unknown_query_parameters(request: Request) -> None:
    """Raise a 422 ApiError naming every query parameter the route does not declare."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _known_by_route.get(id(route))
    if known is None:
        known = frozenset(_query_names(dependant))
        _known_by_route[id(route)] = known
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        accepted = ", ".join(sorted(known)) or "none"
        raise ApiError(
            422,
            f"unknown query parameter(s) {', '.join(unknown)}; this page takes: {accepted}",
            {"unknown": unknown, "accepted": sorted(known)},
        )


def _query_names(dependant) -> set[str]:
    """Return the query parameter names of a FastAPI dependant and its dependencies."""
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names
