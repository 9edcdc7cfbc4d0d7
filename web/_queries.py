"""Data queries from the browser: monitors and data managers open them on a recorded value, the site answers.

Each route is one library call (``open_query``, ``answer_query``, ``close_query``); the engine decides
who may do which, at which site. The forms are plain HTML; htmx only saves a page reload.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ._auth import Actor, NotFound, store_of
from ._render import page
from ._security import check_csrf

__all__ = ["router"]

router = APIRouter()


def _event_of(request: Request, actor: Any, patient: str, event: int) -> Any:
    from trialflow.engine import Refused, history

    try:
        hist = history(store_of(request), patient, actor=actor)
    except Refused:
        raise NotFound(f"no patient {patient!r} you may see") from None
    found = next((h for h in hist if h.event == event), None)
    if found is None:
        raise NotFound(f"{patient} has no recorded event {event}")
    return found


@router.get("/patients/{patient}/queries/new", response_class=HTMLResponse, include_in_schema=False)
def query_form(request: Request, patient: str, event: int, actor: Actor) -> HTMLResponse:
    target = _event_of(request, actor, patient, event)
    return page(request, "query_new.html", {"patient": patient, "target": target, "errors": [], "text": ""})


@router.post("/patients/{patient}/queries", include_in_schema=False, dependencies=[Depends(check_csrf)])
def query_open(request: Request, patient: str, actor: Actor, event: Annotated[int, Form()],
               text: Annotated[str, Form(max_length=4000)] = "") -> Response:
    from trialflow.engine import PermissionDenied, Refused, open_query

    target = _event_of(request, actor, patient, event)
    try:
        q = open_query(store_of(request), patient, event, text, actor)
    except Refused as err:
        return page(request, "query_new.html", {"patient": patient, "target": target, "errors": err.plain,
                                                "text": text},
                    status_code=403 if isinstance(err, PermissionDenied) else 422)
    request.session["flash"] = f"query {q.id} opened on event {event}"
    return RedirectResponse(f"/patients/{quote(patient)}#h-queries", status_code=303)


def _update(request: Request, actor: Any, patient: str, query: int, verb: str, text: str) -> Response:
    from trialflow.engine import PermissionDenied, Refused, answer_query, close_query, list_queries

    store = store_of(request)
    try:
        mine = {q.id for q in list_queries(store, actor, patient=patient)}
    except Refused:
        raise NotFound(f"no patient {patient!r} you may see") from None
    if query not in mine:
        raise NotFound(f"{patient} has no data query {query}")
    try:
        if verb == "answer":
            answer_query(store, query, text, actor)
        else:
            close_query(store, query, actor, text or None)
    except Refused as err:
        from ._lib import patient_view
        from ._pages import patient_context

        ctx = {**patient_context(patient_view(request, actor, patient)), "query_errors": {query: list(err.plain)}}
        return page(request, "patient.html", ctx,
                    status_code=403 if isinstance(err, PermissionDenied) else 422)
    request.session["flash"] = f"query {query} {'answered' if verb == 'answer' else 'closed'}"
    return RedirectResponse(f"/patients/{quote(patient)}#q-{query}", status_code=303)


@router.post("/patients/{patient}/queries/{query}/answer", include_in_schema=False,
             dependencies=[Depends(check_csrf)])
def query_answer(request: Request, patient: str, query: int, actor: Actor,
                 text: Annotated[str, Form(max_length=4000)] = "") -> Response:
    return _update(request, actor, patient, query, "answer", text)


@router.post("/patients/{patient}/queries/{query}/close", include_in_schema=False,
             dependencies=[Depends(check_csrf)])
def query_close(request: Request, patient: str, query: int, actor: Actor,
                text: Annotated[str, Form(max_length=4000)] = "") -> Response:
    return _update(request, actor, patient, query, "close", text)
