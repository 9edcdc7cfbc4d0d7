"""A two-site study team for the identity tests (issue 13): sites, users of every role, patients at each site.

Amsterdam (AMS) and Leiden (LEI); a coordinator and an investigator at each, a data manager, a monitor
and the admin. Passwords are hashed with cheap argon2 parameters (the real defaults cost 64 MiB
each) and the brute-force slow-down records its waits instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from workflow_helpers import DAY0, ELIGIBLE, ENROLLED, PR_MM, TG_RESPONSE, ct, rai_scan, tg_series

from trialflow.engine import (
    Actor,
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

PASSWORDS = {
    "admin.jo": "admin-pass-0001",
    "anna": "anna-pass-0001",
    "dr.smit": "smit-pass-0001",
    "bram": "bram-pass-0001",
    "dr.visser": "visser-pass-0001",
    "dina": "dina-pass-0001",
    "mona": "mona-pass-0001",
}
USERS = [  # name, role, sites, full name
    ("anna", "coordinator", ["AMS"], "Anna de Vries"),
    ("dr.smit", "investigator", ["AMS"], "Dr. Jan Smit"),
    ("bram", "coordinator", ["LEI"], "Bram Jansen"),
    ("dr.visser", "investigator", ["LEI"], "Dr. Eva Visser"),
    ("dina", "data_manager", [], "Dina Bakker"),
    ("mona", "monitor", [], "Mona Peeters"),
]


@dataclass
class Team:
    store: Store
    actors: dict[str, Actor]
    waits: list[float] = field(default_factory=list)

    def __getitem__(self, name: str) -> Actor:
        return self.actors[name]


@pytest.fixture
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """argon2 at t=1, 1 MiB, 1 lane; the slow-down's waits recorded, not slept."""
    s = auth_settings()
    waits: list[float] = []
    monkeypatch.setattr(s, "time_cost", 1)
    monkeypatch.setattr(s, "memory_kib", 1024)
    monkeypatch.setattr(s, "parallelism", 1)
    monkeypatch.setattr(s, "_hasher", None)
    monkeypatch.setattr(s, "sleep", waits.append)
    return waits


def build_team(store: Store, waits: list[float]) -> Team:
    add_user(store, None, "admin.jo", "admin", PASSWORDS["admin.jo"], full_name="Jo Admin", first_admin=True)
    admin = authenticate(store, "admin.jo", PASSWORDS["admin.jo"])
    add_site(store, admin, "AMS", "Amsterdam UMC")
    add_site(store, admin, "LEI", "Leiden University Medical Center")
    for name, role, sites, full in USERS:
        add_user(store, admin, name, role, PASSWORDS[name], sites=sites, full_name=full)
    actors = {n: authenticate(store, n, p) for n, p in PASSWORDS.items()}
    return Team(store, actors, waits)


def at_decision(team: Team, pid: str, coordinator: str, site: str) -> None:
    """Enrolled at ``site``, baseline done, started, Tg weeks 0-28 and the 6-month scans: the decision is ready."""
    who = team[coordinator]
    enroll(team.store, pid, ENROLLED, ELIGIBLE, who, site=site)
    record_many(team.store, [(pid, rai_scan(ENROLLED + dt.timedelta(days=7))),
                             (pid, ct(ENROLLED + dt.timedelta(days=10), (22.0, 14.0, 18.0)))], who)
    start(team.store, pid, DAY0, who)
    month6 = DAY0 + dt.timedelta(days=182)
    items = [(pid, r) for r in tg_series(DAY0, TG_RESPONSE)]
    items += [(pid, ct(month6, PR_MM)), (pid, rai_scan(month6))]
    record_many(team.store, items, who)


def new_team_store(db_url: str, waits: list[float]) -> Team:
    store, _ = init_store(db_url, None, "admin.jo")
    return build_team(store, waits)


def copy_sites(source: Store, target: Store, who: str = "data.manager") -> None:
    """The source's sites added to a store without users, as an ODM import of its patients needs them (the import
    puts each restored patient at the site its SiteRef names, and refuses a site the store does not have)."""
    from trialflow.engine import add_site, list_sites

    for site in list_sites(source):
        add_site(target, who, site.code, site.name)
