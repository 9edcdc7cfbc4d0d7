"""Rendering: the Jinja2 templates (autoescaped: user text is always text), and JSON in the ``--json`` shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates

from trialflow.engine import plain_text

from ._security import csrf_token

__all__ = ["json_response", "page", "templates"]

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.autoescape = True  # every template, whatever its name ends with
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True

STATUS_LABEL = {"overdue": "Overdue", "due": "Due", "missed": "Missed: record a deviation", "upcoming": "Upcoming"}
templates.env.globals["STATUS_LABEL"] = STATUS_LABEL
templates.env.filters["plain"] = plain_text  # an engine sentence without its command-line advice


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """Render ``name`` with what every page needs: the user, the CSRF token, the request."""
    has_session = "session" in request.scope  # not for an error raised outside the session middleware
    ctx = {"user": getattr(request.state, "user", None), "csrf": csrf_token(request) if has_session else "",
           "flash": request.session.pop("flash", None) if has_session else None, **context}
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def json_response(obj: Any, status_code: int = 200) -> JSONResponse:
    """``obj`` exactly as ``--json`` prints it (the CLI's own converter)."""
    from trialflow.cli._output import jsonable

    return JSONResponse(jsonable(obj), status_code=status_code)
