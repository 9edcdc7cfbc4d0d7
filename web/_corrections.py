"""Correcting or retracting a recorded value from the patient page: the library's ``correct``, as ``trialflow
correct`` calls it. The correction is a new event pointing at the original; the page then shows both.
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

#: the fields ``trialflow correct`` offers, per kind of record (the date always; retracting always)
FIELDS: dict[str, tuple[str, ...]] = {"tg": ("value",), "tgab": ("result",), "adverse_event": ("grade",),
                                      "dose_change": ("dose",), "dispense": ("dose",)}


def _target(request: Request, actor: Any, patient: str, event: int) -> Any:
    from trialflow.engine import Refused, history

    try:
        hist = history(store_of(request), patient, actor=actor)
    except Refused:
        raise NotFound(f"no patient {patient!r} you may see") from None
    found = next((h for h in hist if h.event == event and h.kind in ("observation", "correction")), None)
    if found is None:
        raise NotFound(f"{patient} has no observation event {event}")
    return found


def _confirm_key(values: dict[str, str]) -> str:
    """What a confirmation of an unusual value is bound to: the corrected fields as submitted."""
    return "|".join(values.get(k, "").strip() for k in ("date", "value", "result", "grade", "dose"))


def _render(request: Request, patient: str, target: Any, values: dict[str, str], errors: dict[str, list[str]],
            status: int = 200, *, unusual: bool = False) -> HTMLResponse:
    record = target.payload if target.kind == "observation" else target.payload.get("record", {})
    fields = FIELDS.get(record.get("kind", ""), ())
    return page(request, "correct.html", {"patient": patient, "target": target, "fields": fields, "values": values,
                                          "errors": errors, "unusual": unusual,
                                          "confirm_for": _confirm_key(values)}, status_code=status)


@router.get("/patients/{patient}/correct/{event}", response_class=HTMLResponse, include_in_schema=False)
def correct_form(request: Request, patient: str, event: int, actor: Actor) -> HTMLResponse:
    return _render(request, patient, _target(request, actor, patient, event), {}, {})


@router.post("/patients/{patient}/correct/{event}", include_in_schema=False, dependencies=[Depends(check_csrf)])
def correct_submit(request: Request, patient: str, event: int, actor: Actor,
                   reason: Annotated[str, Form(max_length=2000)] = "", date: Annotated[str, Form(max_length=20)] = "",
                   value: Annotated[str, Form(max_length=50)] = "", result: Annotated[str, Form(max_length=20)] = "",
                   grade: Annotated[str, Form(max_length=5)] = "", dose: Annotated[str, Form(max_length=20)] = "",
                   retract: Annotated[str, Form(max_length=5)] = "",
                   confirm_unusual: Annotated[str, Form(max_length=2000)] = "",
                   confirm_for: Annotated[str, Form(max_length=200)] = "") -> Response:
    from trialflow.engine import PermissionDenied, Refused, correct

    target = _target(request, actor, patient, event)
    values = {"reason": reason, "date": date, "value": value, "result": result, "grade": grade, "dose": dose,
              "retract": retract, "confirm_unusual": confirm_unusual}
    # a confirmation is given for the values the refusal named: changed since, it confirms nothing
    confirm = confirm_unusual.strip() or None
    if confirm is not None and confirm_for != _confirm_key(values):
        confirm = None
        values["confirm_unusual"] = ""
    errors: dict[str, list[str]] = {}
    changes: dict[str, Any] = {}
    if date.strip():
        try:
            changes["date"] = dt.date.fromisoformat(date.strip()).isoformat()
        except ValueError:
            errors["date"] = [f"expected a date as YYYY-MM-DD, got {date!r}"]
    if value.strip():
        raw = value.strip()
        try:
            changes["value"] = raw if raw.startswith("<") else float(raw)
        except ValueError:
            errors["value"] = [f"expected a number, got {raw!r}"]
    if result.strip():
        changes["result"] = result.strip()
    for key, raw, cast, words in (("grade", grade, int, "a whole number"),
                                  ("dose_mg_per_day", dose, float, "a number")):
        if raw.strip():
            try:
                changes[key] = cast(raw.strip())
            except ValueError:
                errors["grade" if key == "grade" else "dose"] = [f"expected {words}, got {raw.strip()!r}"]
    wants_retract = retract in ("on", "true")
    if not errors and wants_retract == bool(changes):
        errors[""] = ["give the corrected field(s) or tick 'retract', not both"]
    if not errors:
        try:
            written = correct(store_of(request), patient, event, None if wants_retract else changes, reason, actor,
                              confirm_unusual=confirm)
        except PermissionDenied as err:
            return _render(request, patient, target, values, {"": list(err.plain)}, 403)
        except Refused as err:
            key = "reason" if any("reason" in p for p in err.plain) and not err.unusual else ""
            return _render(request, patient, target, values, {key: list(err.plain)}, 422, unusual=bool(err.unusual))
        request.session["flash"] = written.message
        return RedirectResponse(f"/patients/{quote(patient)}#obs-{event}", status_code=303)
    return _render(request, patient, target, values, errors, 422)
