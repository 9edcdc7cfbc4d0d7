"""``report`` and ``safety`` read only the events they need (issue 17): the phases, decisions, withdrawals,
deviations and the records the safety summary reads, not the Tg, TgAb, CT and scan observations that
make up most of the event table. A property test holds them equal to the fold over every event, for
random cohorts (the demo generator with a random seed), random corrections and retractions, random
clinical dates (``as_of``) and store moments (``known_at``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trialflow.engine import Refused, Store, correct, init_store, report, safety
from trialflow.engine import _queries as queries
from trialflow.engine._base import today
from trialflow.engine._demo import populate_demo

_STORES: dict[int, Store] = {}


def _cohort(seed: int, folder: Path) -> Store:
    """A demo cohort of 45 patients (seed ``seed``) with some of its records corrected or retracted."""
    if seed not in _STORES:
        store, _ = init_store(str(folder / f"cohort-{seed}.db"), None, "investigator.dr-smit")
        populate_demo(store, patients=45, seed=seed)
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
        _STORES[seed] = store
    return _STORES[seed]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cohorts")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from([3, 11, 2009]), back=st.integers(min_value=0, max_value=700),
       moment=st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0)))
def test_report_and_safety_equal_the_fold_over_every_event(folder: Path, seed: int, back: int,
                                                           moment: float | None) -> None:
    store = _cohort(seed, folder)
    as_of = today() - dt.timedelta(days=back)
    known_at = None
    if moment is not None:  # a moment between the first and the last write of the cohort
        times = sorted(e.recorded_at for p in store.patient_ids() for e in store.events(p))
        known_at = times[int(moment * (len(times) - 1))]
    kwargs = {"as_of": as_of, "known_at": known_at}
    lean = report(store, **kwargs), safety(store, **kwargs)
    whole = queries.REPORT_RECORDS
    try:
        queries.REPORT_RECORDS = None  # type: ignore[assignment]  # the reference: every event folded
        reference = report(store, **kwargs), safety(store, **kwargs)
    finally:
        queries.REPORT_RECORDS = whole
    assert lean == reference
    assert reference[0].enrolled == 0 or reference[0].per_phase  # the cohort is not empty on most dates
