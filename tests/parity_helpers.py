"""Simulated patients replayed through the engine: the protocols of the parity test and the two replays.

``replay_in_memory`` builds a simulated patient's events as the engine's commands would append them (the
enrolment, the records, the day-0 move fired on the protocol's machine), folds them and asks the engine's
decision preview; ``replay_in_store`` does it through the store (enrol, start, import the case file,
withdraw, evaluate), as a user would with ``simulate --cases``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata as md
from pathlib import Path
from typing import Any

from protocol_helpers import bundled_text, edit

from trialflow.engine import Event, PatientState, evaluate_decision, fold
from trialflow.engine._decision import pending_criterion_visits
from trialflow.engine._machine import Move, machine_for
from trialflow.engine._schedule import schedule
from trialflow.engine.simulation import PatientPathway
from trialflow.protocol import Protocol, load_bundled_protocol

EXAMPLE = Path(__file__).parents[1] / "examples" / "tg_doubling_time"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# Scenarios: many patients in a few months, long ago (every date is before today), re-induction and
# new lesions common enough that every branch and outcome occurs among 2,000 patients.
BASE_SCENARIO = """
study_start: "2001-01-01"
accrual_per_month: 400
rai_reinduction_probability: 0.15
"""
MISSABLE_SCENARIO = BASE_SCENARIO + """
visits: {missed_probability: 0.25, jitter_sd_days: 4.0, ct_not_evaluable_probability: 0.1}
"""

TG_VISITS = "[tg_w0, tg_w4, tg_w8, tg_w12, tg_w16, tg_w20, tg_w24, tg_w28]"


def _unscheduled_ct(text: str) -> str:
    return edit(text, "      - {id: tg_w12, name: Tg week 12,",
                "      - {id: safety_ct_w12, name: Week-12 safety CT, day: 84, window: {before: 7, after: 7},\n"
                "         assessments: [ct], source: assumption}\n"
                "      - {id: tg_w12, name: Tg week 12,")


def _recist11(text: str) -> str:
    return edit(text, 'params: {version: "1.0",', 'params: {version: "1.1",')


def _alpha(text: str) -> str:
    return edit(text, "params: {alpha: 0.05,", "params: {alpha: 0.2,")


def _tg_visit(text: str) -> str:
    text = edit(text, "    duration_days: 196\n", "    duration_days: 224\n")
    text = edit(text, "      - {id: tg_w28, name: Tg week 28, day: 196, window: {before: 3, after: 3}, assessments: "
                "[tg], source: synopsis}",
                "      - {id: tg_w28, name: Tg week 28, day: 196, window: {before: 3, after: 3}, assessments: "
                "[tg], source: synopsis}\n"
                "      - {id: tg_w32, name: Tg week 32, day: 224, window: {before: 3, after: 3}, assessments: "
                "[tg], source: assumption}")
    text = edit(text, f"visits: {TG_VISITS}", f"visits: {TG_VISITS[:-1]}, tg_w32]")
    return edit(text, "first_week: 0, last_week: 28,", "first_week: 0, last_week: 32,")


def _short_window(text: str) -> str:
    return edit(text, "{id: month6_ct, name: 6-month CT, day: 182, window: {before: 7, after: 14},",
                "{id: month6_ct, name: 6-month CT, day: 182, window: {before: 2, after: 2},")


def _renamed(text: str) -> str:
    for old, new in (("start_treatment", "first_dose"), ("screen_fail", "not_eligible"), ("complete", "finish")):
        text = text.replace(f"{{trigger: {old},", f"{{trigger: {new},")
    return edit(text, "\nearly_termination:", "\ntriggers: {start_treatment: first_dose, screen_fail: not_eligible, "
                "complete: finish}\n\nearly_termination:")


def _plugin(text: str) -> str:
    text = edit(text, "  favourable_response:\n", f"""    - id: tg_doubling
      name: Tg doubling time under a year (Miyauchi 2011)
      rule: tg_doubling_time
      visits: {TG_VISITS}
      params: {{max_doubling_time_years: 2.0}}
      favourable: [not_rapid]
      source: assumption
  favourable_response:
""")
    return edit(text, "    - id: favourable_without_uptake\n", """    - id: rapid_tg
      to: off_study
      when: {all: [{criterion: tg_doubling, in: [rapid]}, {not: {criterion: recist, in: [PR, CR]}}]}
      description: Tg doubling within 2 years without a RECIST response, off study
      source: assumption
    - id: favourable_without_uptake
