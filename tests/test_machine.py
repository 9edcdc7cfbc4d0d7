"""The protocol's machine (``transitions``) owns the legal moves: guards that consult the patient's state,
every refusal's reason kept, and callbacks that produce the events the move appends."""

from __future__ import annotations

import datetime as dt

import pytest
from workflow_helpers import DAY0, ENROLLED, USER, enrol_started, event_count, patient_at_decision

from trialflow.engine import Refused, TransitionRefused, complete_phase, machine_for, start, withdraw
from trialflow.engine._machine import Move
from trialflow.protocol import load_bundled_protocol

PROTOCOL = load_bundled_protocol()


def test_one_machine_per_protocol_version_and_no_patient_is_added_to_it(store) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        enrol_started(store, f"P-{i:03d}")
    machine = machine_for(PROTOCOL)
    assert machine is machine_for(load_bundled_protocol())
    assert machine._machine.models == []  # patients are moved, never added (add_model is O(n))


def test_a_move_produces_its_events_through_the_machines_callbacks(store) -> None:  # type: ignore[no-untyped-def]
    enrol_started(store, "P-001")
    state = store.state("P-001")
    move = machine_for(PROTOCOL).move(
        Move(state, PROTOCOL, DAY0 + dt.timedelta(days=30), "consent withdrawn", {"withdrawal_reason": "consent"}),
        "withdraw")
    assert [e.kind for e in move.events] == ["withdrawn", "phase_changed"]
    assert move.events[1].payload == {"from": "sorafenib_6m", "to": "withdrawn", "trigger": "withdraw"}
    assert move.phase == "withdrawn"
    assert store.state("P-001").phase == "sorafenib_6m"  # a move by itself writes nothing


def test_every_failing_guard_gives_its_reason_and_nothing_is_written(store) -> None:  # type: ignore[no-untyped-def]
    enrol_started(store, "P-001")
    before = event_count(store)
    with pytest.raises(Refused) as err:
        withdraw(store, "P-001", DAY0 - dt.timedelta(days=3), "bored", USER)
    problems = err.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("unknown withdrawal reason 'bored'")
    assert problems[1] == f"P-001: {DAY0 - dt.timedelta(days=3)} is before the patient entered sorafenib_6m ({DAY0})"
    assert event_count(store) == before


def test_the_phase_that_ends_with_the_decision_cannot_be_completed_by_hand(store) -> None:  # type: ignore[no-untyped-def]
    patient_at_decision(store, "P-001")
    with pytest.raises(Refused, match="ends with the decision: use trialflow decide P-001"):
        complete_phase(store, "P-001", dt.date(2026, 8, 3), USER)


def test_day_0_before_enrolment_and_a_move_the_protocol_lacks_are_refused(store) -> None:  # type: ignore[no-untyped-def]
    from workflow_helpers import ELIGIBLE

    from trialflow.engine import enroll

    enroll(store, "P-001", ENROLLED, ELIGIBLE, USER)
    with pytest.raises(Refused, match=r"day 0 \(2025-12-01\) cannot be before enrolment \(2025-12-29\)"):
        start(store, "P-001", dt.date(2025, 12, 1), USER)
    start(store, "P-001", DAY0, USER)
    with pytest.raises(Refused, match="'start_treatment' is not possible from phase 'sorafenib_6m'"):
        start(store, "P-001", DAY0, USER)


def test_the_branch_guard_reads_the_decision_preview() -> None:
    from trialflow.engine import DecisionPreview

    machine = machine_for(PROTOCOL)
    state = _state_in("decision_6m")
    not_ready = DecisionPreview("P-9", "month6", "decision_6m", DAY0, True, False, ("tg_slope: tg_w28 (due)",),
                                {}, {}, False, (), None, None, ())
    with pytest.raises(TransitionRefused) as err:
        machine.move(Move(state, PROTOCOL, DAY0 + dt.timedelta(days=200), None, {"preview": not_ready,
                                                                               "decision_payload": {}}),
                     "branch_no_response")
    assert err.value.reasons[1] == "tg_slope: tg_w28 (due)"
    assert "the decision is not ready" in err.value.reasons[0]


def _state_in(phase: str):  # type: ignore[no-untyped-def]
    from trialflow.engine import Event, fold

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    events = [Event(1, "P-9", 1, "enrolled", ENROLLED, now, USER, None,
                    {"protocol_hash": PROTOCOL.content_hash, "phase": "screening", "eligible": True}),
              Event(2, "P-9", 2, "phase_changed", DAY0, now, USER, None,
                    {"from": "screening", "to": "sorafenib_6m", "trigger": "start_treatment", "day0": True}),
              Event(3, "P-9", 3, "phase_changed", DAY0 + dt.timedelta(days=200), now, USER, None,
                    {"from": "sorafenib_6m", "to": phase, "trigger": "complete"})]
    return fold(events)
