"""The FastAPI application: one store, signed session cookies, CSRF, a strict CSP, and the routes.

Every route is a plain (synchronous) function that calls the same library functions as the CLI; FastAPI
runs them in its thread pool. A refusal from the engine is shown to the user, never as a traceback.
"""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.middleware.sessions import SessionMiddleware

from trialflow.engine import PermissionDenied, Store, StoreError
from trialflow.engine._state import DamagedEvent

from ._auth import LoginRequired, NotFound
from ._cache import WorklistCache
from ._render import HERE, page
from ._security import SecurityHeaders

__all__ = ["SESSION_COOKIE", "create_app"]

SESSION_COOKIE = "trialflow_session"
SESSION_HOURS = 8  # a working day; the cookie is signed, so it cannot be forged or extended by the browser
log = logging.getLogger("trialflow.web")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(db: str | None = None, *, secret_key: str | None = None, store: Store | None = None,
               secure_cookies: bool = False) -> FastAPI:
    """The web workspace for the store ``db`` (or an open ``store``).

    ``secret_key`` signs the session cookies; without one a random key is made, so restarting the
    server signs everyone out. ``secure_cookies`` marks them Secure (sent over HTTPS only): for a
    server reached through TLS.
    """
    from . import _api, _auth, _corrections, _decision, _forms, _pages, _queries, _visit_forms

    app = FastAPI(title="trialflow", summary="The coordinator's web workspace: worklist, patients, decisions.",
                  docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.store = store if store is not None else Store.open(db)
    app.state.worklist_cache = WorklistCache()
    app.add_middleware(SecurityHeaders)
    app.add_middleware(SessionMiddleware, secret_key=secret_key or secrets.token_urlsafe(32),
                       session_cookie=SESSION_COOKIE, max_age=SESSION_HOURS * 3600, same_site="strict",
                       https_only=secure_cookies)  # Starlette always sets HttpOnly; loopback is plain http
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.get("/healthz", response_class=PlainTextResponse, include_in_schema=False)
    def healthz() -> str:
        return "ok"

    for module in (_auth, _pages, _forms, _visit_forms, _corrections, _decision, _queries, _api):
        app.include_router(module.router)

    @app.exception_handler(LoginRequired)
    def _login_required(request: Request, exc: LoginRequired) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": "sign in first (POST /login)"}, status_code=401)
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(NotFound)
    def _not_found(request: Request, exc: NotFound) -> Response:
        return _error(request, 404, str(exc))

    @app.exception_handler(PermissionDenied)
    def _forbidden(request: Request, exc: PermissionDenied) -> Response:
        return _error(request, 403, "; ".join(exc.plain))

    @app.exception_handler(HTTPException)
    def _http_error(request: Request, exc: HTTPException) -> Response:
        return _error(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}"
                    for e in exc.errors()]
        return _error(request, 400, "; ".join(problems) or "bad request")

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(StoreError)
    def _database_busy(request: Request, exc: Exception) -> Response:  # the server's trouble, not the user's
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return _error(request, 503, "the database is busy or cannot be reached; nothing was written. "
                                    "Try again in a moment.")

    @app.exception_handler(DamagedEvent)
    def _damaged(request: Request, exc: DamagedEvent) -> Response:  # the store's trouble: said, not hidden
        log.error("damaged event on %s %s: %s", request.method, request.url.path, exc)
        return _error(request, 500, str(exc))

    @app.exception_handler(Exception)
    def _unexpected(request: Request, exc: Exception) -> Response:  # a bug: logged, never shown as a traceback
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(request, 500, "something went wrong on the server; nothing was written. The error is logged.")

    return app


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    titles = {400: "Bad request", 403: "Not allowed", 404: "Not found", 405: "Not allowed", 500: "Server error",
              503: "Try again"}
    return page(request, "error.html", {"title": titles.get(status, "Error"), "message": message,
                                        "status": status}, status_code=status)
