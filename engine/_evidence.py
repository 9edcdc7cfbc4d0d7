"""Which records a decision criterion judges: the protocol's ``evidence`` settings, applied in one place.

A criterion's ``evidence:`` block (docs/DOMAIN.md, "What each criterion judges") declares the record
kinds, a range of study days (day 0 = first dose), whether a record no visit of the criterion asked for
counts (``unscheduled``), and the visit the outcome is read at (``final_visit``). Visit windows plan the
assessments and drive readiness; they do not decide which results count.

Two readings, for one patient and for a cohort:

- :func:`exclusion` is the plain scalar test of one record (kind, study day, scheduled or not); it has
  no dates, no protocol object and no I/O, so a simulator can call it or vectorise its three
  comparisons.
- :func:`select_evidence` applies it to a patient's records and returns every record with
  ``used`` and, when not used, the reason and the setting responsible, plus the final-visit check.

Their batch forms sit beside them for the simulator (numpy arrays, one entry per patient; tested equal in
``tests/test_readings.py``): :func:`counts_batch` is :func:`exclusion` is None, :func:`final_problem_batch`
is whether :func:`select_evidence` finds a final-visit problem.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from trialflow.documents._frozen import frozen
from trialflow.rules.observations import Observation

if TYPE_CHECKING:  # (the simulator's batch forms read no schedule)
    from trialflow.protocol import Criterion, EvidenceSelection

    from ._schedule import ScheduledVisit

__all__ = [
    "CriterionEvidence",
    "Exclusion",
    "RecordUse",
    "exclusion",
    "select_evidence",
]

Exclusion = Literal["kind", "before_range", "after_range", "unscheduled"]

#: The protocol setting each exclusion comes from, as a reviewer finds it in the YAML.
SETTING: dict[str, str] = {
    "kind": "evidence.kinds",
    "before_range": "evidence.study_days.from",
    "after_range": "evidence.study_days.to",
    "unscheduled": "evidence.unscheduled",
    "final_visit": "evidence.final_visit",
}


def exclusion(sel: EvidenceSelection, kind: str, study_day: int | None, scheduled: bool) -> Exclusion | None:
    """Why a record of ``kind`` on ``study_day`` does not count for a criterion with selection ``sel``;
    None when it counts.

    ``scheduled``: the record lies in the window of one of the criterion's visits that asks for its
    kind. ``study_day`` None (day 0 not known yet) applies no range: the rule itself then reports what
    it cannot judge without day 0.
    """
    if sel.kinds and kind not in sel.kinds:
        return "kind"
    if study_day is not None:
        if sel.from_day is not None and study_day < sel.from_day:
            return "before_range"
        if sel.to_day is not None and study_day > sel.to_day:
            return "after_range"
    if not scheduled and sel.unscheduled == "exclude":
        return "unscheduled"
    return None


def reads_schedule(sel: EvidenceSelection) -> bool:
    """Whether :func:`exclusion` depends on ``scheduled`` (only when unscheduled records are excluded): a
    batch caller can then skip working it out."""
    return sel.unscheduled == "exclude"


def counts_batch(sel: EvidenceSelection, kind: str, study_day: Any, scheduled: Any) -> Any:
    """:func:`exclusion` is None, per patient: records of ``kind`` on ``study_day`` (nan: no record, never
    counted), ``scheduled`` as there (not read, and may be None, unless :func:`reads_schedule`)."""
    import numpy as np

    days = np.asarray(study_day, dtype=np.float64)
    if sel.kinds and kind not in sel.kinds:
        return np.zeros(days.shape, bool)
    with np.errstate(invalid="ignore"):
        out = ~np.isnan(days)
        if sel.from_day is not None:
            out &= days >= sel.from_day
        if sel.to_day is not None:
            out &= days <= sel.to_day
    if reads_schedule(sel):
        out &= np.asarray(scheduled, dtype=bool)
    return out


def final_problem_batch(latest_used: Any, first: Any, last: Any) -> Any:
    """Per patient, whether the final visit has a problem: the latest record used of its kinds (nan:
    none) is not inside its window [``first``, ``last``] (pass nan bounds when it is not scheduled)."""
    import numpy as np

    with np.errstate(invalid="ignore"):
        return ~((latest_used >= first) & (latest_used <= last))


def _day(d: dt.date, day0: dt.date | None) -> int | None:
    return None if day0 is None else (d - day0).days


def _d(n: int | None) -> str:
    return "" if n is None else f" (d{n:+d})" if n < 0 else f" (d{n})"


def _explain(why: Exclusion, sel: EvidenceSelection, kind: str, day: int | None) -> str:
    if why == "kind":
        return f"{kind} is not among the kinds this criterion judges ({', '.join(sel.kinds)})"
    if why == "before_range":
        return f"d{day} is before d{sel.from_day}, the start of the criterion's range"
    if why == "after_range":
        return f"d{day} is after d{sel.to_day}, the end of the criterion's range"
    return "no visit of the criterion asked for it and unscheduled records are excluded"


@frozen
class RecordUse:
    """One record of a criterion's kinds and whether the criterion judged it."""

    kind: str
    date: dt.date
    study_day: int | None
    visit: str  # the criterion's visit whose window holds it, or "unscheduled"
    used: bool
    reason: str = ""  # why not used
    setting: str | None = None  # the protocol setting responsible
    event_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "date": self.date.isoformat(),
            "study_day": self.study_day,
            "visit": self.visit,
            "used": self.used,
            "reason": self.reason,
            "setting": self.setting,
            "event_id": self.event_id,
        }


