"""``/api/...``: the same reads as JSON, in exactly the shapes ``--json`` prints (the CLI's own converter).

| route | CLI |
| --- | --- |
| ``GET /api/worklist`` | ``trialflow next --json`` |
| ``GET /api/patients`` | ``trialflow status --json`` |
| ``GET /api/patients/{id}`` | ``trialflow status ID --json`` (one object) |
| ``GET /api/patients/{id}/history`` | ``trialflow history ID --json`` |
| ``GET /api/patients/{id}/evaluate`` | ``trialflow evaluate ID --json`` |
| ``GET /api/patients/{id}/visits`` | ``trialflow visits ID --json`` |
| ``GET /api/report`` | ``trialflow report --json`` |

The OpenAPI document is at ``/api/openapi.json``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from ._auth import Actor, NotFound, store_of
from ._render import json_response

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["read"])
AsOf = Annotated[dt.date | None, Query(description="Clinical date (YYYY-MM-DD); default today, as --as-of.")]
NotFoundDoc: dict[int | str, dict[str, Any]] = {404: {"description": "No such patient, or not one you may see"},
                                                401: {"description": "Not signed in"}}


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn``; about one patient, any refusal is "not found" (another site's patient looks like no patient)."""
    from trialflow.engine import PermissionDenied, Refused

    try:
        return fn(*args, **kwargs)
    except PermissionDenied:
        if len(args) < 2 or args[1] is None:
            raise  # a role that may not read patient data at all: 403
        raise NotFound("no such patient, or not one you may see") from None
    except Refused:
        raise NotFound("no such patient, or not one you may see") from None


@router.get("/worklist", summary="The worklist (trialflow next --json)", responses=NotFoundDoc)
def api_worklist(request: Request, actor: Actor, as_of: AsOf = None,
                 patient: Annotated[str | None, Query(max_length=64)] = None,
                 horizon: Annotated[int, Query(ge=0, le=3650)] = 28) -> Response:
    from trialflow.engine import next_actions

    if patient is None and as_of is None:  # today's whole worklist: from the cache while the store is unchanged
        from ._lib import worklist_snapshot

        return Response(worklist_snapshot(request, actor, horizon).json_bytes(), media_type="application/json")
    return json_response(_call(next_actions, store_of(request), patient, as_of=as_of, horizon=horizon, actor=actor))


@router.get("/patients", summary="Every patient's status (trialflow status --json)", responses=NotFoundDoc)
def api_patients(request: Request, actor: Actor, as_of: AsOf = None) -> JSONResponse:
    from trialflow.engine import status

    return json_response(_call(status, store_of(request), as_of=as_of, actor=actor))


@router.get("/patients/{patient}", summary="One patient's status (trialflow status ID --json)",
            responses=NotFoundDoc)
def api_patient(request: Request, patient: str, actor: Actor, as_of: AsOf = None) -> JSONResponse:
    from trialflow.engine import status

    return json_response(_call(status, store_of(request), patient, as_of=as_of, actor=actor)[0])


@router.get("/patients/{patient}/history", summary="The audit trail (trialflow history ID --json)",
            responses=NotFoundDoc)
def api_history(request: Request, patient: str, actor: Actor) -> JSONResponse:
    from trialflow.engine import history

    return json_response(_call(history, store_of(request), patient, actor=actor))


@router.get("/patients/{patient}/evaluate", summary="The decision preview (trialflow evaluate ID --json)",
            responses=NotFoundDoc)
def api_evaluate(request: Request, patient: str, actor: Actor, as_of: AsOf = None) -> JSONResponse:
    from trialflow.engine import Refused, evaluate
    from trialflow.engine._access import check_patient, reader

    store = store_of(request)
    if not store.exists(patient):
        raise NotFound("no such patient, or not one you may see")
    _call(check_patient, store, reader(store, actor), patient)  # another site's patient looks like none: 404
    try:
        return json_response(evaluate(store, patient, as_of=as_of, actor=actor))
    except Refused as err:  # the patient is there and may be seen: the date is refused (e.g. before enrolment)
        return JSONResponse({"detail": list(err.plain)}, status_code=422)


@router.get("/patients/{patient}/visits", summary="The visit ledger (trialflow visits ID --json)",
            responses=NotFoundDoc)
def api_visits(request: Request, patient: str, actor: Actor, as_of: AsOf = None) -> JSONResponse:
    from trialflow.engine import visits

    return json_response(_call(visits, store_of(request), patient, as_of=as_of or dt.date.today(), actor=actor))


@router.get("/report", summary="The primary endpoint (trialflow report --json)", responses=NotFoundDoc)
def api_report(request: Request, actor: Actor, as_of: AsOf = None) -> JSONResponse:
    from trialflow.engine import report

    return json_response(_call(report, store_of(request), as_of=as_of, actor=actor))
