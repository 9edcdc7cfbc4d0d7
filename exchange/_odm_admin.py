"""AdminData of an ODM export: the study team (users, sites as Locations) and the decision's SignatureDef.

A store with a team (issue 13's identity layer) lists every user of the store: ``User`` with OID
``USR.<login>``, LoginName, DisplayName and FullName (the full name printed on signatures), and a
``LocationRef`` to each site a coordinator or investigator works at (a study-wide role, such as a
data manager or monitor, names no site). Every site is a ``Location`` ``LOC.<site code>``. Names that
recorded events but are no users of the store (a store without users, history restored from another
system, events from before the team existed) are listed as today: a User whose login and display
name are that free-text name. Patients without a site sit at the store's own Location ``TRIALFLOW.STORE``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from trialflow.engine import Store
from trialflow.protocol import Protocol

from ._odm_metadata import mdv_oid, study_oid
from ._odm_model import ODM

__all__ = ["LEGACY_LOCATION_OID", "LOCATION_OID", "SIGNATURE_DEF", "StoreTeam", "TeamMember", "build_admin",
           "location_oid", "read_team", "user_oid"]

#: the store's own Location, where patients without a site sit: not ``LOC.<code>``, which a site STORE would take
LOCATION_OID = "TRIALFLOW.STORE"
LEGACY_LOCATION_OID = "LOC.STORE"  # what exports wrote before (the import still reads it, named "trialflow store")
SIGNATURE_DEF = "SD.DECISION"
_NOT_OID = re.compile(r"[^A-Za-z0-9._-]")


def user_oid(user: str) -> str:
    return "USR." + _NOT_OID.sub("_", user)


def location_oid(site: str | None) -> str:
    """The Location of a site (by its code), or the store's own for a patient without a site."""
    return LOCATION_OID if site is None else "LOC." + _NOT_OID.sub("_", site)


@dataclass(frozen=True, slots=True)
class TeamMember:
    """A user of the store as AdminData lists it (never the password hash)."""

    name: str
    full_name: str
    role: str
    sites: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StoreTeam:
    """The store's users and sites, and the site of each patient (empty for a store without a team)."""

    users: tuple[TeamMember, ...] = ()
    sites: tuple[tuple[str, str], ...] = ()  # (code, name)
    patient_sites: Mapping[str, str | None] = field(default_factory=dict)


def read_team(store: Store, patients: Iterable[str]) -> StoreTeam:
    """Every user and site of the store, and where ``patients`` are enrolled."""
    from sqlmodel import col, select

    from trialflow.engine._db import read_session
    from trialflow.engine._tables import SiteRow, UserRow, UserSiteRow

    with read_session(store.engine) as s:
        links: dict[int, list[str]] = {}
        for uid, site in s.execute(select(col(UserSiteRow.user_id), col(UserSiteRow.site))):
            links.setdefault(uid, []).append(site)
        users = tuple(TeamMember(r.name, r.full_name, r.role, tuple(sorted(links.get(r.id or 0, []))))
                      for r in s.execute(select(UserRow).order_by(col(UserRow.name))).scalars())
        sites = tuple((r.code, r.name) for r in s.execute(select(SiteRow).order_by(col(SiteRow.code))).scalars())
    wanted = sorted(set(patients))
    return StoreTeam(users, sites, store.sites_of(wanted) if wanted else {})


def _location(oid: str, name: str, protocols: Sequence[Protocol]) -> ODM.Location:
    location = ODM.Location(OID=oid, Name=name, LocationType="Site")
    for p in protocols:
        location.MetaDataVersionRef.append(ODM.MetaDataVersionRef(StudyOID=study_oid(p), MetaDataVersionOID=mdv_oid(p),
                                                                  EffectiveDate=dt.date.today().isoformat()))
    return location


def build_admin(protocols: Sequence[Protocol], recorded_by: Sequence[str], team: StoreTeam) -> ODM.AdminData:
    """The store's users (and any other name that recorded events), its sites, and the decision's SignatureDef."""
    latest = protocols[-1]
    admin = ODM.AdminData(StudyOID=study_oid(latest))
    members = {m.name: m for m in team.users}
    for name in sorted(set(recorded_by) | set(members)):
        member = members.get(name)
        if member is None:  # a free-text name: a store without users, or a history restored from elsewhere
            admin.User.append(ODM.User(OID=user_oid(name), LoginName=ODM.LoginName(_content=name),
                                       DisplayName=ODM.DisplayName(_content=name)))
            continue
        admin.User.append(ODM.User(
            OID=user_oid(name), UserType="Investigator" if member.role == "investigator" else "Other",
            LoginName=ODM.LoginName(_content=name), DisplayName=ODM.DisplayName(_content=member.full_name),
            FullName=ODM.FullName(_content=member.full_name),
            LocationRef=[ODM.LocationRef(LocationOID=location_oid(site)) for site in member.sites]))
    for code, name in team.sites:
        admin.Location.append(_location(location_oid(code), name, protocols))
    if not team.sites or any(site is None for site in team.patient_sites.values()):
        admin.Location.append(_location(LOCATION_OID, "trialflow store", protocols))
    admin.SignatureDef.append(ODM.SignatureDef(
        OID=SIGNATURE_DEF, Methodology="Electronic",
        Meaning=ODM.Meaning(_content=f"The investigator confirms decision {latest.decision.id} "
                                     f"({latest.decision.name}) and the branch taken"),
        LegalReason=ODM.LegalReason(_content="Electronic record of the investigator's decision "
                                             "(21 CFR Part 11.50: name, date and time, meaning)"),
    ))
    return admin
