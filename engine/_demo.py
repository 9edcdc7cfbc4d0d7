"""A demo store: a realistic cohort at every stage of the study, built through the workflow functions.

Nothing is written into tables directly: every patient is enrolled, started, recorded and decided
through the same library calls the CLI makes, with dates relative to today so the worklist always
has due and overdue items. The records the demo makes are built by their classes and handed to
``record_many`` as records (the schema check of the case-file form is for records from outside).
Values follow docs/DOMAIN.md's pathway figures (ln Tg slope about -0.05/week in responders and +0.02
to +0.03 in progressors, residual SD 0.07, RECIST PR/SD/PD mixes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._base import Refused
from ._collector import no_cyclic_collection
from ._db import StoreError, database_url
from ._records import Record, stored_record
from ._store import Store
from ._visit_events import deviation
from ._workflow import (
    complete_phase,
    decide,
    enroll,
    init_store,
    record_many,
    start,
    today,
    withdraw,
)

__all__ = ["DEMO_DB", "DEMO_PREFIX", "build_demo", "demo_ids", "is_demo_store", "populate_demo"]

DEMO_DB = "trialflow-demo.db"
USERS = ("coordinator.anna", "coordinator.ben", "investigator.dr-smit")


@dataclass(frozen=True)
class _Profile:
    """How one virtual patient's disease and study course go."""

    slope: float  # ln Tg per week
    ct_change: float  # relative change of the target sum at 6 months
    new_lesion: bool = False
    reinduced: bool = False
    tgab: bool = False
    miss_month6_ct: bool = False
    withdraw_day: int | None = None
    withdraw_reason: str = "toxicity"
    ineligible: str | None = None
    late_tg_from: int | None = None  # Tg visits from this week on are not (yet) recorded
    dose_reduction_day: int | None = None


# Days since enrolment for each of 30 patients, with their course: a cohort enrolled over ~15 months.
_COHORT: list[tuple[int, _Profile]] = [
    (460, _Profile(-0.055, -0.38)),
    (445, _Profile(0.004, -0.05, dose_reduction_day=60)),
    (430, _Profile(0.03, 0.31, new_lesion=True)),
    (418, _Profile(-0.02, -0.12, reinduced=True)),
    (400, _Profile(0.01, 0.02, tgab=True)),
    (385, _Profile(0.028, 0.26)),
    (372, _Profile(-0.045, -0.33, dose_reduction_day=45)),
    (360, _Profile(0.0, 0.0, withdraw_day=70, withdraw_reason="toxicity")),
    (345, _Profile(0.002, 0.08, miss_month6_ct=True)),
    (330, _Profile(0.025, 0.22, new_lesion=True)),
    (318, _Profile(-0.03, -0.21)),
    (300, _Profile(0.005, 0.24)),  # RECIST PD with stable Tg: discordant, favourable as written
    (290, _Profile(0.0, 0.0, ineligible="prior_tki")),
    (276, _Profile(-0.05, -0.30)),
    (262, _Profile(0.02, 0.12, withdraw_day=120, withdraw_reason="consent")),
    (236, _Profile(0.01, -0.08)),  # at the 6-month decision, ready
    (228, _Profile(0.035, 0.4, new_lesion=True)),  # decision ready
    (214, _Profile(-0.04, -0.2, late_tg_from=28)),  # waiting on Tg week 28
    (196, _Profile(0.0, 0.05)),  # 6-month scans due
    (170, _Profile(-0.02, -0.1, dose_reduction_day=40)),
    (150, _Profile(0.015, 0.1, late_tg_from=16)),  # Tg week 16 overdue / missed
    (128, _Profile(0.0, 0.0)),
    (112, _Profile(-0.05, -0.3, late_tg_from=12)),
    (98, _Profile(0.02, 0.15)),
    (71, _Profile(0.0, 0.0, late_tg_from=8)),  # Tg week 8 overdue (target passed, window open)
    (63, _Profile(0.01, 0.0)),
    (40, _Profile(-0.01, 0.0)),
    (20, _Profile(0.0, 0.0)),  # baseline done, start due
    (9, _Profile(0.0, 0.0)),  # baseline in progress
    (2, _Profile(0.0, 0.0)),  # just enrolled
]


