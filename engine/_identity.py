"""Who is acting: sites, users with roles, argon2 passwords, authentication, and the one authorisation check.

A store without users works as before: whoever opens the file acts under a free-text name (an
*unauthenticated* :class:`Actor`, allowed everything). Once the first admin exists
(``trialflow init --admin NAME``), every action needs an authenticated actor, and
:func:`authorize` decides what each role may do, at which sites. The CLI and the web only
authenticate and pass the actor on; every engine entry point asks :func:`authorize` (the writes do
it in :meth:`Store.write`, per event appended, so no command can forget it).

Passwords are hashed with argon2id (argon2-cffi, its RFC 9106 low-memory profile by default) and
never stored, printed or logged. Failed attempts are recorded (``login_failure``) and each further
attempt on the same name waits longer, up to a bound, before the password is even checked.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
import socket
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from trialflow.documents._frozen import frozen

from ._base import Refused
from ._tables import AuditRow, LoginFailureRow, PatientRow, SiteRow, UserRow, UserSiteRow

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from ._store import Store

__all__ = [
    "PERMISSIONS",
    "ROLES",
    "SYSTEM",
    "Actor",
    "AuthSettings",
    "Login",
    "PermissionDenied",
    "SiteInfo",
    "UserInfo",
    "actor_by_id",
    "add_site",
    "add_user",
    "auth_settings",
    "authenticate",
    "authorize",
    "change_password",
    "cli_context",
    "disable_user",
    "has_users",
    "identify",
    "list_sites",
    "list_users",
]

ROLES = ("coordinator", "investigator", "data_manager", "monitor", "admin")
#: roles that work at named sites (the others see every site)
SITE_ROLES = frozenset({"coordinator", "investigator"})
CLINICAL = frozenset({"coordinator", "investigator"})

#: action → the roles that may take it (the role table of the README, enforced here only)
PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset({"coordinator", "investigator", "data_manager", "monitor"}),
    "enroll": CLINICAL,
    "record": CLINICAL,  # observations, treatment records, start, complete, withdraw, deviations
    "import": CLINICAL,
    "correct": CLINICAL,
    "answer_query": CLINICAL,
    "decide": frozenset({"investigator"}),
    "sign": frozenset({"investigator"}),
    "open_query": frozenset({"data_manager", "monitor"}),
    "close_query": frozenset({"data_manager"}),
    "lock": frozenset({"data_manager"}),
    "unlock": frozenset({"data_manager"}),
    "audit": frozenset({"data_manager", "monitor", "admin"}),
    "manage_users": frozenset({"admin"}),
    "manage_sites": frozenset({"admin"}),
    "register_protocol": frozenset({"admin"}),
    "migrate": frozenset({"admin"}),
}

_VERBS = {
    "read": "read patient data", "enroll": "enrol patients", "record": "record clinical data",
    "import": "import clinical data", "correct": "correct clinical data", "answer_query": "answer data queries",
    "decide": "take the decision", "sign": "sign decisions", "open_query": "open data queries",
    "close_query": "close data queries", "lock": "lock case books", "unlock": "unlock case books",
    "audit": "read the audit trail", "manage_users": "manage users", "manage_sites": "manage sites",
    "register_protocol": "register protocol versions", "migrate": "migrate patients between protocol versions",
}

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
SITE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,15}$")
MIN_PASSWORD = 10


class PermissionDenied(Refused):
    """The actor's role or sites do not allow the action; ``needs`` names the roles that would."""

    def __init__(self, message: str, action: str, needs: Iterable[str] = ()):
        super().__init__(message)
        self.action = action
        self.needs = tuple(needs)


@frozen
class Actor:
    """Who acts. ``role`` None: a store without users, where the name is free text (as before users)."""

    name: str
    user_id: int | None = None
    role: str | None = None
    full_name: str | None = None
    sites: frozenset[str] = frozenset()
    context: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    def describe(self) -> str:
        if self.role is None:
            return self.name
        where = f" at {', '.join(sorted(self.sites))}" if self.role in SITE_ROLES else ""
        return f"{self.name} ({self.role}{where})"

    def context_json(self) -> str | None:
        return json.dumps(dict(self.context), sort_keys=True, ensure_ascii=False) if self.context else None


@frozen
class Login:
    """Credentials a face (CLI, web) presents; the password is asked for only if the store has users.

    ``password`` is called at most once (the CLI prompts, reads stdin or ``TRIALFLOW_PASSWORD``).
    """

    name: str
    password: Callable[[], str] | None = None
    context: Mapping[str, str] = field(default_factory=dict, compare=False)


