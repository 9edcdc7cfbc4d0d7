"""A two-site study team for the web tests: users of every role, and patients at the moments that matter.

Dates are relative to today, because the web workspace answers for today as a coordinator's browser
does: on the day the tests run, A-001 and B-001 are two days past their week-8 Tg target (window
still open: overdue), and A-002 has finished six months of Sorafenib with a falling Tg and a partial
response, so the 6-month decision is ready (continued Sorafenib recommended). A-003 (LEI) started 40
days ago and has only a Tg at week 0: week 0 is missed with its TgAb missing, week 4 is missed with
nothing recorded, and neither has a deviation yet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from workflow_helpers import BASELINE_MM, ELIGIBLE, PR_MM, TG_RESPONSE, ct, rai_scan, tg_series

from trialflow.engine import (
    Store,
    add_site,
    add_user,
    auth_settings,
    authenticate,
    enroll,
    init_store,
    record_many,
    start,
)

ADMIN = "admin.tf"
PASSWORDS = {
    ADMIN: "admin-pass-2026",
    "anna": "anna-pass-2026",  # coordinator, site LEI
    "bert": "bert-pass-2026",  # coordinator, site GRO
    "dr.smit": "smit-pass-2026",  # investigator, site LEI
    "mona": "mona-pass-2026",  # monitor, every site
    "dave": "dave-pass-2026",  # data manager, every site
}
ROLES = {ADMIN: "admin", "anna": "coordinator", "bert": "coordinator", "dr.smit": "investigator",
         "mona": "monitor", "dave": "data_manager"}
SITES = {"anna": ["LEI"], "bert": ["GRO"], "dr.smit": ["LEI"]}
FULL_NAMES = {"anna": "Anna de Vries", "bert": "Bert Jansen", "dr.smit": "Dr. Eva Smit", "mona": "Mona Bakker",
              "dave": "Dave Visser", ADMIN: "Trial Admin"}


@dataclass(frozen=True)
class Team:
    db: str
    overdue_tg: str  # site LEI, Tg week 8 overdue today
    at_decision: str  # site LEI, 6-month decision ready today
    other_site: str  # site GRO, Tg week 8 overdue today
    missed: str  # site LEI, Tg week 0 (TgAb missing) and week 4 missed, no deviation yet


def cheap_hashing() -> None:
    """argon2 at its cheapest and no brute-force waits: the tests check behaviour, not cost."""
    s = auth_settings()
    s.time_cost, s.memory_kib, s.parallelism, s._hasher = 1, 8, 1, None
    s.sleep = lambda _seconds: None


def build_team(db: str) -> Team:
    cheap_hashing()
    today = dt.date.today()
    store, _ = init_store(db, None, ADMIN)
    try:
        add_user(store, ADMIN, ADMIN, "admin", PASSWORDS[ADMIN], full_name=FULL_NAMES[ADMIN], first_admin=True)
        admin = authenticate(store, ADMIN, PASSWORDS[ADMIN])
        add_site(store, admin, "LEI", "Leiden University Medical Center")
        add_site(store, admin, "GRO", "University Medical Center Groningen")
        for name, role in ROLES.items():
            if name != ADMIN:
                add_user(store, admin, name, role, PASSWORDS[name], sites=SITES.get(name, ()),
                         full_name=FULL_NAMES[name])
        anna = authenticate(store, "anna", PASSWORDS["anna"])
        bert = authenticate(store, "bert", PASSWORDS["bert"])
        day0 = today - dt.timedelta(days=58)
        for pid, who, site in (("A-001", anna, "LEI"), ("B-001", bert, "GRO")):
            _started(store, pid, who, site, day0)
            record_many(store, [(pid, r) for r in tg_series(day0, TG_RESPONSE[:2])], who)
        far = today - dt.timedelta(days=210)
        _started(store, "A-002", anna, "LEI", far)
        month6 = far + dt.timedelta(days=182)
        record_many(store, [("A-002", r) for r in (*tg_series(far, TG_RESPONSE), ct(month6, PR_MM), rai_scan(month6))],
                    anna)
        late = today - dt.timedelta(days=40)
        _started(store, "A-003", anna, "LEI", late)
        record_many(store, [("A-003", tg_series(late, TG_RESPONSE[:1])[0])], anna)  # the Tg without its TgAb
    finally:
        store.close()
    return Team(db, "A-001", "A-002", "B-001", "A-003")


def _started(store: Store, pid: str, who: object, site: str, day0: dt.date) -> None:
    enrolled = day0 - dt.timedelta(days=14)
    enroll(store, pid, enrolled, ELIGIBLE, who, site=site)
    record_many(store, [(pid, rai_scan(enrolled + dt.timedelta(days=7))),
                        (pid, ct(enrolled + dt.timedelta(days=10), BASELINE_MM))], who)
    start(store, pid, day0, who)