def _answers(store: Store, unmet: str | None) -> dict[str, str]:
    proto = store.protocol()[0]
    answers = {c.id: "yes" for c in proto.eligibility.inclusion}
    answers.update({c.id: "no" for c in proto.eligibility.exclusion})
    if unmet:
        answers[unmet] = "yes" if unmet in answers and unmet in {c.id for c in proto.eligibility.exclusion} else "no"
    return answers


def _ct(date: dt.date, sizes: list[float], new: bool, organs: list[str]) -> dict[str, Any]:
    # a course extrapolated past its 6-month change can shrink a lesion below nothing: it has disappeared (0 mm)
    return {"kind": "ct", "date": date.isoformat(), "slice_thickness_mm": 5,
            "target": [{"id": f"T{i + 1}", "organ": organs[i], "diameter_mm": round(max(s, 0.0), 1),
                        **({"nodal": True} if organs[i] == "lymph_node" else {})} for i, s in enumerate(sizes)],
            "non_target": [{"id": "N1", "organ": "bone", "status": "present"}],
            "new_lesions": ["liver segment 6"] if new else []}


def _patient(store: Store, pid: str, days_ago: int, prof: _Profile, rng: random.Random, scale: bool = False) -> None:
    """One patient's course; ``scale``: a patient of a larger cohort, whose missed visits get deviations."""
    now = today()
    user = USERS[rng.randrange(2)]
    enrolled = now - dt.timedelta(days=days_ago)
    result = enroll(store, pid, enrolled, _answers(store, prof.ineligible), user)
    if not result.eligible:
        return
    organs = rng.sample(["lung", "lung", "lymph_node", "bone", "liver"], k=3)
    base_sizes = [rng.uniform(12, 35) for _ in organs]
    items: list[tuple[str, Record]] = []

    def add(rec: dict[str, Any]) -> None:
        if dt.date.fromisoformat(rec["date"]) <= now:
            items.append((pid, stored_record(rec)))

    add(_ct(enrolled + dt.timedelta(days=6), base_sizes, False, organs))
    add({"kind": "rai_scan", "date": (enrolled + dt.timedelta(days=5 + (days_ago < 10) * 2)).isoformat(),
         "modalities": ["planar", "spect"], "avid_lesions": []})
    if days_ago < 14:
        if items:
            record_many(store, items, user)
        return
    record_many(store, items, user)
    items = []
    day0 = enrolled + dt.timedelta(days=14)
    if day0 > now - dt.timedelta(days=1) and days_ago < 21:
        return  # start due today: left for the coordinator
    start(store, pid, day0, user)
    stop = day0 + dt.timedelta(days=prof.withdraw_day) if prof.withdraw_day else None
    horizon = min(now, stop) if stop else now
    tg0 = math.exp(rng.gauss(math.log(25), 1.0))
    for week in range(0, 29, 4):
        d = day0 + dt.timedelta(days=7 * week + rng.choice((-1, 0, 0, 1)) * (week > 0))
        if week == 0:
            d = day0
        if d > horizon or (prof.late_tg_from is not None and week >= prof.late_tg_from):
            continue
        value = tg0 * math.exp(prof.slope * week + rng.gauss(0, 0.07))
        add({"kind": "tg", "date": d.isoformat(), "value": round(value, 2), "unit": "ug/L", "loq": 0.2})
        add({"kind": "tgab", "date": d.isoformat(), "result": "positive" if prof.tgab else "negative"})
    for k in range(0, 7):  # monthly Sorafenib supply; the current one runs out soon for most
        d = day0 + dt.timedelta(days=28 * k)
        if d <= horizon and d <= day0 + dt.timedelta(days=182):
            dose = 600 if prof.dose_reduction_day and 28 * k >= prof.dose_reduction_day else 800
            add({"kind": "dispense", "date": d.isoformat(), "dose_mg_per_day": dose, "days_supply": 28})
    if prof.dose_reduction_day and day0 + dt.timedelta(days=prof.dose_reduction_day) <= horizon:
        d = day0 + dt.timedelta(days=prof.dose_reduction_day)
        ae = {"kind": "adverse_event", "date": (d - dt.timedelta(days=2)).isoformat(),
              "term": "Palmar-plantar erythrodysesthesia syndrome", "grade": 3, "relatedness": "definite",
              "action": "dose_reduced"}
        if d + dt.timedelta(days=21) <= horizon:
            ae["resolved"] = (d + dt.timedelta(days=21)).isoformat()
        add(ae)
        add({"kind": "dose_change", "date": d.isoformat(), "dose_mg_per_day": 600, "reason": "hand-foot skin reaction"})
    month6 = day0 + dt.timedelta(days=182 + rng.choice((-2, 0, 3)))
    if month6 <= horizon:
        if not prof.miss_month6_ct:
            add(_ct(month6, [s * (1 + prof.ct_change) for s in base_sizes], prof.new_lesion, organs))
        add({"kind": "rai_scan", "date": month6.isoformat(), "modalities": ["planar", "spect"],
             "avid_lesions": [{"id": "lung-left-lower", "modality": "spect"}] if prof.reinduced else []})
    if items:
        record_many(store, items, user)
    if scale and prof.late_tg_from is not None and prof.late_tg_from % 8 == 4:  # a not-attended Tg visit
        missed_on = day0 + dt.timedelta(days=7 * prof.late_tg_from + 4)  # the day after its window closed
        if missed_on <= min(horizon, now - dt.timedelta(days=1)):
            with contextlib.suppress(Refused):  # refused: the visit was done after all (a later Tg counts)
                deviation(store, pid, f"tg_w{prof.late_tg_from}", "missed", "patient did not attend", missed_on,
                          user)
    if stop is not None and stop <= now:
        withdraw(store, pid, stop, prof.withdraw_reason, user,
                 "grade 3 hand-foot skin reaction despite dose reduction" if prof.withdraw_reason == "toxicity"
                 else None)
        _stopped(store, pid, stop, user, "withdrawn")
        return
    decision_day = day0 + dt.timedelta(days=203)
    if decision_day > now - dt.timedelta(days=5):
        return  # decision ready or waiting: left for the investigator
    try:
        moved = decide(store, pid, decision_day, USERS[2])
    except Refused:
        return
    if moved.phase == "off_study":
        _stopped(store, pid, decision_day, user, "off study")
        return
    end = decision_day + dt.timedelta(days=182)
    follow = [(pid, {"kind": "dispense", "date": (decision_day + dt.timedelta(days=28 * k)).isoformat(),
                     "dose_mg_per_day": 800, "days_supply": 28}) for k in range(7)
              if decision_day + dt.timedelta(days=28 * k) <= min(now, end) - dt.timedelta(days=rng.choice((0, 0, 30)))]
    if moved.phase == "rai_plus_sorafenib" and decision_day + dt.timedelta(days=14) <= now:
        follow.append((pid, {"kind": "rai_therapy", "date": (decision_day + dt.timedelta(days=14)).isoformat(),
                             "activity_mbq": 6000}))
    for day in (91, 182):  # 3- and 6-monthly follow-up, mostly on time
        when = decision_day + dt.timedelta(days=day + rng.choice((-2, 0, 1)))
        if when <= now and rng.random() < 0.85:
            tg = tg0 * math.exp(prof.slope * (26 + day / 7) + rng.gauss(0, 0.07))
            follow.append((pid, {"kind": "tg", "date": when.isoformat(), "value": round(tg, 2), "unit": "ug/L"}))
            follow.append((pid, {"kind": "tgab", "date": when.isoformat(),
                                 "result": "positive" if prof.tgab else "negative"}))
            follow.append((pid, _ct(when, [s * (1 + prof.ct_change * (1 + day / 182)) for s in base_sizes],
                                    False, organs)))
    if follow:
        record_many(store, [(p, stored_record(rec)) for p, rec in follow], user)
    if end <= now - dt.timedelta(days=10):
        complete_phase(store, pid, end, user)
        _stopped(store, pid, end, user, "end of study")


