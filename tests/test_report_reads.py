"""``report`` and ``safety`` read the report lines the store keeps beside each patient's events (issue 17),
folding events only for the patients the date or the store moment asks about: a clinical date (``as_of``)
before the patient's latest record, or a moment (``known_at``) after which something was recorded for it.

A property test holds them equal to the fold over every event of every patient, for random cohorts (the
demo generator with a random seed, written in bulk), random corrections and retractions on top (the
one-patient transaction), random clinical dates and store moments; and for a study team whose decisions
are signed, one signature invalidated by a later correction, read by a coordinator who sees one site.
One fixed case on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from team_helpers import PASSWORDS, Team, at_decision, new_team_store
from workflow_helpers import DECISION_DAY, new_db_url

from trialflow.engine import Refused, Store, correct, decide, init_store, record, report, safety
from trialflow.engine._access import reader, site_filter
from trialflow.engine._base import today
from trialflow.engine._demo import populate_demo
from trialflow.engine._endpoint import EndpointReport, endpoint_report, report_line, safety_report
from trialflow.engine._safety import SafetyReport
from trialflow.engine._state import fold

_STORES: dict[int, Store] = {}


def _cohort(url: str, seed: int, patients: int = 45) -> Store:
    """A demo cohort (seed ``seed``) with some of its records corrected or retracted one by one."""
    store, _ = init_store(url, None, "investigator.dr-smit")
    populate_demo(store, patients=patients, seed=seed)
    rng = random.Random(seed)
    observations = [(p, e) for p in store.patient_ids() for e in store.events(p) if e.kind == "observation"
                    and e.payload["kind"] in ("tg", "dispense", "adverse_event", "dose_change")]
    for pid, e in rng.sample(observations, k=min(12, len(observations))):
        kind = e.payload["kind"]
        changes = None if rng.random() < 0.3 else {"tg": {"value": 7.5}, "dispense": {"dose_mg_per_day": 400},
                                                   "adverse_event": {"grade": 4},
                                                   "dose_change": {"dose_mg_per_day": 200}}[kind]
        with contextlib.suppress(Refused):  # e.g. a value the phase no longer takes
            correct(store, pid, e.id, changes, "transcription error", "coordinator.anna")
    return store


def _folded(store: Store, as_of: dt.date, known_at: dt.datetime | None,
            visible: Callable[[str], bool] | None = None) -> tuple[EndpointReport, SafetyReport]:
    """The reference: every event of every (visible) patient folded, cut at ``as_of``, counted."""
    lines = []
    for pid, events in sorted(store.events_of().items()):
        if visible is not None and not visible(pid):
            continue
        try:
            state = fold(events, known_at=known_at)
        except LookupError:  # enrolled after known_at
            continue
        if state.enrolled_on <= as_of:
            lines.append(report_line(store.protocol(state.protocol_hash)[0], state.until(as_of)))
    return endpoint_report(lines, as_of), safety_report(lines, as_of)


def _moment(store: Store, fraction: float | None) -> dt.datetime | None:
    """A moment between the first and the last write of the store (None for None)."""
    if fraction is None:
        return None
    times = sorted(e.recorded_at for events in store.events_of().values() for e in events)
    return times[int(fraction * (len(times) - 1))]


def _check(store: Store, as_of: dt.date, known_at: dt.datetime | None, actor: Any = None) -> None:
    visible = site_filter(store, reader(store, actor))
    reference = _folded(store, as_of, known_at, visible)
    assert report(store, as_of=as_of, known_at=known_at, actor=actor) == reference[0]
    assert safety(store, as_of=as_of, known_at=known_at, actor=actor) == reference[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cohorts")


@settings(max_examples=14, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from([3, 11, 2009]), back=st.integers(min_value=-60, max_value=700),
       moment=st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0)))
def test_report_and_safety_from_the_stored_lines_equal_the_fold_over_every_event(
        folder: Path, seed: int, back: int, moment: float | None) -> None:
    if seed not in _STORES:
        _STORES[seed] = _cohort(str(folder / f"cohort-{seed}.db"), seed)
    store = _STORES[seed]
    _check(store, today() - dt.timedelta(days=back), _moment(store, moment))


def test_the_stored_lines_serve_every_patient_whose_latest_record_is_not_after_the_date(folder: Path) -> None:
    """Not a fold in disguise: on today, every patient's line is read from the store, none folded."""
    if 2009 not in _STORES:
        _STORES[2009] = _cohort(str(folder / "cohort-2009.db"), 2009)
    store = _STORES[2009]
    rows, stale = store.report_rows(today())
    assert not stale and [r[0] for r in rows] == store.patient_ids()
    assert report(store).enrolled == len(rows)


