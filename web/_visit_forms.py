"""A visit's deviation or skip from the patient page: the library's ``deviation`` and ``skip_visit``, as
``trialflow deviation ID VISIT`` and ``trialflow skip ID VISIT`` call them.

The visit is read from the engine's ledger (``visits``, as ``trialflow visits ID`` shows it) with the
signed-in actor, so another site's patient is a 404. The write, its checks (a reason, a known kind, a
visit in a state that allows it) and the role check are the engine's; their messages are shown beside
the field they concern, in the engine's words without the CLI's advice ("(--reason)"), and a refused
write changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ._auth import Actor, NotFound, store_of
from ._forms import FieldSpec, FormState
from ._render import page
from ._security import check_csrf

__all__ = ["VISIT_FORMS", "VisitForm", "router"]

router = APIRouter()

_KIND_LABELS = {"missed": "missed (the visit did not take place in its window)",
                "out_of_window": "out of window (done, but outside the window)",
                "not_done": "not done (an assessment of the visit was not done)", "other": "other"}


@dataclass(frozen=True, slots=True)
class VisitForm:
    action: str  # the URL's last part: deviation or skip
    title: str
    fields: tuple[FieldSpec, ...]
    submit: str


def _deviation_kinds() -> tuple[tuple[str, str], ...]:
    from trialflow.engine import DEVIATION_KINDS

    return tuple((k, _KIND_LABELS.get(k, k.replace("_", " "))) for k in DEVIATION_KINDS)


_DATE = FieldSpec("date", "Date", "date", required=True, help="the date it is recorded for (YYYY-MM-DD)")
VISIT_FORMS: dict[str, VisitForm] = {
    "deviation": VisitForm("deviation", "Protocol deviation", (
        FieldSpec("kind", "Kind of deviation", "select", _deviation_kinds(), required=True),
        FieldSpec("reason", "Reason", "textarea", required=True, help="why; kept in the audit trail"),
        _DATE,
    ), "Record the deviation"),
    "skip": VisitForm("skip", "Skip the visit", (
        FieldSpec("reason", "Reason", "textarea", required=True,
                  help="why it will not be done; kept in the audit trail"),
        _DATE,
    ), "Skip the visit"),
}


def _form(action: str) -> VisitForm:
    spec = VISIT_FORMS.get(action)
    if spec is None:
        raise NotFound(f"there is no visit form {action!r} (forms: {', '.join(VISIT_FORMS)})")
    return spec


def _ledger_visit(request: Request, actor: Any, patient: str, visit: str) -> Any:
    """The visit as the ledger has it today (404: not a patient the actor may see, or no such visit)."""
    from trialflow.engine import Refused, visits

    try:
        ledger = visits(store_of(request), patient, as_of=dt.date.today(), actor=actor)
    except Refused:
        raise NotFound(f"no patient {patient!r} you may see") from None
    found = next((v for v in ledger.visits if v.visit == visit), None)
    if found is None:
        raise NotFound(f"{patient} has no scheduled visit {visit!r} (see the visits on the patient page)")
    return found


def _field_of(message: str) -> str:
    """The form field an engine refusal is about ('' = the visit as a whole, e.g. it is not missed yet)."""
    if "needs a reason" in message:
        return "reason"
    if message.startswith("unknown deviation kind"):
        return "kind"
    if message.startswith("date ") or "before 1990" in message:
        return "date"
    return ""


def _render(request: Request, patient: str, v: Any, spec: VisitForm, state: FormState,
            status_code: int = 200) -> HTMLResponse:
    action = f"/patients/{quote(patient)}/visits/{quote(v.visit)}/{spec.action}"
    return page(request, "form.html", {"patient": patient, "spec": spec, "state": state, "visit": v,
                                       "action": action, "submit": spec.submit}, status_code=status_code)


@router.get("/patients/{patient}/visits/{visit}/{action}", response_class=HTMLResponse, include_in_schema=False)
def visit_form(request: Request, patient: str, visit: str, action: str, actor: Actor) -> HTMLResponse:
    spec = _form(action)
    v = _ledger_visit(request, actor, patient, visit)
    defaults = {"date": dt.date.today().isoformat(), "kind": "missed" if v.status == "missed" else "other"}
    return _render(request, patient, v, spec, FormState(defaults))


@router.post("/patients/{patient}/visits/{visit}/{action}", include_in_schema=False,
             dependencies=[Depends(check_csrf)])
async def visit_submit(request: Request, patient: str, visit: str, action: str) -> Response:
    from starlette.concurrency import run_in_threadpool

    from ._auth import current_actor

    actor = await run_in_threadpool(current_actor, request)
    spec = _form(action)
    form = await request.form()
    values = {k: v[:2000] for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    return await run_in_threadpool(_submit, request, actor, patient, visit, spec, values)


def _submit(request: Request, actor: Any, patient: str, visit: str, spec: VisitForm,
            values: dict[str, str]) -> Response:
    import typer

    from trialflow.cli._common import parse_date
    from trialflow.engine import PermissionDenied, Refused, deviation, skip_visit

    v = _ledger_visit(request, actor, patient, visit)
    state = FormState(values)
    try:
        # the CLI's own parsing, with its words (an empty field is refused like an empty --date)
        when = parse_date(values.get("date", ""), "--date") or dt.date.today()
    except typer.BadParameter as err:
        state.error("date", err.message)
        return _render(request, patient, v, spec, state, 422)
    reason = values.get("reason", "")
    store = store_of(request)
    try:
        if spec.action == "deviation":
            written = deviation(store, patient, visit, values.get("kind", ""), reason, when, actor)
        else:
            written = skip_visit(store, patient, visit, reason, when, actor)
    except PermissionDenied as err:
        for p in err.plain:
            state.error("", p)
        return _render(request, patient, v, spec, state, 403)
    except Refused as err:
        for p in err.plain:
            state.error(_field_of(p), p)
        return _render(request, patient, v, spec, state, 422)
    request.session["flash"] = written.message
    return RedirectResponse(f"/patients/{quote(patient)}", status_code=303)
