"""The web's calls into the library, in one place: the same functions the CLI's commands call.

Reads pass the signed-in actor, and the engine decides what it may see: a patient it may not see is
answered exactly like a patient that does not exist (:class:`NotFound`, a 404), so a coordinator of
one site cannot even learn which ids another site uses.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from ._auth import NotFound, store_of

__all__ = [
    "ObservationView",
    "PatientView",
    "allowed",
    "observations_of",
    "patient_view",
    "protocol_view",
    "report_of",
    "sites_for",
    "worklist",
    "worklist_snapshot",
]


def _refusal() -> tuple[type[Exception], ...]:
    from trialflow.engine import Refused, StoreError

    return (Refused, StoreError)


def worklist(request: Request, actor: Any, patient: str | None = None, as_of: dt.date | None = None) -> list[Any]:
    from trialflow.engine import next_actions

    if patient is None:  # a role that may not read patient data is refused (403), not "not found"
        return next_actions(store_of(request), as_of=as_of, actor=actor)
    try:
        return next_actions(store_of(request), patient, as_of=as_of, actor=actor)
    except _refusal():
        raise NotFound(f"no patient {patient!r} you may see") from None


def worklist_snapshot(request: Request, actor: Any, horizon: int = 28) -> Any:
    """Today's worklist of ``actor`` with its patients' sites, from the cache while the store is unchanged."""
    from trialflow.engine import next_actions

    from ._cache import WorklistSnapshot, key_for

    store = store_of(request)
    today = dt.date.today()

    def make() -> WorklistSnapshot:
        actions = next_actions(store, as_of=today, horizon=horizon, actor=actor)
        return WorklistSnapshot(actions, sites_for(request, actor, [a.patient for a in actions]), time.monotonic())

    return request.app.state.worklist_cache.get(key_for(actor, today, horizon, store.write_mark()), make)


def sites_for(request: Request, actor: Any, patients: list[str]) -> dict[str, str | None]:
    """Each listed patient's site (the worklist's site filter and column)."""
    wanted = sorted(set(patients))
    if len(wanted) > 500:  # one scan beats a 10,000-value IN list
        every = store_of(request).sites_of()
        return {p: every.get(p) for p in wanted}
    return store_of(request).sites_of(wanted)


def allowed(actor: Any, site: str | None, patient: str) -> dict[str, bool]:
    """What the engine would let ``actor`` do for ``patient``: only to offer the right buttons (the engine
    checks again on every write; a hidden button is never the protection)."""
    from trialflow.engine import PermissionDenied, authorize

    out = {}
    for action in ("record", "correct", "sign", "open_query", "answer_query", "close_query"):
        try:
            authorize(actor, action, site, patient=patient)
            out[action] = True
        except PermissionDenied:
            out[action] = False
    return out


@dataclass(frozen=True, slots=True)
class PatientView:
    """Everything the patient page shows, each part as the library returns it."""

    patient: str
    site: str | None
    status: Any
    ledger: Any  # the engine's visit ledger (``trialflow visits ID``): PatientVisits
    actions: list[Any]
    history: list[Any]
    preview: Any
    queries: list[Any]
    deviations: list[Any]
    safety: list[Any]
    may: dict[str, bool]


def patient_view(request: Request, actor: Any, patient: str) -> PatientView:
    from trialflow.engine import evaluate, history, status, visits

    store = store_of(request)
    try:
        st = status(store, patient, actor=actor)[0]
        hist = history(store, patient, actor=actor)
        ledger = visits(store, patient, as_of=dt.date.today(), actor=actor)
        acts = worklist(request, actor, patient)
        preview = evaluate(store, patient, actor=actor)
    except _refusal():
        raise NotFound(f"no patient {patient!r} you may see") from None
    queries = _queries_of(store, actor, patient)
    deviations = [h for h in hist if h.kind == "deviation"]
    safety = [o for o in observations_of(hist) if o.kind == "adverse_event"]
    site = store.sites_of([patient]).get(patient)
    return PatientView(patient, site, st, ledger, acts, hist, preview, queries, deviations, safety,
                       allowed(actor, site, patient))


def _queries_of(store: Any, actor: Any, patient: str) -> list[Any]:
    from trialflow.engine import list_queries

    return list_queries(store, actor, patient=patient)


@dataclass(frozen=True, slots=True)
class ObservationView:
    """A recorded value as it stands, with the values it replaced beside it (oldest first)."""

    event: int
    kind: str
    effective_date: dt.date
    summary: str
    user: str
    recorded_at: dt.datetime
    retracted: bool
    corrections: tuple[Any, ...]
    original: Any

    @property
    def record(self) -> dict[str, Any]:
        """The record as it stands: the latest correction's, else the original (a retraction keeps the last)."""
        for c in reversed(self.corrections):
            if "record" in c.payload:
                return dict(c.payload["record"])
        return dict(self.original.payload)


def observations_of(history: list[Any]) -> list[ObservationView]:
    """Group the history's observations with their corrections (``history`` keeps both; nothing is lost)."""
    by_root: dict[int, list[Any]] = {}
    for h in history:
        if h.kind == "correction":
            by_root.setdefault(int(h.payload["root"]), []).append(h)
    out = []
    for h in history:
        if h.kind != "observation":
            continue
        chain = tuple(by_root.get(h.event, ()))
        last = chain[-1] if chain else h
        retracted = bool(chain and chain[-1].payload.get("retracted"))
        out.append(ObservationView(h.event, h.payload.get("kind", ""), last.effective_date,
                                   h.summary if not chain or retracted else last.summary.split(": ", 1)[-1],
                                   last.user, last.recorded_at, retracted, chain, h))
    return sorted(out, key=lambda o: (o.effective_date, o.event), reverse=True)


def protocol_view(request: Request, actor: Any) -> dict[str, Any]:
    from trialflow.engine import phase_diagram

    protocol, version = store_of(request).protocol()
    return {"protocol": protocol, "version": version, "diagram": phase_diagram(protocol),
            "schedule": _schedule_tables(protocol)}


def _schedule_tables(protocol: Any) -> list[dict[str, Any]]:
    """The schedule of activities per phase: visits as columns, assessments and treatments as rows."""
    tables = []
    for phase in protocol.phases:
        if not phase.visits:
            continue
        rows = []
        for a in protocol.assessments:
            cells = ["X" if a.id in v.assessments else "" for v in phase.visits]
            if any(cells):
                rows.append((a.name, cells))
        for tr in protocol.treatments:
            cells = []
            for v in phase.visits:
                if v.treatment and v.treatment.id == tr.id:
                    cells.append(f"{v.treatment.activity_mbq:g} MBq" if v.treatment.activity_mbq else
                                 f"{v.treatment.dose_mg_per_day:g} mg/d" if v.treatment.dose_mg_per_day else "X")
                else:
                    cells.append("●" if phase.treatment and phase.treatment.id == tr.id else "")
            if any(cells):
                rows.append((tr.name, cells))
        w = [(f"±{v.window.before}" if v.window.before == v.window.after else f"-{v.window.before}/+{v.window.after}")
             for v in phase.visits]
        tables.append({"phase": phase, "visits": phase.visits, "windows": w, "rows": rows})
    return tables


def report_of(request: Request, actor: Any) -> Any:
    from trialflow.engine import report

    return report(store_of(request), actor=actor)
