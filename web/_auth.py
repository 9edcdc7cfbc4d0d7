"""Signing in and out, and who is asking: the engine authenticates; the web only keeps the session.

The session cookie (signed, HttpOnly, SameSite=Strict) holds the user's id; every request turns it
back into the engine's :class:`~trialflow.engine.Actor`, read afresh from the store, and passes that
actor to the library, which decides what it may see and do. A wrong password and an unknown name get
the same message (the engine's), so names cannot be probed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ._render import page
from ._security import check_csrf, csrf_token

__all__ = ["LoginRequired", "NotFound", "current_actor", "router", "safe_next"]

router = APIRouter()


class LoginRequired(Exception):
    """No valid session: HTML pages redirect to /login, the API answers 401."""


class NotFound(Exception):
    """What the user asked for does not exist, or is not theirs to see (the same answer, on purpose)."""


def store_of(request: Request) -> Any:
    return request.app.state.store


def current_actor(request: Request) -> Any:
    """The signed-in user as the engine's Actor, refreshed from the store (a disabled user is signed out)."""
    import dataclasses

    from trialflow.engine import Refused, actor_by_id

    uid = request.session.get("uid")
    if not isinstance(uid, int):
        raise LoginRequired()
    try:
        actor = dataclasses.replace(actor_by_id(store_of(request), uid), context=_context(request))
    except Refused:
        request.session.clear()
        raise LoginRequired() from None
    request.state.user = actor
    return actor


Actor = Annotated[Any, Depends(current_actor)]


def _context(request: Request) -> dict[str, str]:
    client = request.client.host if request.client else "unknown"
    return {"interface": "web", "remote": client}


def safe_next(target: str | None) -> str:
    """Only a path on this site (never '//host' or a scheme) may follow the login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return page(request, "login.html", {"next": safe_next(next), "error": None, "name": ""})


@router.post("/login", include_in_schema=False, dependencies=[Depends(check_csrf)])
def login(request: Request, name: Annotated[str, Form(max_length=200)] = "",
          password: Annotated[str, Form(max_length=1000)] = "",
          next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    from trialflow.engine import Refused, authenticate

    try:
        actor = authenticate(store_of(request), name, password, context=_context(request))
    except Refused as err:
        return page(request, "login.html", {"next": safe_next(next), "error": "; ".join(err.plain),
                                            "name": name}, status_code=401)
    request.session.clear()  # a fresh session (and CSRF token) at every sign-in: no session fixation
    request.session["uid"] = actor.user_id
    csrf_token(request)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout", include_in_schema=False, dependencies=[Depends(check_csrf)])
def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