# -- a study team: signed decisions, one signature invalidated, a coordinator who sees one site ----------------
@pytest.fixture(scope="module")
def signed_team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """P-A01, P-A02 (Amsterdam) and P-B01 (Leiden) decided and signed; then P-A01's week-4 Tg is corrected and
    P-A02 gets a Tg dated before its decision (both signatures invalidated), and P-A02 an adverse event."""
    with pytest.MonkeyPatch.context() as mp:
        from trialflow.engine import auth_settings

        s = auth_settings()
        for name, value in (("time_cost", 1), ("memory_kib", 1024), ("parallelism", 1), ("_hasher", None),
                            ("sleep", lambda _: None)):
            mp.setattr(s, name, value)
        team = new_team_store(str(tmp_path_factory.mktemp("team") / "team.db"), [])
        at_decision(team, "P-A01", "anna", "AMS")
        at_decision(team, "P-A02", "anna", "AMS")
        at_decision(team, "P-B01", "bram", "LEI")
        for pid, investigator in (("P-A01", "dr.smit"), ("P-A02", "dr.smit"), ("P-B01", "dr.visser")):
            decide(team.store, pid, DECISION_DAY, team[investigator], signature=PASSWORDS[investigator])
        tg = [e for e in team.store.events("P-A01") if e.kind == "observation" and e.payload["kind"] == "tg"][1]
        correct(team.store, "P-A01", tg.id, {"value": float(tg.payload["value"]) * 1.5}, "lab re-issued",
                team["anna"])
        late = DECISION_DAY - dt.timedelta(days=3)
        record(team.store, "P-A02", {"kind": "tg", "date": late.isoformat(), "value": 0.4, "unit": "ug/L",
                                     "loq": 0.2}, team["anna"])
        onset = DECISION_DAY + dt.timedelta(days=9)
        record(team.store, "P-A02", {"kind": "adverse_event", "date": onset.isoformat(),
                                     "term": "Hand-foot skin reaction", "grade": 3}, team["anna"])
        yield team


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(back=st.integers(min_value=-30, max_value=340), moment=st.one_of(st.none(), st.floats(0.0, 1.0)),
       who=st.sampled_from([None, "anna", "dina"]))
def test_signed_decisions_read_from_the_stored_lines_equal_the_fold(signed_team: Team, back: int,
                                                                     moment: float | None, who: str | None) -> None:
    store = signed_team.store
    actor = signed_team[who] if who else signed_team["dina"]
    _check(store, today() - dt.timedelta(days=back), _moment(store, moment), actor)


def test_a_signature_invalidated_after_the_decision_reads_so_from_the_stored_line(signed_team: Team) -> None:
    rows = {p["patient"]: p for p in report(signed_team.store, actor=signed_team["dina"]).patients}
    assert not rows["P-A01"]["signature"]["valid"] and not rows["P-A02"]["signature"]["valid"]
    assert rows["P-B01"]["signature"]["valid"] and rows["P-B01"]["signature"]["full_name"] == "Dr. Eva Visser"
    mine = report(signed_team.store, actor=signed_team["anna"])  # a coordinator of Amsterdam
    assert [p["patient"] for p in mine.patients] == ["P-A01", "P-A02"]
    assert [p.patient for p in safety(signed_team.store, actor=signed_team["anna"]).patients] == ["P-A02"]


@pytest.mark.postgres
def test_report_from_the_stored_lines_equals_the_fold_on_postgresql(tmp_path: Path) -> None:
    for url in new_db_url("postgres", tmp_path):
        store = _cohort(url, 17, patients=35)
        try:
            for back in (-60, 0, 45, 300):
                for moment in (None, 0.5):
                    _check(store, today() - dt.timedelta(days=back), _moment(store, moment))
        finally:
            store.close()
