"""Each shared reading of the protocol (engine/_readings.py): its batch form equals its scalar form.

The scalar forms serve the engine (schedule, worklist, decision preview), the batch forms the simulator;
hypothesis draws many patients' record days, windows and outcomes and the two must agree on every one."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from trialflow.engine._readings import (
    choose_branch,
    choose_branches,
    completion,
    completion_batch,
    judged,
    judged_batch,
    ready_batch,
    ready_date,
    visit_window,
    visit_window_batch,
)
from trialflow.protocol import load_bundled_protocol

ORIGIN = dt.date(2026, 1, 12)
PROTOCOL = load_bundled_protocol()
day = st.one_of(st.none(), st.integers(-30, 260))


def _date(d: int | None) -> dt.date | None:
    return None if d is None else ORIGIN + dt.timedelta(days=d)


def _arr(values: list[int | None]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values])


def test_a_visit_window_is_the_same_in_days_and_in_dates() -> None:
    anchors = np.array([0.0, 17.0, 300.0])
    for v in PROTOCOL.visits:
        batch = visit_window_batch(anchors, v)
        for i, a in enumerate(anchors.tolist()):
            target, first, last = visit_window(ORIGIN + dt.timedelta(days=int(a)), v)
            assert [(d - ORIGIN).days for d in (target, first, last)] == [int(b[i]) for b in batch]


@settings(max_examples=200, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["tg", "tgab", "ct"]), min_size=1, max_size=3, unique=True),
    patients=st.lists(
        st.tuples(st.integers(-10, 200), st.integers(0, 30), st.integers(0, 40),
                  st.dictionaries(st.sampled_from(["tg", "tgab", "ct"]), st.lists(day, max_size=4))),
        min_size=1, max_size=12),
)
def test_completion_batch_equals_completion(kinds, patients) -> None:  # type: ignore[no-untyped-def]
    slots = max((len(v) for _, _, _, recs in patients for v in recs.values()), default=0)
    first = np.array([float(a) for a, _, _, _ in patients])
    last = np.array([float(a + w - cut) if cut < w else float(a + w) for a, w, cut, _ in patients])
    days = {k: [_arr([(recs.get(k, []) + [None] * slots)[j] for _, _, _, recs in patients]) for j in range(slots)]
            for k in ("tg", "tgab", "ct")}
    got = completion_batch(kinds, days, first, last)
    for i, (a, _, _, recs) in enumerate(patients):
        dates = {k: [d for d in map(_date, v) if d is not None] for k, v in recs.items()}
        want = completion(kinds, dates, _date(a), _date(int(last[i])))  # type: ignore[arg-type]
        assert (None if np.isnan(got[i]) else _date(int(got[i]))) == want


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(day, st.integers(0, 250)), min_size=3, max_size=3), min_size=1, max_size=10))
def test_ready_batch_equals_ready_date(patients) -> None:  # type: ignore[no-untyped-def]
    visits = [(_arr([p[k][0] for p in patients]), np.array([float(p[k][1]) for p in patients])) for k in range(3)]
    got = ready_batch(visits)
    for i, p in enumerate(patients):
        want = ready_date((_date(done), _date(end)) for done, end in p)  # type: ignore[misc]
        assert _date(int(got[i])) == want


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["tg", "ct", "rai_scan"]),
    patients=st.lists(st.tuples(day, st.integers(0, 50), st.integers(150, 200)), min_size=1, max_size=10),
)
def test_judged_batch_equals_judged(kind, patients) -> None:  # type: ignore[no-untyped-def]
    records = _arr([d for d, _, _ in patients])
    windows = [(np.array([float(a) for _, a, _ in patients]), np.array([a + 14.0 for _, a, _ in patients]),
                ("ct",)),
               (np.array([float(b) for _, _, b in patients]), np.array([b + 21.0 for _, _, b in patients]),
                ("tg", "tgab", "rai_scan"))]
    got = judged_batch(kind, records, windows)
    for i, (d, a, b) in enumerate(patients):
        w = [(_date(a), _date(a + 14), ("ct",)), (_date(b), _date(b + 21), ("tg", "tgab", "rai_scan"))]
        assert bool(got[i]) == (d is not None and judged(kind, _date(d), w))  # type: ignore[arg-type]


def test_choose_branches_equals_choose_branch_for_every_combination_of_outcomes() -> None:
    dec = PROTOCOL.decision
    from trialflow.rules import get_rule

    labels = {c.id: tuple(get_rule(c.rule).outcomes) for c in dec.criteria}
    combos = list(itertools.product(*(range(len(labels[c.id])) for c in dec.criteria)))
    codes = {c.id: np.array([combo[k] for combo in combos], dtype=np.int8) for k, c in enumerate(dec.criteria)}
    fav, chosen = choose_branches(dec, codes, labels)
    for i, combo in enumerate(combos):
        outcomes = {c.id: labels[c.id][combo[k]] for k, c in enumerate(dec.criteria)}
        assert dec.branches[int(chosen[i])] == choose_branch(dec, outcomes)
        assert bool(fav[i]) == dec.is_favourable(outcomes)
    assert {int(b) for b in chosen} == set(range(len(dec.branches)))  # every branch is reached


@settings(max_examples=300, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["tg", "tgab", "ct"]), max_size=2, unique=True),
    from_day=st.one_of(st.none(), st.integers(-30, 10)),
    to_day=st.one_of(st.none(), st.integers(150, 210)),
    unscheduled=st.sampled_from(["include", "exclude"]),
    kind=st.sampled_from(["tg", "ct"]),
    records=st.lists(st.tuples(day, st.booleans()), min_size=1, max_size=12),
)
def test_counts_batch_equals_the_evidence_exclusion(kinds, from_day, to_day, unscheduled, kind,  # type: ignore[no-untyped-def]
                                                    records) -> None:
    from trialflow.engine._evidence import counts_batch, exclusion
    from trialflow.protocol import EvidenceSelection

    sel = EvidenceSelection(tuple(kinds), from_day, to_day, None, unscheduled)
    got = counts_batch(sel, kind, _arr([d for d, _ in records]), np.array([s for _, s in records]))
    for i, (d, scheduled) in enumerate(records):
        assert bool(got[i]) == (d is not None and exclusion(sel, kind, d, scheduled) is None)


def test_final_problem_batch_is_the_final_visit_check() -> None:
    from trialflow.engine._evidence import final_problem_batch

    latest = _arr([None, 170, 182, 196, 197])
    got = final_problem_batch(latest, np.full(5, 175.0), np.full(5, 196.0))
    assert got.tolist() == [True, True, False, False, True]


# -- the phase graph: the engine's reading, which the simulator walks -----------------------------------
def _graph_protocols() -> list:  # type: ignore[type-arg]
    from parity_helpers import AMENDMENTS

    from trialflow.protocol import parse_protocol

    renamed = next(a for a in AMENDMENTS if a.name == "renamed_triggers")
    return [PROTOCOL, parse_protocol(renamed.text(), "renamed.yaml")]


def test_the_phase_graph_batch_forms_equal_the_scalar_forms_and_the_machine() -> None:
    from trialflow.engine._machine import TransitionRefused, machine_for
    from trialflow.engine._readings import (
        leads_to_decision,
        leads_to_decision_batch,
        phase_after,
        phase_after_batch,
        route,
        route_batch,
    )

    for proto in _graph_protocols():
        ids = [p.id for p in proto.phases]
        every = np.array([*range(len(ids)), -1])  # each phase, and a patient with none
        machine = machine_for(proto)
        for trigger in {t.trigger for t in proto.transitions}:
            got = phase_after_batch(proto, every, trigger)
            for i, pid in enumerate(ids):
                want = phase_after(proto, pid, trigger)
                assert got[i] == (ids.index(want) if want else -1), (pid, trigger)
                try:
                    fired: str | None = machine.fire("P-001", pid, trigger)
                except TransitionRefused:
                    fired = None
                assert fired == want, (pid, trigger)  # the machine is built from the same moves
            assert got[-1] == -1
        leads = leads_to_decision_batch(proto, every)
        ends = route_batch(proto, every)
        for i, pid in enumerate(ids):
            assert bool(leads[i]) == leads_to_decision(proto, pid)
            assert ends[i] == ids.index(route(proto, pid)[1]), pid
        assert not leads[-1] and ends[-1] == -1


def test_the_route_is_the_one_the_engine_moves_a_patient_along_and_the_simulator_walks() -> None:
    from trialflow.engine._readings import phase_after, route
    from trialflow.engine.simulation import pathway_of

    for proto in _graph_protocols():
        day0 = phase_after(proto, "screening", proto.triggers.start_treatment)
        assert day0 == "sorafenib_6m"
        assert route(proto, day0) == (("sorafenib_6m",), "decision_6m")
        assert route(proto, "rai_plus_sorafenib") == (("rai_plus_sorafenib",), "end_of_study")
        pw = pathway_of(proto)
        assert [p.id for p in pw.before_decision] == ["screening", *route(proto, day0)[0]]
        for plan, branch in zip(pw.branches, proto.decision.branches, strict=True):
            passed, end = route(proto, branch.to)
            assert ([p.id for p in plan.phases], plan.end_state) == (list(passed), end)


def test_a_phase_without_a_complete_move_is_where_the_route_stops_and_the_simulator_says_so() -> None:
    """The engine moves a patient on from a phase by its ``complete`` trigger only, so a branch phase whose
    one way out is another trigger keeps the patient; the simulator no longer takes that other way."""
    import pytest
    from protocol_helpers import bundled_text

    from trialflow.engine._readings import route
    from trialflow.engine.simulation import SimulationError, pathway_of
    from trialflow.protocol import parse_protocol

    text = bundled_text().replace("  - {trigger: complete, source: continued_sorafenib,",
                                  "  - {trigger: stop_early, source: continued_sorafenib,")
    proto = parse_protocol(text, "stuck.yaml")
    assert route(proto, "continued_sorafenib") == ((), "continued_sorafenib")
    with pytest.raises(SimulationError, match="from 'continued_sorafenib' the route stops in "
                                              "'continued_sorafenib', which is not terminal"):
        pathway_of(proto)