def _stopped(store: Store, pid: str, when: dt.date, user: str, why: str) -> None:
    record_many(store, [(pid, stored_record({"kind": "dose_change", "date": when.isoformat(), "dose_mg_per_day": 0,
                                             "reason": f"treatment stopped: {why}"}))], user)


DEMO_MARKER = ("demo", "built by trialflow demo: may be replaced by the next `trialflow demo`")
DEMO_PREFIX = "DEMO-"


def is_demo_store(store: Store) -> bool:
    return store.info(DEMO_MARKER[0]) == DEMO_MARKER[1]


def build_demo(db: str | None = None, *, seed: int = 2009, patients: int | None = None) -> Store:
    """Create a fresh demo store (replacing an earlier demo file) and fill it; answers the open store.

    Only a file the demo created itself (marked in ``store_info``) is ever replaced: a real store, even
    an empty one or one whose patients happen to have ``DEMO-`` ids, another application's file and an
    unrecognised file are refused and left as they are.
    """
    url = database_url(db or DEMO_DB)
    if not url.startswith("sqlite:///"):
        raise Refused("the demo writes a fresh SQLite file; give --db a file path")
    path = Path(url[len("sqlite:///"):])
    if path.is_symlink():
        raise Refused(f"{path} is a symbolic link; the demo only replaces its own files (choose another --db)")
    if path.exists() and path.stat().st_size > 0:
        try:
            existing = Store.open(str(path))
        except StoreError as err:
            raise Refused(f"{path} is not a demo store ({err}); the demo only replaces its own files "
                          "(choose another --db)") from None
        try:
            demo = is_demo_store(existing)
        finally:
            existing.close()
        if not demo:
            raise Refused(f"{path} holds a trialflow store that the demo did not create; the demo only replaces "
                          "its own files (choose another --db)")
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    store, _ = init_store(str(path), None, USERS[2])
    populate_demo(store, seed=seed, patients=patients)
    return store


