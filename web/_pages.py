"""The pages that only read: the worklist, a patient, the protocol, the report.

Each calls the library function the CLI's command calls (``next``, ``status``, ``history``,
``evaluate``, ``report``, ``protocol show``) with the signed-in actor, and renders what it returns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from ._auth import Actor
from ._lib import (
    observations_of,
    patient_view,
    protocol_view,
    report_of,
    worklist_snapshot,
)
from ._render import page

__all__ = ["router"]

router = APIRouter()
STATUSES = ("overdue", "due", "missed", "upcoming")
PAGE_ROWS = 50  # rows per status group at first: a page of 10,000 patients' items helps nobody
MORE_ROWS = 200


@dataclass(frozen=True, slots=True)
class Filters:
    site: str
    patient: str
    action: str

    def keep(self, a: Any, sites: dict[str, str | None]) -> bool:
        return ((not self.site or sites.get(a.patient) == self.site)
                and (not self.patient or self.patient.lower() in a.patient.lower())
                and (not self.action or a.action == self.action))


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def worklist_page(request: Request, actor: Actor, site: str = "", patient: str = "", action: str = "",
                  show: Annotated[int, Query(ge=1, le=1_000_000)] = PAGE_ROWS) -> HTMLResponse:
    """The worklist grouped by status; each group shows its first ``show`` rows (counts are always complete)."""
    f = Filters(site.strip()[:32], patient.strip()[:64], action.strip()[:32])
    snap = worklist_snapshot(request, actor)
    actions, sites = snap.actions, snap.sites

    def grouped() -> dict[str, list[Any]]:
        shown = [a for a in actions if f.keep(a, sites)]
        return {s: [a for a in shown if a.status == s] for s in STATUSES}

    groups = snap.view(f, grouped)
    shown_total = sum(len(v) for v in groups.values())
    ctx = {"groups": {s: v[:show] for s, v in groups.items()}, "counts": {s: len(v) for s, v in groups.items()},
           "total": shown_total, "all_total": len(actions), "filters": f, "today": dt.date.today(),
           "site_choices": snap.view("sites", lambda: sorted({s for s in sites.values() if s})), "show": show,
           "more": urlencode({"site": f.site, "patient": f.patient, "action": f.action, "show": show + MORE_ROWS}),
           "action_choices": snap.view("actions", lambda: sorted({a.action for a in actions})), "sites": sites,
           "may_record": _may_record(actor)}
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "worklist":
        return page(request, "_worklist_table.html", ctx)
    return page(request, "worklist.html", ctx)


def _may_record(actor: Any) -> bool:
    """Whether the role records clinical data (to offer the missed rows' deviation link; the engine checks
    the site on the write)."""
    from trialflow.engine import PermissionDenied, authorize

    try:
        authorize(actor, "record")
    except PermissionDenied:
        return False
    return True


@router.get("/patients/{patient}", response_class=HTMLResponse, include_in_schema=False)
def patient_page(request: Request, patient: str, actor: Actor) -> HTMLResponse:
    return page(request, "patient.html", patient_context(patient_view(request, actor, patient)))


def patient_context(view: Any) -> dict[str, Any]:
    from ._forms import FORMS

    return {"p": view, "observations": observations_of(view.history), "forms": FORMS}


@router.get("/protocol", response_class=HTMLResponse, include_in_schema=False)
def protocol_page(request: Request, actor: Actor) -> HTMLResponse:
    request.state.csp_diagram = True  # Mermaid styles its own SVG
    return page(request, "protocol.html", {"proto": protocol_view(request, actor)})


@router.get("/report", response_class=HTMLResponse, include_in_schema=False)
def report_page(request: Request, actor: Actor) -> HTMLResponse:
    return page(request, "report.html", {"r": report_of(request, actor)})
