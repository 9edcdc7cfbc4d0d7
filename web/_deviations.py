"""Recording a protocol deviation for a visit: the library's ``deviation``, as ``trialflow deviation`` calls it.

A missed visit stays on the worklist until someone records why; the form offers the patient's visits
from the ledger the engine keeps, and the engine decides whether a deviation applies on that day.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ._auth import Actor, NotFound, store_of
from ._render import page
from ._security import check_csrf

__all__ = ["router"]

router = APIRouter()


def _ledger(request: Request, actor: Any, patient: str) -> list[Any]:
    from trialflow.engine import Refused, status, visits

    store = store_of(request)
    try:
        status(store, patient, actor=actor)  # the actor may see this patient
        return list(visits(store, patient).visits)
    except Refused:
        raise NotFound(f"no patient {patient!r} you may see") from None


def _render(request: Request, patient: str, ledger: list[Any], values: dict[str, str],
            errors: dict[str, list[str]], status: int = 200) -> HTMLResponse:
    from trialflow.engine import DEVIATION_KINDS

    choices = [v for v in ledger if v.status in ("missed", "overdue", "done")]
    return page(request, "deviation.html", {"patient": patient, "choices": choices, "kinds": DEVIATION_KINDS,
                                            "values": values, "errors": errors, "today": dt.date.today()},
                status_code=status)


@router.get("/patients/{patient}/deviation", response_class=HTMLResponse, include_in_schema=False)
def deviation_form(request: Request, patient: str, actor: Actor, visit: str = "") -> HTMLResponse:
    return _render(request, patient, _ledger(request, actor, patient), {"visit": visit[:64]}, {})


@router.post("/patients/{patient}/deviation", include_in_schema=False, dependencies=[Depends(check_csrf)])
def deviation_submit(request: Request, patient: str, actor: Actor, visit: Annotated[str, Form(max_length=64)] = "",
                     kind: Annotated[str, Form(max_length=32)] = "", reason: Annotated[str, Form(max_length=2000)] = "",
                     date: Annotated[str, Form(max_length=20)] = "") -> Response:
    from trialflow.engine import PermissionDenied, Refused, deviation

    ledger = _ledger(request, actor, patient)
    values = {"visit": visit, "kind": kind, "reason": reason, "date": date}
    try:
        when = dt.date.fromisoformat(date.strip())
    except ValueError:
        return _render(request, patient, ledger, values, {"date": [f"expected a date as YYYY-MM-DD, got {date!r}"]},
                       422)
    try:
        written = deviation(store_of(request), patient, visit, kind, reason, when, actor)
    except PermissionDenied as err:
        return _render(request, patient, ledger, values, {"": list(err.problems)}, 403)
    except Refused as err:
        def field(p: str) -> str:
            return "reason" if "reason" in p else "kind" if "kind" in p else "visit" if "visit" in p else ""

        errors: dict[str, list[str]] = {}
        for p in err.problems:
            errors.setdefault(field(p), []).append(p)
        return _render(request, patient, ledger, values, errors, 422)
    request.session["flash"] = written.message
    return RedirectResponse(f"/patients/{quote(patient)}#h-dev", status_code=303)
