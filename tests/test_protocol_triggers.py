"""The moves the engine fires itself (start treatment, screen failure, complete) and day 0 are named by the
protocol, with today's names as defaults, and checked by the loader with file:line:col."""

from __future__ import annotations

import datetime as dt

from protocol_helpers import BROKEN, bundled_text, edit, find, only, problems_of, where
from workflow_helpers import ELIGIBLE, USER, patient_at_decision

from trialflow.engine import complete_phase, decide, enroll, evaluate, init_store, next_actions
from trialflow.protocol import Triggers, load_bundled_protocol, parse_protocol

RENAMED = {"start_treatment": "first_dose", "screen_fail": "not_eligible", "complete": "finish"}


def renamed_text(*, declare: bool = True) -> str:
    """The bundled protocol with its three engine triggers renamed (and declared under ``triggers``)."""
    text = bundled_text()
    for old, new in RENAMED.items():
        text = text.replace(f"{{trigger: {old},", f"{{trigger: {new},")
    if declare:
        text = edit(text, "\nearly_termination:", "\ntriggers: {start_treatment: first_dose, "
                    "screen_fail: not_eligible, complete: finish}\n\nearly_termination:")
    return text


def test_the_defaults_are_todays_names() -> None:
    proto = load_bundled_protocol()
    assert proto.triggers == Triggers("start_treatment", "screen_fail", "complete")
    assert proto.to_dict()["triggers"] == {"start_treatment": "start_treatment", "screen_fail": "screen_fail",
                                           "complete": "complete"}
    assert proto.day0_event == "first_sorafenib_dose"


def test_renaming_start_treatment_without_declaring_it_is_refused_where_the_transitions_are() -> None:
    text = edit(bundled_text(), "{trigger: start_treatment,", "{trigger: first_dose,")
    p = only(problems_of(text))
    assert (p.file, p.path) == (BROKEN, "$.transitions")
    assert (p.line, p.column) == where(text, "- {trigger: first_dose,")
    assert "no transition leaves the first phase 'screening' on trigger 'start_treatment'" in p.message
    assert p.message.endswith(": name yours under triggers.start_treatment; the transitions from 'screening' "
                              "fire: first_dose")


def test_a_declared_trigger_that_no_transition_uses_is_refused_at_its_own_line() -> None:
    text = edit(bundled_text(), "\nearly_termination:", "\ntriggers:\n  complete: finsh\n\nearly_termination:")
    p = only(problems_of(text))
    assert (p.path, (p.line, p.column)) == ("$.triggers.complete", where(text, "finsh"))
    assert "no transition uses trigger 'finsh'" in p.message


def test_one_name_for_two_moves_and_reserved_names_are_refused() -> None:
    text = edit(bundled_text(), "\nearly_termination:",
                "\ntriggers: {screen_fail: start_treatment, complete: withdraw}\n\nearly_termination:")
    problems = problems_of(text)
    assert "named for both start_treatment and screen_fail" in find(problems, "$.triggers.screen_fail").message
    assert any("reserved for the engine's own moves" in p.message for p in problems
               if p.path == "$.triggers.complete")


def test_a_screen_failure_must_end_the_study() -> None:
    text = edit(bundled_text(), "{trigger: screen_fail, source: screening, dest: screen_failure,",
                "{trigger: screen_fail, source: screening, dest: sorafenib_6m,")
    problems = problems_of(text)
    p = find(problems, "$.transitions[1].dest")
    assert "a screen failure must lead to a terminal phase" in p.message


def test_renamed_triggers_validate_and_drive_the_engine(tmp_path) -> None:
    text = renamed_text()
    proto = parse_protocol(text, "renamed.yaml")
    assert proto.triggers == Triggers("first_dose", "not_eligible", "finish")
    path = tmp_path / "renamed.yaml"
    path.write_text(text, encoding="utf-8")
    store, _ = init_store(str(tmp_path / "renamed.db"), path, USER)
    try:
        # an ineligible patient: enrolment fires the protocol's screen-failure trigger
        unmet = {**ELIGIBLE, next(iter(ELIGIBLE)): "no"}
        assert enroll(store, "P-100", dt.date(2025, 12, 29), unmet, USER).phase == "screen_failure"
        patient_at_decision(store, "P-101")  # `start` fires 'first_dose'
        state = store.state("P-101")
        assert state is not None and state.day0 == dt.date(2026, 1, 12)
        assert state.stints[1].trigger == "first_dose" and state.stints[1].day0
        day0_event = next(e for e in state.events if e.kind == "phase_changed")
        assert day0_event.payload["day0_event"] == "first_sorafenib_dose"
        assert evaluate(store, "P-101", as_of=dt.date(2026, 8, 3)).ready
        decided = decide(store, "P-101", dt.date(2026, 8, 3), USER)
        assert decided.phase == "continued_sorafenib"
        # the continuation phase ends with the protocol's complete trigger (early: before its 182 days)
        done = complete_phase(store, "P-101", dt.date(2026, 11, 2), USER, early=True, reason="moved abroad")
        assert done.phase == "end_of_study" and done.events[0].payload["trigger"] == "finish"
        # the worklist knows when a screened patient can start
        enroll(store, "P-102", dt.date(2025, 12, 29), ELIGIBLE, USER)
        actions = next_actions(store, as_of=dt.date(2026, 1, 20))
        assert any(a.patient == "P-102" and a.action == "start_treatment" for a in actions)
    finally:
        store.close()


def test_the_same_renaming_undeclared_lists_every_missing_move() -> None:
    problems = problems_of(renamed_text(declare=False))
    assert len(problems) == 3
    for role, new in RENAMED.items():
        assert any(f"triggers.{role}" in p.message and new in p.message for p in problems)
