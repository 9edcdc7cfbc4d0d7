"""``status`` and ``visits --status`` read the visit states the store keeps beside the events (issue 17).

A property test holds them equal to the fold over every event, for random cohorts (the demo generator
with a random seed, written in bulk), random one-patient writes on top (corrections, skipped visits:
the one-patient transaction), random clinical dates, before and after each patient's latest record
(before it, the patient is replayed from its events), and random store moments (``known_at``: a patient
with something recorded after it is replayed, the others read as stored; the worklist too). One fixed
case on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trialflow.engine import Refused, Store, cohort_visits, correct, init_store, next_actions, skip_visit, status
from trialflow.engine._base import today
from trialflow.engine._demo import populate_demo
from trialflow.engine._ledger import VISIT_STATUSES
from trialflow.engine._queries import PatientStatus, patient_status
from trialflow.engine._schedule import ScheduledVisit, schedule
from trialflow.engine._state import fold
from trialflow.engine._worklist import Action, patient_actions, sort_actions

_STORES: dict[int, Store] = {}


def _cohort(url: str, seed: int, patients: int = 40) -> Store:
    """A demo cohort (seed ``seed``), then some records corrected and some visits skipped one by one."""
    store, _ = init_store(url, None, "investigator.dr-smit")
    populate_demo(store, patients=patients, seed=seed)
    rng = random.Random(seed)
    observations = [(p, e) for p in store.patient_ids() for e in store.events(p) if e.kind == "observation"
                    and e.payload["kind"] in ("tg", "dispense")]
    for pid, e in rng.sample(observations, k=min(8, len(observations))):
        changes = None if rng.random() < 0.4 else ({"value": 7.5} if e.payload["kind"] == "tg"
                                                    else {"dose_mg_per_day": 400})
        with contextlib.suppress(Refused):
            correct(store, pid, e.id, changes, "transcription error", "coordinator.anna")
    protocol = store.protocol()[0]
    for pid in rng.sample(store.patient_ids(), k=6):
        state = store.state(pid)
        assert state is not None
        open_visits = [v for v in schedule(protocol, state, today()) if v.status in ("due", "overdue", "missed")]
        if open_visits:
            v = rng.choice(open_visits)
            with contextlib.suppress(Refused):
                skip_visit(store, pid, v.visit, "patient on holiday", min(today(), v.window_end), "coordinator.anna")
    return store


def _folded(store: Store, as_of: dt.date,
            known_at: dt.datetime | None = None) -> tuple[list[PatientStatus], list[ScheduledVisit], list[Action]]:
    """The reference: every patient's events (recorded by ``known_at``) folded, cut at ``as_of``, read through the
    one schedule and the one worklist."""
    lines, visits, actions = [], [], []
    for events in store.events_of().values():
        try:
            st_ = fold(events, known_at=known_at)
        except LookupError:  # enrolled after known_at
            continue
        if st_.enrolled_on > as_of:
            continue
        cut = st_.until(as_of)
        protocol = store.protocol(cut.protocol_hash)[0]
        lines.append(patient_status(protocol, cut, as_of))
        visits += schedule(protocol, cut, as_of)
        actions += patient_actions(protocol, cut, as_of, 28)
    return sorted(lines, key=lambda s: s.patient), visits, sort_actions(actions)


def _check(store: Store, as_of: dt.date, known_at: dt.datetime | None = None) -> None:
    lines, visits, actions = _folded(store, as_of, known_at)
    # repr: the same types too (800.0 is not 800 in JSON)
    assert repr(status(store, as_of=as_of, known_at=known_at)) == repr(lines)
    for s in VISIT_STATUSES:
        expected = sorted((v for v in visits if v.status == s), key=lambda v: (v.target_date, v.patient, v.visit))
        assert repr(cohort_visits(store, status=s, as_of=as_of, known_at=known_at)) == repr(expected), s
    unresolved = sorted((v for v in visits if not v.resolved), key=lambda v: (v.target_date, v.patient, v.visit))
    assert cohort_visits(store, unresolved=True, as_of=as_of, known_at=known_at) == unresolved
    if known_at is not None:  # the worklist as it stood (no data queries in these cohorts)
        assert next_actions(store, as_of=as_of, known_at=known_at) == actions
    one = lines[len(lines) // 2] if lines else None
    if one is not None:
        assert status(store, one.patient, as_of=as_of, known_at=known_at) == [one]


def _moment(store: Store, fraction: float | None) -> dt.datetime | None:
    """A moment between the first and the last write of the store (None for None)."""
    if fraction is None:
        return None
    times = sorted(e.recorded_at for events in store.events_of().values() for e in events)
    return times[int(fraction * (len(times) - 1))]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cohorts")


@settings(max_examples=14, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from([5, 17, 2009]), back=st.integers(min_value=-120, max_value=500),
       moment=st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0)))
def test_status_and_visits_from_the_projection_equal_the_fold(folder: Path, seed: int, back: int,
                                                              moment: float | None) -> None:
    if seed not in _STORES:
        _STORES[seed] = _cohort(str(folder / f"cohort-{seed}.db"), seed)
    store = _STORES[seed]
    _check(store, today() - dt.timedelta(days=back), _moment(store, moment))


def test_the_projection_serves_patients_whose_latest_record_is_not_after_the_date(folder: Path) -> None:
    """Not a replay in disguise: on today, every patient's line comes from the stored rows."""
    if 2009 not in _STORES:
        _STORES[2009] = _cohort(str(folder / "cohort-2009.db"), 2009)
    store = _STORES[2009]
    rows, visits, stale = store.projected(today())
    assert not stale and len(rows) == len(store.patient_ids()) and sum(map(len, visits.values())) > 100


@pytest.mark.postgres
def test_status_and_visits_from_the_projection_equal_the_fold_on_postgresql(tmp_path: Path) -> None:
    from workflow_helpers import new_db_url

    for url in new_db_url("postgres", tmp_path):
        store = _cohort(url, 17, patients=35)
        try:
            for back in (-60, 0, 45, 300):
                for moment in (None, 0.6):
                    _check(store, today() - dt.timedelta(days=back), _moment(store, moment))
        finally:
            store.close()
