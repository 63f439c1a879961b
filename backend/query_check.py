"""Reject query parameters that a route does not take, or that a link repeats.

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
    """Raise a 422 ApiError naming query parameters the route does not declare, or repeated ones."""
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
        accepted = (
            f"this page takes: {', '.join(sorted(known))}" if known
            else "this page takes no query parameters"
        )
        raise ApiError(
            422,
            f"unknown query parameter(s) {', '.join(unknown)}; {accepted}",
            {"unknown": unknown, "accepted": sorted(known)},
        )
    # Every parameter takes one value. FastAPI would keep the last of several, and
    # the link would name two views while showing one.
    names = [name for name, _ in request.query_params.multi_items()]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ApiError(
            422,
            f"query parameter(s) {', '.join(repeated)} given more than once; give each once",
            {"repeated": repeated},
        )


def _query_names(dependant) -> set[str]:
    """Return the query parameter names of a FastAPI dependant and its dependencies."""
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names
