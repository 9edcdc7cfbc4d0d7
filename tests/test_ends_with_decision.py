"""'This phase ends with the decision' has one reading (engine/_readings.leads_to_decision): the engine's
``complete`` command, the machine's guard and the simulator's route all follow it, also in a protocol where
the treatment phase's ``complete`` move leads elsewhere and another move leads into the decision phase."""

from __future__ import annotations

import datetime as dt

import pytest
from protocol_helpers import bundled_text, edit
from workflow_helpers import USER, patient_at_decision

from trialflow.engine import Refused, TransitionRefused, complete_phase, decide, init_store, machine_for
from trialflow.engine._machine import Move
from trialflow.engine._readings import leads_to_decision, route
from trialflow.engine.simulation._pathways import _route_to_decision
from trialflow.protocol import parse_protocol

SOURCE = "{trigger: complete, source: sorafenib_6m, dest: decision_6m,"


def _assessed_text() -> str:
    """The bundled protocol where sorafenib_6m moves into the decision on 'assess', and its 'complete' move
    (a coordinator's) leads to end_of_study instead."""
    text = edit(bundled_text(), SOURCE, "{trigger: assess, source: sorafenib_6m, dest: decision_6m,")
    return edit(text, "\nearly_termination:", "  - {trigger: complete, source: sorafenib_6m, dest: end_of_study,\n"
                "     description: Off study without the decision}\n\nearly_termination:")


def test_the_engine_and_the_simulator_read_the_phase_the_same_way(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = _assessed_text()
    proto = parse_protocol(text, "assessed.yaml")
    # the one reading, and the simulator's route from day 0 that follows it
    assert leads_to_decision(proto, "sorafenib_6m")
    assert route(proto, "sorafenib_6m") == (("sorafenib_6m",), "decision_6m")
    assert _route_to_decision(proto)[-1] == "sorafenib_6m"
    path = tmp_path / "assessed.yaml"
    path.write_text(text, encoding="utf-8")
    store, _ = init_store(str(tmp_path / "assessed.db"), path, USER)
    try:
        patient_at_decision(store, "P-001")
        before = len(store.events("P-001"))
        # the coordinator's complete is refused although its move leads elsewhere than the decision phase
        with pytest.raises(Refused, match="sorafenib_6m ends with the decision: use trialflow decide P-001"):
            complete_phase(store, "P-001", dt.date(2026, 8, 3), USER)
        # ... and so is the move fired on the machine directly (its guard reads the same)
        state = store.state("P-001")
        with pytest.raises(TransitionRefused, match="ends with the decision"):
            machine_for(proto).move(Move(state, proto, dt.date(2026, 8, 3), None, {}), "complete")
        assert len(store.events("P-001")) == before
        # the decision moves the patient on through 'assess', as the simulator's route has it
        written = decide(store, "P-001", dt.date(2026, 8, 3), USER)
        assert written.phase in {b.to for b in proto.decision.branches}
        assert next(e.payload.get("trigger") for e in written.events if e.kind == "phase_changed") == "assess"
    finally:
        store.close()


def test_a_continuation_phase_still_completes_by_hand() -> None:
    proto = parse_protocol(_assessed_text(), "assessed.yaml")
    assert not leads_to_decision(proto, "continued_sorafenib")
    assert route(proto, "continued_sorafenib") == (("continued_sorafenib",), "end_of_study")
