"""One error shape for every failed request, JSON under /api and HTML elsewhere.

JSON errors read `{"error": {"status": 404, "message": "...", "detail": ...}}`,
whether a route raised `ApiError`, FastAPI rejected a parameter, or no route matched.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A request that cannot be served; the message names the value and the fix."""

    def __init__(self, status: int, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


def not_found(message: str, detail: Any = None) -> ApiError:
    return ApiError(404, message, detail)


def error_body(status: int, message: str, detail: Any = None) -> dict:
    return {"error": {"status": status, "message": message, "detail": detail}}


def describe_validation_errors(errors: list[dict]) -> tuple[str, list[dict]]:
    """Return one readable sentence and a list of {parameter, location, message, found}."""
    items = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        parameter = location[-1] if location else "request"
        items.append({
            "parameter": parameter,
            "location": location[0] if location else None,
            "message": error.get("msg", "invalid value"),
            "found": error.get("input"),
        })
    sentences = [
        f"{item['parameter']}: {item['message']}, found {item['found']!r}"
        if item["found"] is not None
        else f"{item['parameter']}: {item['message']}"
        for item in items
    ]
    return "invalid request parameters: " + "; ".join(sentences), items


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api") or request.url.path in ("/openapi.json",)


def printable(text: str) -> str:
    """Return `text` with control characters escaped, as a log line must show a request's path.

    A path with %0A in it would otherwise start a forged line of its own.
    """
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _respond(request: Request, status: int, message: str, detail: Any = None):
    run = request.path_params.get("run")
    logger.warning(
        "%s %s failed with %d (run %s): %s",
        request.method, printable(request.url.path), status,
        printable(run) if run is not None else "-", printable(message),
    )
    if _wants_json(request):
        return JSONResponse(error_body(status, message, detail), status_code=status)

    templates = request.app.state.templates
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message}, status_code=status
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through `_respond`, so all of them share one shape and one log line."""

    @app.exception_handler(ApiError)
    async def handle_api_error(request: Request, error: ApiError):
        return _respond(request, error.status, error.message, error.detail)

    @app.exception_handler(RequestValidationError)
    async def handle_validation_error(request: Request, error: RequestValidationError):
        message, items = describe_validation_errors(list(error.errors()))
        return _respond(request, 422, message, jsonable(items))

    @app.exception_handler(StarletteHTTPException)
    async def handle_http_error(request: Request, error: StarletteHTTPException):
        message = str(error.detail)
        if error.status_code == 404 and message == "Not Found":
            message = f"no page or endpoint at {request.url.path}; see /openapi.json for the API's endpoints"
        elif error.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return _respond(request, error.status_code, message)


def jsonable(value: Any) -> Any:
    """Turn validation inputs into JSON values; unknown objects become their repr."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return repr(value)
