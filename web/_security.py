"""What keeps the browser side safe: response headers (a strict CSP), CSRF tokens, loopback checks.

The session itself is Starlette's signed cookie (itsdangerous), set HttpOnly and SameSite=Strict by
:func:`trialflow.web.create_app`. Every form carries a CSRF token kept in that session (the
synchronizer-token pattern); :func:`check_csrf` is a dependency of every route that changes anything.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import Response

__all__ = ["CSP", "SecurityHeaders", "check_csrf", "csrf_token", "is_loopback"]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

#: No inline script anywhere, no third-party origin; styles only from our own files. The protocol page
#: relaxes ``style-src`` for the one thing that needs it (Mermaid writes a <style> into its SVG).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
CSP_DIAGRAM = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


class SecurityHeaders(BaseHTTPMiddleware):
    """CSP, no framing, no sniffing, no referrer, no caching of pages that hold patient data; and the
    server's own time per request (``Server-Timing``), which the web benchmark reads."""

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        relaxed = getattr(request.state, "csp_diagram", False)
        response.headers["Content-Security-Policy"] = CSP_DIAGRAM if relaxed else CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use), for the hidden field of every form."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def check_csrf(request: Request) -> None:
    """Refuse (403) a state-changing request whose token does not match the session's."""
    expected = request.session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not (isinstance(expected, str) and sent and hmac.compare_digest(expected.encode(), sent.encode())):
        raise HTTPException(status_code=403, detail="the form has expired or did not come from this site: "
                                                    "reload the page and try again")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'; a name that is not an address is not loopback."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