@frozen
class UserInfo:
    """A user as ``user list`` shows it (never the password hash)."""

    id: int
    name: str
    full_name: str
    role: str
    sites: tuple[str, ...]
    disabled: bool
    created_at: dt.datetime
    created_by: str
    last_login_at: dt.datetime | None


@frozen
class SiteInfo:
    code: str
    name: str
    patients: int
    created_at: dt.datetime
    created_by: str


# -- settings ---------------------------------------------------------------------------------------
@dataclass
class AuthSettings:
    """Password hashing and brute-force slow-down. The defaults are the real ones; tests make them cheap.

    ``TRIALFLOW_ARGON2`` (e.g. ``t=1,m=1024,p=1``: time cost, memory in KiB, lanes) overrides the hash
    parameters; a hash always carries its own parameters, so stores stay readable whatever is set.
    """

    time_cost: int = 3
    memory_kib: int = 65536  # RFC 9106 low-memory profile: 64 MiB
    parallelism: int = 4
    delay_base: float = 0.5  # seconds before the next attempt after one failure; doubles per failure
    delay_cap: float = 8.0  # never more than this per attempt
    window: dt.timedelta = dt.timedelta(minutes=15)  # failures older than this no longer count
    sleep: Callable[[float], None] = time.sleep
    _hasher: Any = None

    def hasher(self) -> PasswordHasher:
        if self._hasher is None:
            from argon2 import PasswordHasher

            self._hasher = PasswordHasher(time_cost=self.time_cost, memory_cost=self.memory_kib,
                                          parallelism=self.parallelism)
        return self._hasher

    def delay(self, failures: int) -> float:
        return 0.0 if failures <= 0 else min(self.delay_base * 2 ** (failures - 1), self.delay_cap)


def _settings_from_env() -> AuthSettings:
    s = AuthSettings()
    spec = os.environ.get("TRIALFLOW_ARGON2", "").strip()
    if spec:
        parts = dict(p.split("=", 1) for p in spec.split(",") if "=" in p)
        s.time_cost = max(1, int(parts.get("t", s.time_cost)))
        s.memory_kib = max(8, int(parts.get("m", s.memory_kib)))
        s.parallelism = max(1, int(parts.get("p", s.parallelism)))
    return s


_SETTINGS = _settings_from_env()


def auth_settings() -> AuthSettings:
    """The settings in force (tests change their fields: cheaper hashing, a recording ``sleep``)."""
    return _SETTINGS


def hash_password(password: str) -> str:
    return auth_settings().hasher().hash(password)


def _weaker(stored: str, settings: AuthSettings) -> bool:
    """The stored hash is cheaper than the configured parameters (re-hashed at login; never the other way)."""
    from argon2 import extract_parameters
    from argon2.exceptions import InvalidHashError

    try:
        p = extract_parameters(stored)
    except InvalidHashError:
        return False
    return p.time_cost < settings.time_cost or p.memory_cost < settings.memory_kib


