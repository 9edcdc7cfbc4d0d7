"""The decision page: the evaluate preview with its evidence, and the investigator's signing form.

The preview is the library's ``evaluate``; the signature is the library's ``decide`` with the
re-entered password (the engine checks the role, the site, the password and binds the signature to
the decision). The form is shown to everyone who may read the patient; only the engine decides
whether the signature counts, so a coordinator who posts it anyway is refused, with nothing written.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ._auth import Actor, NotFound, store_of
from ._charts import recist_chart, tg_chart
from ._render import page
from ._security import check_csrf

__all__ = ["router"]

router = APIRouter()


def _context(request: Request, actor: Any, patient: str, as_of: str | None = None) -> dict[str, Any]:
    """The page's context, the preview as of the decision date ``as_of`` (as the page's date field gives it;
    today when it is empty): what the investigator reviews is what a signature for that date would rest on."""
    from trialflow.engine import Refused, decision_digest, evaluate, history
    from trialflow.engine._signature import meaning  # the words the signature will record
    from trialflow.engine._workflow import _check_date  # (decide's own check of its date)

    store = store_of(request)
    errors: dict[str, list[str]] = {}
    when: dt.date | None = None
    if as_of and as_of.strip():
        try:
            when = dt.date.fromisoformat(as_of.strip())
        except ValueError:
            errors["date"] = [f"expected a date as YYYY-MM-DD, got {as_of!r}"]
    try:
        hist = history(store, patient, actor=actor)
    except Refused:
        raise NotFound(f"no patient {patient!r} you may see") from None
    try:
        if when is not None:  # a date decide() would refuse (in the future, before 1990): said now, not at signing
            _check_date(when, "decision date")
        preview = evaluate(store, patient, as_of=when, actor=actor)
    except Refused as err:  # a date the engine refuses (in the future, before enrolment): say so, show today's
        errors["date"] = list(err.plain)
        preview = evaluate(store, patient, actor=actor)
    protocol = store.protocol()[0]
    from ._lib import allowed

    may = allowed(actor, store.sites_of([patient]).get(patient), patient)
    charts = {}
    for cid, res in preview.criteria.items():
        chart = tg_chart(res) if res.get("rule") == "tg_slope" else recist_chart(res) if res.get("rule") == "recist" \
            else None
        if chart is not None:
            charts[cid] = chart
    decisions = [h for h in hist if h.kind == "decision"]
    signatures = [h for h in hist if h.kind == "signature"]
    branches = [(b.id, b.to, b.description or "") for b in protocol.decision.branches]
    return {"patient": patient, "pv": preview, "charts": charts, "decisions": decisions, "signatures": signatures,
            "branches": branches, "today": dt.date.today(), "errors": errors, "values": {}, "may": may,
            "reviewed": decision_digest(patient, preview) if preview.ready else "",
            "meaning": meaning(preview.recommended_phase, False, preview.recommended_branch)
            if preview.ready and preview.recommended_phase else ""}


@router.get("/patients/{patient}/decision", response_class=HTMLResponse, include_in_schema=False)
def decision_page(request: Request, patient: str, actor: Actor, date: str = "") -> HTMLResponse:
    ctx = _context(request, actor, patient, date[:20])
    ctx["values"] = {"date": date[:20]}
    return page(request, "decision.html", ctx, status_code=422 if ctx["errors"] else 200)


@router.post("/patients/{patient}/decision", include_in_schema=False, dependencies=[Depends(check_csrf)])
def sign_decision(request: Request, patient: str, actor: Actor,
                  password: Annotated[str, Form(max_length=1000)] = "",
                  reviewed: Annotated[str, Form(max_length=100)] = "",
                  override: Annotated[str, Form(max_length=100)] = "",
                  reason: Annotated[str, Form(max_length=2000)] = "",
                  date: Annotated[str, Form(max_length=20)] = "") -> Response:
    from trialflow.engine import PermissionDenied, Refused, decide

    ctx = _context(request, actor, patient, date)
    values = {"override": override, "reason": reason, "date": date}
    errors: dict[str, list[str]] = dict(ctx["errors"])
    when = ctx["pv"].as_of  # the date the page previewed (the form carries it: a signature rests on that preview)
    if override and not reason.strip():
        errors["reason"] = ["an override needs a reason"]
    if not password:
        errors["password"] = ["re-enter your password to sign"]
    status = 422
    if not errors:
        try:
            decide(store_of(request), patient, when, actor, override or None, reason.strip() or None,
                   signature=password, reviewed=reviewed or None)
        except PermissionDenied as err:
            errors[""] = list(err.plain)
            status = 403
        except Refused as err:
            key = "password" if any("password" in p for p in err.plain) else ""
            errors[key] = list(err.plain)
        else:
            return RedirectResponse(f"/patients/{quote(patient)}/decision", status_code=303)
    ctx.update(errors=errors, values=values)
    return page(request, "decision.html", ctx, status_code=status)
