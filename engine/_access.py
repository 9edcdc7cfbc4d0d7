"""Who may read what: the read functions resolve their actor here and keep to the actor's sites."""

from __future__ import annotations

from collections.abc import Callable

from ._base import Refused
from ._db import read_session
from ._identity import SITE_ROLES, Actor, Login, PermissionDenied, authorize, has_users, identify
from ._store import Store

__all__ = ["check_patient", "reader", "site_code", "site_filter"]


def reader(store: Store, who: str | Actor | Login | None) -> Actor:
    """The actor of a read: anyone in a store without users; an authenticated user otherwise."""
    if who is None:
        with read_session(store.engine) as s:
            if has_users(s):
                raise Refused("this store has users: say who you are (--user NAME) and authenticate to read it")
        return Actor("")
    actor = identify(store, who)
    return actor


def check_patient(store: Store, actor: Actor, patient: str) -> None:
    """Refuse (PermissionDenied) unless ``actor`` may read ``patient``."""
    if actor.role is None:
        return
    site = store.sites_of([patient]).get(patient)
    authorize(actor, "read", site, patient=patient)


def site_filter(store: Store, actor: Actor) -> Callable[[str], bool] | None:
    """A test of which patients ``actor`` may see, or None when they see every patient."""
    if actor.role is None:
        return None
    authorize(actor, "read")
    if actor.role not in SITE_ROLES:
        return None
    sites = store.sites_of()
    return lambda patient: sites.get(patient) in actor.sites


def site_code(store: Store, actor: Actor, site: str) -> str:
    """The store's code for ``site`` (any case); refused for an unknown site, or one the actor does not work at."""
    from ._identity import site_codes

    with read_session(store.engine) as s:
        codes = site_codes(s)
    by_lower = {c.lower(): c for c in codes}
    code = by_lower.get(site.strip().lower())
    if code is None:
        from trialflow.protocol import suggest

        known = ", ".join(codes) if codes else "none (a store without sites: leave out --site)"
        raise Refused(f"unknown site {site!r}{suggest(site, codes)} (sites: {known})")
    if actor.role in SITE_ROLES and code not in actor.sites:
        raise PermissionDenied(f"{actor.describe()} may not read the patients of site {code}: they work at "
                               f"{', '.join(sorted(actor.sites)) or 'no site'}", "read", [actor.role])
    return code