def _cohort(patients: int, rng: random.Random) -> list[tuple[int, _Profile]]:
    """The 30 patients above, then (for a larger cohort) patients enrolled over two years whose courses are
    drawn from theirs, with their own disease slope and target-sum change."""
    cohort = _COHORT[:patients]
    for _ in range(patients - len(cohort)):
        prof = rng.choice(_COHORT)[1]
        cohort.append((rng.randrange(0, 730), dataclasses.replace(
            prof, slope=prof.slope + rng.gauss(0, 0.005), ct_change=prof.ct_change + rng.gauss(0, 0.03))))
    return cohort


def demo_ids(n: int, first: int = 1, last: int | None = None) -> list[str]:
    """The study ids of patients ``first``..``last`` (1-based, inclusive; all by default) of an ``n``-patient demo.

    Below 10^5 patients: ``DEMO-001`` … ``DEMO-99999`` (zero-padded to the cohort's width). From 10^5 on, the
    number is written in groups of three (``DEMO-000-101``, ``DEMO-100-000``): a run of six digits such as 000101
    would read as a date of birth (1 January 2000) and be refused as a study id (``engine/_pseudonym.py``)."""
    last = n if last is None else last
    width = max(3, len(str(n)))
    if n < 100_000:
        return [f"{DEMO_PREFIX}{i:0{width}d}" for i in range(first, last + 1)]
    ids = []
    for i in range(first, last + 1):
        digits = f"{i:0{width}d}"
        head = len(digits) % 3 or 3
        groups = [digits[:head], *(digits[k:k + 3] for k in range(head, len(digits), 3))]
        ids.append(DEMO_PREFIX + "-".join(groups))
    return ids


#: patients per bulk transaction (memory stays bounded; each chunk commits whole)
BATCH = 1000


def populate_demo(store: Store, *, seed: int = 2009, patients: int | None = None) -> None:
    """Mark ``store`` as a demo store and enrol and follow the demo cohort in it (any backend) through the
    workflow functions, in bulk transactions of :data:`BATCH` patients (``patients``: the cohort's size,
    30 by default)."""
    store.set_info(*DEMO_MARKER)
    rng = random.Random(seed)
    n = len(_COHORT) if patients is None else patients
    cohort = _cohort(n, rng)
    with no_cyclic_collection():
        for first in range(0, n, BATCH):
            ids = demo_ids(n, first + 1, min(n, first + BATCH))
            with store.batch(USERS[2]) as tx:
                tx.preload(ids)  # one query for the chunk, not one per enrolment
                for k, (pid, (days_ago, prof)) in enumerate(zip(ids, cohort[first:first + BATCH], strict=True),
                                                            first):
                    _patient(store, pid, days_ago, prof, rng, scale=k >= len(_COHORT))