@frozen
class CriterionEvidence:
    """What one criterion may judge for one patient.

    ``final_problem`` is set when the criterion has a final visit and the latest record used is not
    inside its window: the sentence says what really happened.
    """

    criterion: str
    selection: EvidenceSelection
    observations: tuple[Observation, ...]
    records: tuple[RecordUse, ...]
    final_window: tuple[dt.date, dt.date] | None = None
    final_problem: str | None = None

    @property
    def not_used(self) -> tuple[RecordUse, ...]:
        return tuple(r for r in self.records if not r.used)

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.selection.to_dict(),
            "final_window": [d.isoformat() for d in self.final_window] if self.final_window else None,
            "final_problem": self.final_problem,
            "records": [r.to_dict() for r in self.records],
        }


def _visit_of(obs: Observation, windows: Sequence[ScheduledVisit]) -> str | None:
    for v in windows:
        if obs.kind in v.kinds and v.window_start <= obs.date <= v.window_end:
            return v.visit
    return None


def select_evidence(
    criterion: Criterion,
    day0: dt.date | None,
    records: Iterable[tuple[Observation, int | None]],
    visits: Sequence[ScheduledVisit],
) -> CriterionEvidence:
    """The records (observation, event id) of ``criterion``'s kinds, each used or not with the reason.

    ``visits`` is the patient's schedule; the criterion's own visits there decide ``scheduled`` and
    the final visit's window.
    """
    sel = criterion.evidence
    own = [v for v in visits if v.visit in criterion.visits and v.status not in ("not_required", "skipped")]
    uses: list[RecordUse] = []
    used: list[Observation] = []
    for obs, event_id in sorted(records, key=lambda r: (r[0].date, r[1] or 0)):
        if sel.kinds and obs.kind not in sel.kinds:
            continue  # not this criterion's: not listed
        day = _day(obs.date, day0)
        visit = _visit_of(obs, own)
        why = exclusion(sel, obs.kind, day, visit is not None)
        if why is None:
            used.append(obs)
            uses.append(RecordUse(obs.kind, obs.date, day, visit or "unscheduled", True, event_id=event_id))
        else:
            uses.append(RecordUse(obs.kind, obs.date, day, visit or "unscheduled", False,
                                  _explain(why, sel, obs.kind, day), SETTING[why], event_id))
    window, problem = None, None
    if sel.final_visit is not None:
        final = next((v for v in own if v.visit == sel.final_visit), None)
        window = (final.window_start, final.window_end) if final is not None else None
        problem = _final_problem(sel, final, used, uses, day0)
    return CriterionEvidence(criterion.id, sel, tuple(used), tuple(uses), window, problem)


def _final_problem(sel: EvidenceSelection, final: ScheduledVisit | None, used: list[Observation],
                   uses: list[RecordUse], day0: dt.date | None) -> str | None:
    """None when the latest record used (of the final visit's kinds) is inside its window; otherwise
    what really happened, in one sentence."""
    name = sel.final_visit
    if final is None:
        return f"visit {name} is not scheduled for this patient, so the criterion has no final result"
    kinds = set(final.kinds)
    mine = [o for o in used if o.kind in kinds]
    latest = max(mine, key=lambda o: o.date) if mine else None
    lo, hi = final.window_start, final.window_end
    span = f"{lo} to {hi}" if day0 is None else f"d{_day(lo, day0)}-d{_day(hi, day0)}"
    if latest is not None and lo <= latest.date <= hi:
        return None
    what = "/".join(sorted(kinds))
    late = [u for u in uses if not u.used and u.kind in kinds and u.date > hi]
    if late:
        u = late[0]
        return (f"the {what} of {u.date}{_d(u.study_day)} is outside the window {span} of {name}; "
                f"not used ({u.setting})")
    early = [u for u in uses if u.kind in kinds and lo <= u.date <= hi and not u.used]
    if early:
        u = early[0]
        return f"the {what} of {u.date}{_d(u.study_day)} in the window of {name} is not used: {u.reason}"
    last = "" if latest is None else (f"; the latest {what} used is of {latest.date}"
                                      f"{_d(_day(latest.date, day0))}")
    return f"no {what} in the window {span} of {name} ({SETTING['final_visit']}){last}"