def _verify(stored: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(auth_settings().hasher().verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False


# -- checks on names and passwords ----------------------------------------------------------------
def check_name(name: str) -> str:
    """A login name: 2-64 of a-z 0-9 . _ - (ASCII only: no look-alike letters), starting with a letter or digit."""
    norm = name.strip().lower()
    if not NAME_RE.fullmatch(norm):
        raise Refused(f"user name {_quote(name)} is not allowed: use 2-64 characters a-z, 0-9, '.', '_' or '-', "
                      "starting with a letter or digit (the full name may hold any letters)")
    return norm


def check_site_code(code: str) -> str:
    if not SITE_RE.fullmatch(code.strip()):
        raise Refused(f"site code {_quote(code)} is not allowed: use 1-16 characters A-Z, a-z, 0-9, '_' or '-'")
    return code.strip()


def _clean_text(text: str, what: str, limit: int = 200) -> str:
    norm = unicodedata.normalize("NFC", text).strip()
    if not norm:
        raise Refused(f"{what} is empty")
    if len(norm) > limit:
        raise Refused(f"{what} is longer than {limit} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in norm):
        raise Refused(f"{what} holds control or invisible characters")
    return norm


def check_password(password: str, name: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Refused(f"the password is too short: use at least {MIN_PASSWORD} characters")
    if password.strip().lower() == name.lower():
        raise Refused("the password must not be the user name")
    if any(unicodedata.category(ch) == "Cc" for ch in password):
        raise Refused("the password holds control characters")


def _quote(text: str) -> str:
    shown = "".join(ch if ch.isprintable() else "?" for ch in text[:64])
    return repr(shown)


def cli_context(interface: str = "cli") -> dict[str, str]:
    """Where a command runs: the OS login and host (context for the audit trail, not identity)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return {"interface": interface, "os_login": login, "host": socket.gethostname()}


# -- reading ----------------------------------------------------------------------------------------
def has_users(session: Session) -> bool:
    return session.execute(select(func.count()).select_from(UserRow)).scalar_one() > 0


def _sites_of(session: Session, user_id: int) -> frozenset[str]:
    return frozenset(session.execute(select(col(UserSiteRow.site)).where(col(UserSiteRow.user_id) == user_id))
                     .scalars())


def _actor(session: Session, row: UserRow, context: Mapping[str, str]) -> Actor:
    assert row.id is not None  # read back from the database
    return Actor(row.name, row.id, row.role, row.full_name, _sites_of(session, row.id), dict(context))


#: trialflow itself, for upkeep that appends nothing (rebuilding projections): allowed no action
SYSTEM = Actor("trialflow", role="system", context={"interface": "upkeep"})

#: what appending an event of each kind takes; a kind not named here is a clinical write ("record")
EVENT_ACTIONS: dict[str, str] = {
    "enrolled": "enroll", "eligibility_answered": "enroll", "observation": "record", "correction": "correct",
    "decision": "decide",
    "signature": "sign", "migrated": "migrate", "query_opened": "open_query", "query_answered": "answer_query",
    "query_closed": "close_query", "casebook_locked": "lock", "casebook_unlocked": "unlock",
}
#: kinds that may still be appended while the case book is locked
WHILE_LOCKED = frozenset({"casebook_unlocked", "query_opened", "query_answered", "query_closed"})


def action_of(kind: str) -> str:
    return EVENT_ACTIONS.get(kind, "record")


def refresh(session: Session, actor: Actor) -> Actor:
    """The actor as the store has them now (inside the transaction that acts): disabled or changed users count."""
    if actor is SYSTEM:
        return actor
    if actor.user_id is None:
        if has_users(session):
            raise Refused(f"this store has users: {actor.name!r} must authenticate (--user NAME and a password)")
        return actor
    row = session.get(UserRow, actor.user_id)
    if row is None or row.disabled:
        raise Refused(f"user {actor.name} is disabled: nothing was written")
    return _actor(session, row, actor.context)


def identify(store: Store, who: str | Actor | Login) -> Actor:
    """The actor for a library call: authenticated when the store has users, the free-text name otherwise."""
    from ._db import read_session

    if isinstance(who, Actor):
        return who
    batch = getattr(store, "_batch", None)  # inside Store.batch: the store's users were looked up once
    if isinstance(who, str) and batch is not None and not batch.actor.authenticated:
        return Actor(who)
    name = who.name if isinstance(who, Login) else who
    context = who.context if isinstance(who, Login) else {}
    with read_session(store.engine) as s:
        users = has_users(s)
    if not users:
        return Actor(name, context=dict(context))
    if not isinstance(who, Login) or who.password is None:
        raise Refused(f"this store has users: {name!r} must authenticate (--user NAME and a password)")
    return authenticate(store, name, who.password(), context=context)


def authenticate(store: Store, name: str, password: str, *, context: Mapping[str, str] | None = None) -> Actor:
    """Check a name and password; an authenticated :class:`Actor`, or :class:`Refused` (and the failure recorded).

    Every attempt on a name with recent failures first waits (doubling per failure, bounded by
    ``delay_cap``), whether the name exists or not, so guessing is slow and names cannot be probed.
    """
    from ._db import read_session, write_session

    settings = auth_settings()
    typed = name.strip().lower()[:64]
    now = _now()
    with read_session(store.engine) as s:
        row = s.execute(select(UserRow).where(col(UserRow.name) == typed)).scalars().first()
        since = now - settings.window
        last_ok = _aware(row.last_login_at) if row is not None and row.last_login_at else None
        recent = [a for a in (_aware(t) for t in s.execute(
            select(col(LoginFailureRow.at)).where(col(LoginFailureRow.name) == typed)
            .order_by(col(LoginFailureRow.at).desc()).limit(64)).scalars())
            if a > since and (last_ok is None or a > last_ok)]
    wait = settings.delay(len(recent))
    if wait:
        settings.sleep(wait)
    ok = row is not None and _verify(row.password_hash, password)
    if not ok:
        with write_session(store.engine) as s:
            s.add(LoginFailureRow(name=typed, at=_now(), context=_ctx(context)))
        n = len(recent) + 1
        slow = f"; {n} failed attempts in a row: the next one waits {settings.delay(n):g} s" if n > 1 else ""
        raise Refused(f"wrong user name or password for {_quote(name)}{slow}")
    assert row is not None
    if row.disabled:
        raise Refused(f"user {row.name} is disabled: ask an admin (trialflow user list)")
    with write_session(store.engine) as s:
        fresh = s.get(UserRow, row.id)
        if fresh is not None:
            if recent:
                fresh.last_login_at = _now()  # failures before a success stop counting
            if _weaker(fresh.password_hash, settings):
                fresh.password_hash = hash_password(password)
            actor = _actor(s, fresh, context or {})
    return actor


def verify_signer(store: Store, actor: Actor, password: str) -> Actor:
    """Re-check the signer's password at the moment of signing (21 CFR 11.200(a)): the same throttle applies."""
    signer = authenticate(store, actor.name, password, context=actor.context)
    if signer.user_id != actor.user_id:  # pragma: no cover - names are unique
        raise Refused("the password does not belong to the acting user")
    return signer


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ctx(context: Mapping[str, str] | None) -> str | None:
    return json.dumps(dict(context), sort_keys=True) if context else None


# -- the one authorisation check -------------------------------------------------------------------
def authorize(actor: Actor, action: str, site: str | None = None, *, patient: str | None = None) -> None:
    """Refuse with :class:`PermissionDenied` unless ``actor`` may take ``action`` (at ``site``, for ``patient``).

    An unauthenticated actor (a store without users) may do everything, as before users existed.
    A coordinator or investigator acts only on patients of their own sites.
    """
    if action not in PERMISSIONS:  # pragma: no cover - a programming error, not a user's
        raise ValueError(f"unknown action {action!r}")
    if actor.role is None:
        return
    allowed = PERMISSIONS[action]
    verb = _VERBS[action]
    if actor.role not in allowed:
        needs = [r for r in ROLES if r in allowed]
        role_text = needs[0] if len(needs) == 1 else ", ".join(needs[:-1]) + " or " + needs[-1]
        raise PermissionDenied(f"{actor.describe()} may not {verb}: that needs the {role_text} role", action, needs)
    if patient is not None and actor.role in SITE_ROLES and (site is None or site not in actor.sites):
        where = f"site {site}" if site else "no site"
        raise PermissionDenied(f"{actor.describe()} may not {verb} for {patient}: the patient is at {where}", action,
                               [actor.role])


def may(actor: Actor, action: str, site: str | None = None, *, patient: str | None = None) -> bool:
    try:
        authorize(actor, action, site, patient=patient)
    except PermissionDenied:
        return False
    return True


# -- store-level audit ------------------------------------------------------------------------------
def audit(session: Session, actor: Actor, kind: str, target: str, detail: Mapping[str, Any]) -> None:
    session.add(AuditRow(at=_now(), kind=kind, user=actor.name, user_id=actor.user_id, target=target,
                         detail=json.dumps(dict(detail), sort_keys=True, ensure_ascii=False),
                         context=actor.context_json()))


def _manage(store: Store, who: str | Actor | Login, action: str) -> Actor:
    actor = identify(store, who)
    authorize(actor, action)
    return actor


# -- sites ------------------------------------------------------------------------------------------
def add_site(store: Store, who: str | Actor | Login, code: str, name: str) -> SiteInfo:
    """A new site. The first site of a store adopts the patients enrolled before any site existed."""
    from ._db import write_session

    code = check_site_code(code)
    name = _clean_text(name, "the site name")
    actor = _manage(store, who, "manage_sites")
    with write_session(store.engine) as s:
        actor = refresh(s, actor)
        authorize(actor, "manage_sites")
        clash = s.execute(select(SiteRow).where(func.lower(SiteRow.code) == code.lower())).scalars().first()
        if clash is not None:
            raise Refused(f"site {clash.code} already exists ({clash.name})")
        first = s.execute(select(func.count()).select_from(SiteRow)).scalar_one() == 0
        row = SiteRow(code=code, name=name, created_at=_now(), created_by=actor.name)
        s.add(row)
        s.flush()
        adopted = 0
        if first:
            from sqlalchemy import update

            res = s.execute(update(PatientRow).where(col(PatientRow.site).is_(None)).values(site=code))
            adopted = int(res.rowcount)  # type: ignore[attr-defined]
        audit(s, actor, "site_added", code, {"name": name, "patients_adopted": adopted})
        return SiteInfo(code, name, adopted, row.created_at, actor.name)


def list_sites(store: Store, who: str | Actor | Login | None = None) -> list[SiteInfo]:
    """Every site with its patient count (site codes and names are not clinical data: any user may list them)."""
    from ._db import read_session

    if who is not None:
        identify(store, who)
    with read_session(store.engine) as s:
        counts = dict(s.execute(select(col(PatientRow.site), func.count()).group_by(col(PatientRow.site))).all())
        rows = s.execute(select(SiteRow).order_by(col(SiteRow.code))).scalars().all()
        return [SiteInfo(r.code, r.name, counts.get(r.code, 0), r.created_at, r.created_by) for r in rows]


def site_codes(session: Session) -> list[str]:
    return list(session.execute(select(col(SiteRow.code)).order_by(col(SiteRow.code))).scalars())


def resolve_site(actor: Actor, site: str | None, codes: Sequence[str]) -> str | None:
    """The site a new patient joins: the one named, the store's only site, or the actor's only site.
    ``codes``: the store's site codes (:func:`site_codes`; a bulk transaction reads them once)."""
    codes = list(codes)
    if site is not None:
        by_lower = {c.lower(): c for c in codes}
        if site.strip().lower() not in by_lower:
            from trialflow.protocol import suggest

            known = ", ".join(codes) if codes else "none yet (trialflow site add)"
            raise Refused(f"unknown site {_quote(site)}{suggest(site, codes)} (sites: {known})")
        return by_lower[site.strip().lower()]
    if not codes:
        return None
    if len(codes) == 1:
        return codes[0]
    if actor.role in SITE_ROLES and len(actor.sites) == 1:
        return next(iter(actor.sites))
    raise Refused(f"this store has {len(codes)} sites ({', '.join(codes)}): say which with --site")


# -- users ------------------------------------------------------------------------------------------
def _user_sites(session: Session, role: str, sites: Iterable[str]) -> list[str]:
    codes = {c.lower(): c for c in site_codes(session)}
    wanted = list(dict.fromkeys(sites))
    unknown = [s for s in wanted if s.strip().lower() not in codes]
    if unknown:
        known = ", ".join(codes.values()) or "none yet (trialflow site add)"
        raise Refused(f"unknown site(s) {', '.join(_quote(u) for u in unknown)} (sites: {known})")
    resolved = [codes[s.strip().lower()] for s in wanted]
    if role in SITE_ROLES and not resolved:
        raise Refused(f"a {role} works at named sites: give at least one --site")
    if role not in SITE_ROLES and resolved:
        raise Refused(f"a {role} sees every site: --site does not apply")
    return resolved


def add_user(store: Store, who: str | Actor | Login | None, name: str, role: str, password: str, *,
             sites: Iterable[str] = (), full_name: str | None = None, first_admin: bool = False) -> UserInfo:
    """A new user (admin only). ``first_admin`` creates the store's first user, which must be an admin."""
    from ._db import write_session

    norm = check_name(name)
    if role not in ROLES:
        from trialflow.protocol import suggest

        raise Refused(f"unknown role {_quote(role)}{suggest(role, list(ROLES))} (roles: {', '.join(ROLES)})")
    check_password(password, norm)
    shown = _clean_text(full_name, "the full name") if full_name is not None else norm
    if first_admin:
        actor = Actor(who.name if isinstance(who, Actor | Login) else (who or norm), context=cli_context())
    else:
        if who is None:
            raise Refused("adding a user needs an admin (--user NAME)")
        actor = identify(store, who)
        if not actor.authenticated:
            raise Refused("this store has no users yet: create the first admin with trialflow init --admin NAME")
        authorize(actor, "manage_users")
    hashed = hash_password(password)  # before the transaction: hashing is slow on purpose
    with write_session(store.engine) as s:
        if first_admin:
            if has_users(s):
                raise Refused("this store already has users: an admin adds more with trialflow user add")
            if role != "admin":  # pragma: no cover - init passes admin
                raise Refused("the first user must be an admin")
        else:
            actor = refresh(s, actor)
            authorize(actor, "manage_users")
        if s.execute(select(UserRow).where(col(UserRow.name) == norm)).first() is not None:
            raise Refused(f"user {norm} already exists (users are never deleted; see trialflow user list)")
        at = _user_sites(s, role, sites)
        now = _now()
        row = UserRow(name=norm, full_name=shown, role=role, password_hash=hashed, created_at=now,
                      created_by=norm if first_admin else actor.name, password_changed_at=now)
        s.add(row)
        s.flush()
        assert row.id is not None
        for code in at:
            s.add(UserSiteRow(user_id=row.id, site=code))
        by = Actor(norm, row.id, role, shown, frozenset(at), actor.context) if first_admin else actor
        audit(s, by, "user_added", norm, {"role": role, "sites": at, "full_name": shown})
        return UserInfo(row.id, norm, shown, role, tuple(at), False, now, row.created_by, None)


def list_users(store: Store, who: str | Actor | Login) -> list[UserInfo]:
    from ._db import read_session

    actor = identify(store, who)
    if actor.authenticated:
        authorize(actor, "manage_users") if actor.role == "admin" else authorize(actor, "audit")
    with read_session(store.engine) as s:
        rows = s.execute(select(UserRow).order_by(col(UserRow.name))).scalars().all()
        links: dict[int, list[str]] = {}
        for uid, site in s.execute(select(col(UserSiteRow.user_id), col(UserSiteRow.site))):
            links.setdefault(uid, []).append(site)
        return [UserInfo(r.id or 0, r.name, r.full_name, r.role, tuple(sorted(links.get(r.id or 0, []))), r.disabled,
                         r.created_at, r.created_by, r.last_login_at) for r in rows]


def disable_user(store: Store, who: str | Actor | Login, name: str, reason: str | None = None) -> UserInfo:
    """Disable a user (never deleted: their events keep pointing at them). The last admin stays."""
    from ._db import write_session

    actor = _manage(store, who, "manage_users")
    norm = name.strip().lower()
    with write_session(store.engine) as s:
        actor = refresh(s, actor)
        authorize(actor, "manage_users")
        row = s.execute(select(UserRow).where(col(UserRow.name) == norm)).scalars().first()
        if row is None:
            raise Refused(f"no user {_quote(name)} (see trialflow user list)")
        if row.disabled:
            raise Refused(f"user {row.name} is already disabled")
        if row.role == "admin":
            admins = s.execute(select(func.count()).select_from(UserRow).where(
                col(UserRow.role) == "admin", col(UserRow.disabled).is_(False))).scalar_one()
            if admins <= 1:
                raise Refused(f"{row.name} is the last admin: add another admin before disabling this one")
        row.disabled = True
        audit(s, actor, "user_disabled", row.name, {"reason": reason})
        assert row.id is not None
        return UserInfo(row.id, row.name, row.full_name, row.role, tuple(sorted(_sites_of(s, row.id))), True,
                        row.created_at, row.created_by, row.last_login_at)


def change_password(store: Store, who: str | Actor | Login, name: str, new_password: str) -> None:
    """Set a user's password: their own (authenticated with the current one), or anyone's as an admin."""
    from ._db import write_session

    actor = identify(store, who)
    norm = name.strip().lower()
    if not actor.authenticated:
        raise Refused("this store has no users: there is no password to change")
    if actor.name != norm:
        authorize(actor, "manage_users")
    check_password(new_password, norm)
    hashed = hash_password(new_password)
    with write_session(store.engine) as s:
        actor = refresh(s, actor)
        row = s.execute(select(UserRow).where(col(UserRow.name) == norm)).scalars().first()
        if row is None:
            raise Refused(f"no user {_quote(name)} (see trialflow user list)")
        row.password_hash = hashed
        row.password_changed_at = _now()
        audit(s, actor, "password_changed", row.name, {})


def user_names(session: Session, ids: Iterable[int]) -> dict[int, UserRow]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {r.id: r for r in session.execute(select(UserRow).where(col(UserRow.id).in_(wanted))).scalars()
            if r.id is not None}


def actor_by_id(store: Store, user_id: int, context: Mapping[str, str] | None = None) -> Actor:
    """The user ``user_id`` as an actor, fresh from the store (for a web session that keeps only the id).

    :class:`Refused` when the user is unknown or disabled.
    """
    from ._db import read_session

    with read_session(store.engine) as s:
        row = s.get(UserRow, user_id)
        if row is None or row.disabled:
            raise Refused("this user is unknown or disabled: log in again")
        return _actor(s, row, context or {})


def store_users(store: Store) -> int:
    """How many users the store has (0: a store without users, where names are free text)."""
    from ._db import read_session

    with read_session(store.engine) as s:
        return int(s.execute(select(func.count()).select_from(UserRow)).scalar_one())
