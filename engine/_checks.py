"""What may be recorded: eligibility answers, record dates and windows, dose levels, conflicting values.

Each check answers a sentence saying why not, or None; the workflow turns sentences into refusals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from trialflow.protocol import Protocol, suggest
from trialflow.rules.observations import DoseChange

from ._base import Problem, located, today
from ._records import Record, SorafenibDispense
from ._schedule import ScheduledVisit, defining_kinds, schedule
from ._state import PatientState, RecordedValue

__all__ = ["admissible", "conflict", "eligibility_answers", "implausible", "implausible_fields"]

# kinds of which a patient can have several on one day (every other kind: one per day)
MANY_PER_DAY = frozenset({"adverse_event"})


def eligibility_answers(protocol: Protocol,
                        answers: Mapping[str, Any]) -> tuple[dict[str, str], list[str], list[str]]:
    """(answers as yes/no, problems with the answers, criteria not met). A problem of one answer names its
    criterion as its ``field`` (:func:`~trialflow.engine._base.located`), so that a file of answers can point at
    its line."""
    problems: list[str] = []
    norm: dict[str, str] = {}
    ids = protocol.eligibility.ids
    for key, value in answers.items():
        if key not in ids:
            problems.append(located(f"unknown eligibility criterion {key!r}{suggest(key, ids)}", 0, str(key)))
            continue
        if value is True or (isinstance(value, str) and value.strip().lower() in ("yes", "y", "true")):
            norm[key] = "yes"
        elif value is False or (isinstance(value, str) and value.strip().lower() in ("no", "n", "false")):
            norm[key] = "no"
        else:
            problems.append(located(f"eligibility criterion {key!r}: expected yes or no, got {value!r}", 0, key))
    for key in ids:
        if key not in answers:
            problems.append(f"eligibility criterion {key!r} is not answered")
    unmet = [c.id for c in protocol.eligibility.inclusion if norm.get(c.id) == "no"]
    unmet += [c.id for c in protocol.eligibility.exclusion if norm.get(c.id) == "yes"]
    return norm, problems, unmet


def _dose_problem(protocol: Protocol, state: PatientState, rec: Record) -> str | None:
    """A dose change or dispensing must use one of the treatment's declared dose levels (0 = stopped)."""
    if not isinstance(rec, DoseChange | SorafenibDispense):
        return None
    treated = [protocol.phase(s.phase).treatment for s in reversed(state.stints)]
    current = next((t for t in treated if t is not None), None)
    if current is None:
        return None
    treatment = protocol.treatment(current.id)
    levels = treatment.dose_levels_mg_per_day
    allowed = (*levels, 0.0) if isinstance(rec, DoseChange) else levels
    if levels and rec.dose_mg_per_day not in allowed:
        shown = " → ".join(f"{d:g}" for d in levels)
        stop = "; 0 = interrupted or stopped" if isinstance(rec, DoseChange) else ""
        return f"{rec.dose_mg_per_day:g} mg/day is not a dose level of {treatment.name} ({shown} mg/day{stop})"
    return None


def admissible(protocol: Protocol, state: PatientState, rec: Record, *, on: dt.date | None = None,
               visits: Callable[[], Sequence[ScheduledVisit]] | None = None) -> str | None:
    """Why ``rec`` cannot be recorded for this patient, or None.

    After day 0 anything dated up to today is accepted (until the patient leaves the study); before
    day 0 only what a visit of a phase the patient is in asks for, inside that visit's window, and the
    week-0 samples whose window opens before the first dose.

    A caller checking many records may give ``on`` (today, read once) and ``visits`` (the patient's
    ``schedule(protocol, state, dt.date.max)``, computed once for all its records before day 0).
    """
    on = today() if on is None else on
    if rec.date > on:
        return f"{rec.kind} dated {rec.date} is in the future (today is {on})"
    if rec.date < state.enrolled_on - dt.timedelta(days=90):
        return f"{rec.kind} dated {rec.date} is long before enrolment ({state.enrolled_on})"
    if protocol.phase(state.phase).terminal and rec.date > state.phase_entered:
        return f"left the study ({state.phase}) on {state.phase_entered}; the {rec.kind} of {rec.date} comes after"
    dose_problem = _dose_problem(protocol, state, rec)
    if dose_problem:
        return dose_problem
    day0 = state.day0
    if day0 is not None and rec.date >= day0:
        return None
    for v in (visits() if visits is not None else schedule(protocol, state, dt.date.max)):
        if rec.kind in v.kinds and v.window_start <= rec.date <= v.window_end:
            return None
    if day0 is None:  # week-0 samples may be drawn before the first dose, once enrolled
        for phase in protocol.phases:
            if phase.anchor == "day0" and not any(s.phase == phase.id for s in state.stints):
                early = [v for v in phase.visits if v.first_day < 0 and rec.kind in defining_kinds(protocol, v)]
                if early and rec.date >= state.enrolled_on:
                    return None
    when = f"before day 0 ({day0})" if day0 else "before treatment has started"
    return f"{rec.kind} dated {rec.date} is {when} and outside every baseline window of the protocol"


def conflict(existing: Iterable[RecordedValue], rec: Record, patient: str) -> str | None:
    """A different value for something already recorded on that day: a correction, not a second fact.
    The terminal is told the command that corrects it; a form (``plain``) to correct the recorded value."""
    if rec.kind in MANY_PER_DAY:
        return None
    for value in existing:
        if value.kind != rec.kind or value.date != rec.date:
            continue  # (another kind or day: its record is not built to be compared)
        old = value.record
        if old.to_dict() != rec.to_dict():
            if value.event_id < 0:
                return f"{patient}: two different {rec.kind} records of {rec.date} in this input: keep one"
            return Problem(f"{patient}: a {rec.kind} of {rec.date} is already recorded (event {value.event_id}) "
                           "with other values", f"; to change it use trialflow correct {patient} {value.event_id}",
                           form_advice="; to change it, correct the recorded value")
    return None


def _values(data: Mapping[str, Any], path: str) -> list[Any]:
    if "[]." in path:
        outer, inner = path.split("[].", 1)
        return [item.get(inner) for item in data.get(outer) or () if isinstance(item, Mapping)]
    return [data.get(path)]


def implausible(protocol: Protocol, rec: Record, data: Mapping[str, Any] | None = None) -> list[str]:
    """The values of ``rec`` outside a physiological range the protocol declares (one sentence each).
    ``data``: ``rec.to_dict()`` if the caller holds it already (an import holds every record's)."""
    return [sentence for _, sentence in implausible_fields(protocol, rec, data)]


def implausible_fields(protocol: Protocol, rec: Record,
                       data: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """:func:`implausible`, each sentence with the field it is about (``value``, ``target[].diameter_mm``)."""
    out: list[tuple[str, str]] = []
    rules = [r for r in protocol.plausibility if r.kind == rec.kind]
    if not rules:
        return out
    data = rec.to_dict() if data is None else data
    for r in rules:
        for v in _values(data, r.field):
            if isinstance(v, bool) or not isinstance(v, int | float):
                continue
            if (r.minimum is not None and v < r.minimum) or (r.maximum is not None and v > r.maximum):
                unit = f" {r.unit}" if r.unit else ""
                out.append((r.field, f"{rec.kind} {r.field.replace('[].', ' ')} {v:g}{unit} on {rec.date} is "
                                     f"outside the plausible range the protocol declares ({r.describe()})"))
    return out