""")


@dataclass(frozen=True)
class Amendment:
    name: str
    change: Callable[[str], str]
    scenario: str = BASE_SCENARIO
    plugin: bool = False

    def text(self) -> str:
        return self.change(bundled_text())


AMENDMENTS = (
    Amendment("bundled", lambda t: t),
    Amendment("unscheduled_ct", _unscheduled_ct),
    Amendment("missable_visits", lambda t: t, MISSABLE_SCENARIO),
    Amendment("recist_1_1", _recist11),
    Amendment("alpha", _alpha),
    Amendment("tg_visit", _tg_visit),
    Amendment("short_window", _short_window, MISSABLE_SCENARIO),
    Amendment("renamed_triggers", _renamed),
    Amendment("plugin_rule", _plugin, plugin=True),
)


@contextmanager
def example_plugin() -> Iterator[None]:
    """The example plug-in rule registered through its entry point, for the duration of the block."""
    import importlib.util
    import sys

    from trialflow.rules import _registry

    spec = importlib.util.spec_from_file_location("tg_doubling_time", EXAMPLE / "tg_doubling_time.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["tg_doubling_time"] = mod
    spec.loader.exec_module(mod)
    builtin = list(md.entry_points(group=_registry.ENTRY_POINT_GROUP))
    saved = _registry.entry_points
    ep = md.EntryPoint("tg_doubling_time", "tg_doubling_time:RULE", _registry.ENTRY_POINT_GROUP)
    _registry.entry_points = lambda group: [*builtin, ep]  # type: ignore[assignment]
    _registry.available_rules.cache_clear()
    try:
        yield
    finally:
        _registry.entry_points = saved  # type: ignore[assignment]
        _registry.available_rules.cache_clear()
        sys.modules.pop("tg_doubling_time", None)


# -- the replays ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """What the engine says about a simulated patient: the decision's readiness, outcomes and branch."""

    ready_on_decision_date: bool
    ready_the_day_before_ready: bool
    outcomes: dict[str, str]
    branch: str | None


class _Events:
    def __init__(self, patient: str):
        self.patient, self.events = patient, []  # type: list[Event]

    def add(self, kind: str, when: dt.date, payload: dict[str, Any]) -> None:
        self.events.append(Event(len(self.events) + 1, self.patient, len(self.events) + 1, kind, when, NOW,
                                 "parity", None, payload))


def answers(protocol: Protocol | None = None) -> dict[str, str]:
    proto = protocol or load_bundled_protocol()
    return {**{c.id: "yes" for c in proto.eligibility.inclusion}, **{c.id: "no" for c in proto.eligibility.exclusion}}


def patient_state(protocol: Protocol, p: PatientPathway, until: dt.date) -> PatientState:
    """The simulated patient's state as the engine's commands would have written it, records up to ``until``."""
    assert p.day0 is not None
    ev = _Events(p.patient)
    ev.add("enrolled", p.enrolled, {"protocol_hash": protocol.content_hash, "protocol_version": protocol.version,
                                    "phase": protocol.initial_phase.id, "eligibility": answers(protocol),
                                    "eligible": True, "unmet": []})
    # day 0 as `trialflow start` fires it (its guards read the state at enrolment)
    started = machine_for(protocol).move(Move(fold(ev.events), protocol, p.day0), protocol.triggers.start_treatment)
    for new in started.events:
        ev.add(new.kind, new.effective_date, new.payload)
    # the case-file records as imported (the fold parses each payload as the store's would be: the same record)
    for r in p.records_until(until):
        ev.add("observation", dt.date.fromisoformat(r["date"]), r)
    return fold(ev.events)


def replay_in_memory(protocol: Protocol, p: PatientPathway, decision_delay_days: int) -> Verdict:
    """The engine's decision preview of a simulated patient on the simulator's decision date (or, for a
    patient who left first, on the last day the simulator could have decided before they left)."""
    if p.decision_date is not None:
        when = p.decision_date
    else:
        assert p.withdrawal is not None
        when = max(p.withdrawal[0] - dt.timedelta(days=1 + decision_delay_days), p.day0 or p.enrolled)
    state = patient_state(protocol, p, when)
    preview = evaluate_decision(protocol, state.until(when), when)
    ready_before = False
    if p.decision_date is not None:  # the day before the simulator found the decision ready
        before = when - dt.timedelta(days=decision_delay_days + 1)
        visits = schedule(protocol, state.until(before), before)
        ready_before = not any(pending_criterion_visits(protocol, visits).values())
    return Verdict(preview.ready, ready_before, dict(preview.outcomes) if preview.ready else {},
                   preview.recommended_branch)
