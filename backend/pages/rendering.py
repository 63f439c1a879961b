"""The Jinja2 environment of the pages and the helper that renders one page."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from backend import urls

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
TEMPLATES = FRONTEND / "templates"
STATIC = FRONTEND / "static"


def format_number(value: float | None, digits: int = 3) -> str:
    """Format an estimate with a true minus sign; a missing estimate shows as a dash."""
    if value is None:
        return "–"
    return f"{value:.{digits}f}".replace("-", "−")


def format_count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def build_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["num"] = format_number
    templates.env.filters["count"] = format_count
    templates.env.globals["urls"] = urls
    return templates


def render(request: Request, template: str, data: BaseModel, json_url: str, **context):
    """Render `template` with `data`, its JSON form for scripts, and a link to the JSON twin."""
    return request.app.state.templates.TemplateResponse(
        request,
        template,
        {"data": data, "data_json": _script_json(data), "json_url": json_url, **context},
    )


def _script_json(data: BaseModel) -> str:
    # Escaping "<" keeps a "</script>" inside a value from ending the script element.
    return data.model_dump_json().replace("<", "\\u003c")
