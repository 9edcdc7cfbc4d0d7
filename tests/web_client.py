"""A signed-in TestClient for the web tests: reads the CSRF token from the pages, as a browser does."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from web_helpers import PASSWORDS

from trialflow.web import create_app

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def app_for(db: str) -> Any:
    return create_app(db, secret_key="test-secret-not-for-production")


def token(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    found = TOKEN.search(page.text)
    assert found, f"no CSRF token on {path} ({page.status_code})"
    return found.group(1)


def signed_in(app: Any, user: str | None) -> TestClient:
    """A client signed in as ``user`` (None: signed out), following no redirects."""
    client = TestClient(app, follow_redirects=False, base_url="http://127.0.0.1")
    if user is not None:
        r = client.post("/login", data={"name": user, "password": PASSWORDS[user], "next": "/",
                                        "csrf_token": token(client)})
        assert r.status_code == 303, r.text
    return client


def post(client: TestClient, path: str, data: dict[str, Any], page: str = "/") -> Any:
    """POST a form the way the page that holds it would (with the session's CSRF token)."""
    return client.post(path, data={**data, "csrf_token": token(client, page)})
