"""Protocol amendments: what a new version changes for each enrolled patient, and explicit migration.

The impact is computed by replaying each patient's recorded events under the new version and
comparing with the version the patient runs on: the future schedule (visits that appear, disappear
or move), visits that become missed or no longer required, a decision already taken that would now
come out differently (shown, never changed), eligibility that would now fail. Registering a version
changes no patient; moving patients is :func:`migrate`, recorded as an event per patient and undone by
migrating back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialflow.protocol import Change, Protocol, diff_protocols, load_protocol

from ._base import Refused, located, today
from ._checks import eligibility_answers
from ._decision import evaluate_decision
from ._identity import SITE_ROLES, Actor, Login, authorize, identify, may
from ._projection import projection
from ._schedule import ScheduledVisit, schedule
from ._state import ELIGIBILITY_ANSWERED, MIGRATED, PatientState, fold
from ._store import NewEvent, RegisteredVersion, Store, Transaction
from ._workflow import Written

__all__ = ["AmendmentReport", "PatientImpact", "amend", "migrate", "patient_impact", "rescreen", "resolve_version"]


@dataclass(frozen=True, slots=True)
class PatientImpact:
    """What the new version would change for one patient."""

    patient: str
    runs_on: str
    phase: str
    would_migrate: bool
    policy: str
    visits_added: tuple[str, ...] = ()
    visits_removed: tuple[str, ...] = ()
    visits_moved: tuple[str, ...] = ()
    newly_missed: tuple[str, ...] = ()
    no_longer_required: tuple[str, ...] = ()
    decision_changed: str | None = None
    eligibility: tuple[str, ...] = ()
    blocking: tuple[str, ...] = ()

    @property
    def affected(self) -> bool:
        return self.schedule_affected or bool(self.decision_changed or self.eligibility)

    @property
    def schedule_affected(self) -> bool:
        """Affected in its schedule (visits, phases): what the amendment does without reading clinical values."""
        return any((self.visits_added, self.visits_removed, self.visits_moved, self.newly_missed,
                    self.no_longer_required, self.blocking))


@dataclass(frozen=True, slots=True)
class AmendmentReport:
    """``protocol amend``: the change log, the impact per patient, and whether it was registered."""

    study: str
    from_version: str
    to_version: str
    content_hash: str
    reason: str
    applied: bool
    changes: tuple[Change, ...]
    patients: tuple[PatientImpact, ...]
    registered: RegisteredVersion | None = None
    notes: tuple[str, ...] = field(default=())
    #: the enrolled patients the impact was replayed for, and how many of them it affects: ``patients`` lists
    #: them one by one only to a reader of patient data (an admin sees these counts, not the patients)
    replayed: int = 0
    affected: int = 0


def _phases_from(protocol: Protocol, start: str) -> set[str]:
    """``start`` and every phase reachable from it (the part of the study at or after it)."""
    graph: dict[str, set[str]] = {p.id: set() for p in protocol.phases}
    for t in protocol.transitions:
        graph[t.source].add(t.dest)
    for b in protocol.decision.branches:
        graph[protocol.decision.phase].add(b.to)
    seen, todo = {start}, [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def migration_policy(new: Protocol, state: PatientState) -> tuple[bool, str]:
    """(moves under --all, why) according to the new version's declared policy."""
    s = new.study
    if any(p.id == state.phase and p.terminal for p in new.phases):  # nothing of the study is still to come
        return False, "policy: patients who have left the study stay"
    if s.migration_default == "move":
        return True, "policy: all patients move"
    if s.migration_stay_from_phase:
        later = _phases_from(new, s.migration_stay_from_phase)
        if state.phase in later:
            return False, f"policy: patients in {s.migration_stay_from_phase} or later stay"
        return True, f"policy: patients before {s.migration_stay_from_phase} move"
    return False, "policy: patients stay unless migrated by name"


def _key(visits: list[ScheduledVisit]) -> dict[str, ScheduledVisit]:
    return {v.visit: v for v in visits}


def patient_impact(old: Protocol, new: Protocol, state: PatientState, as_of: dt.date) -> PatientImpact:
    """Replay one patient's events under ``new`` and compare with ``old`` (the version it runs on)."""
    moves, policy = migration_policy(new, state)
    if moves and _screening(new, state) and screening_answers(new, state)[1]:  # as migrate --all leaves it
        moves, policy = False, "a screening patient without the answers the version asks stays"
    new_ids = {p.id for p in new.phases}
    missing = [s.phase for s in state.stints if s.phase not in new_ids]
    blocking = tuple(f"phase {p!r} does not exist in v{new.version}" for p in dict.fromkeys(missing))
    cut = state.until(as_of)
    if blocking:
        return PatientImpact(state.patient, old.version, state.phase, False, policy, blocking=blocking)
    a, b = _key(schedule(old, cut, as_of)), _key(schedule(new, cut, as_of))
    pending = ("upcoming", "due", "overdue")
    added = tuple(f"{v.visit} on {v.target_date} ({v.status})" for k, v in b.items()
                  if k not in a and v.status in pending)
    removed = tuple(f"{v.visit} on {v.target_date} (was {v.status})" for k, v in a.items()
                    if k not in b and v.status in pending)
    moved, missed, dropped = [], [], []
    for k in a.keys() & b.keys():
        va, vb = a[k], b[k]
        if vb.status == "missed" and va.status != "missed":
            missed.append(f"{k} (window now {vb.window_start} – {vb.window_end})")
        elif vb.status == "not_required" and va.status != "not_required":
            dropped.append(k)
        elif vb.status in pending and (va.target_date, va.window_start, va.window_end) != \
                (vb.target_date, vb.window_start, vb.window_end):
            moved.append(f"{k}: {va.target_date} [{va.window_start} – {va.window_end}] → {vb.target_date} "
                         f"[{vb.window_start} – {vb.window_end}]")
        elif va.status == "done" and vb.status != "done":
            missed.append(f"{k} (the recorded visit falls outside the new window {vb.window_start} – "
                          f"{vb.window_end})")
    changed = None
    if cut.decisions:
        dec_event = cut.decisions[-1]
        when = dec_event.effective_date
        before = fold([e for e in state.events if e.seq < dec_event.seq]).until(when)
        preview = evaluate_decision(new, before, when)
        # compare recommendations: an override recorded then is the investigator's, not the protocol's
        old_to, old_out = dec_event.payload["recommended_phase"], dec_event.payload["outcomes"]
        if preview.recommended_phase != old_to or preview.outcomes != old_out:
            diffs = ", ".join(f"{c} {old_out.get(c)} → {o}" for c, o in preview.outcomes.items() if old_out.get(c) != o)
            if preview.recommended_phase == old_to:  # the same arm, reached through other criterion outcomes
                changed = (f"decision of {when} would still recommend {old_to}, with other criterion outcomes "
                           f"({diffs}); the recorded decision stands")
            else:
                changed = (f"decision of {when} would recommend {preview.recommended_phase or 'waiting'} instead of "
                           f"{old_to}" + (f" ({diffs})" if diffs else "") + "; the recorded decision stands")
            if dec_event.payload.get("override"):
                changed += f" (an override took {dec_event.payload['to']})"
    elig: tuple[str, ...] = ()
    if state.eligible:  # a screen failure has already failed; only enrolled patients can newly fail
        _, problems, unmet = eligibility_answers(new, state.eligibility)
        elig = tuple([*(f"{p} (re-screen under v{new.version})" for p in problems),
                      *(f"would now fail {u}" for u in unmet)])
    return PatientImpact(state.patient, old.version, state.phase, moves, policy, added, removed, tuple(moved),
                         tuple(missed), tuple(dropped), changed, elig, blocking)


def resolve_version(store: Store, label: str) -> RegisteredVersion:
    """A registered version by its version string, or by a prefix (≥ 6) of its content hash."""
    versions = store.versions()
    exact = [v for v in versions if v.version == label]
    if exact:
        return exact[-1]
    if len(label) >= 6:
        by_hash = [v for v in versions if v.content_hash.startswith(label)]
        if len(by_hash) == 1:
            return by_hash[0]
    known = ", ".join(f"{v.version} ({v.content_hash[:12]})" for v in versions)
    short = (" (a hash prefix needs at least 6 characters)"
             if 0 < len(label) < 6 and any(v.content_hash.startswith(label.lower()) for v in versions) else "")
    raise Refused(f"no protocol version {label!r} in this store{short} (registered: {known})")


def _numbered(version: str) -> tuple[int, ...] | None:
    """A dotted version's numbers ("1.10" → (1, 10)), or None for one that is not only numbers."""
    parts = version.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


def amend(store: Store, path: str | Path, reason: str, user: str | Actor | Login, *, apply: bool = False,
          as_of: dt.date | None = None) -> AmendmentReport:
    """Validate a new version, report its impact per patient, and register it with ``apply``."""
    if not reason.strip():
        raise Refused("an amendment needs a reason (--reason)")
    actor = identify(store, user)
    # registering is the admin's; the dry run is a preview, for the admin and for every reader of patient data
    # (an investigator weighing an amendment, the data manager)
    reads = may(actor, "read")
    if apply or not reads:
        authorize(actor, "register_protocol")
    new = load_protocol(path)
    current, current_v = store.protocol()
    if new.study.id != current.study.id:
        raise Refused(f"{path} is study {new.study.id!r}; this store runs {current.study.id!r}")
    versions = store.versions()
    same = [v for v in versions if v.content_hash == new.content_hash]
    if same:
        raise Refused(f"{path} is identical to registered version {same[0].version} ({same[0].content_hash[:12]})")
    clash = [v for v in versions if v.version == new.version]
    if clash:
        raise Refused(f"version {new.version!r} is already registered with other content: give the amendment a new "
                      "study.version")
    as_of = as_of or today()
    impacts = []
    # the patients this actor may see (a site's staff: their sites'); each one's impact holds clinical facts
    # (a decision's criteria, eligibility answers), so a role without patient data gets the counts alone
    sites = store.sites_of() if actor.role in SITE_ROLES else None
    for pid, evs in store.events_of().items():
        if sites is not None and sites.get(pid) not in actor.sites:
            continue
        state = fold(evs)
        old = store.protocol(state.protocol_hash)[0]
        impacts.append(patient_impact(old, new, state, as_of))
    notes: list[str] = []
    ordered = [(n, v.version) for v in versions if (n := _numbered(v.version)) is not None]
    mine = _numbered(new.version)
    if mine is not None and ordered and mine < max(ordered)[0]:
        notes.append(f"version {new.version} numbers below the registered {max(ordered)[1]}: amendments are "
                     "usually numbered upwards (check study.version)")
    if not reads:
        notes.append(f"the impact per patient holds clinical data, which the {actor.role} role does not read: "
                     "a data manager, a monitor or an investigator sees it with the same command without --apply")
    registered = None
    if apply:
        text = Path(path).read_text(encoding="utf-8")
        registered = store.register_protocol(new, text, actor, reason)
    return AmendmentReport(
        study=new.study.id, from_version=current_v.version, to_version=new.version, content_hash=new.content_hash,
        reason=reason, applied=apply, changes=tuple(diff_protocols(current, new)),
        patients=tuple(sorted(impacts, key=lambda i: i.patient)) if reads else (), registered=registered,
        notes=(*notes, *(() if apply else ("dry run: nothing was registered; add --apply to register this version",))),
        # an admin's count leaves out what follows from clinical values (decisions, eligibility): dry runs of one
        # threshold after another would read each patient's outcome off it
        replayed=len(impacts), affected=sum(i.affected if reads else i.schedule_affected for i in impacts),
    )


def _screening(protocol: Protocol, state: PatientState) -> bool:
    """Still being screened: not started, in a screening phase (eligibility is the gate to treatment)."""
    return state.day0 is None and any(p.id == state.phase and p.kind == "screening" for p in protocol.phases)


def screening_answers(new: Protocol, state: PatientState,
                      given: Mapping[str, Any] | None = None) -> tuple[dict[str, str], list[str]]:
    """A screening patient's eligibility answers under ``new`` (those it has given for the criteria ``new`` asks,
    with ``given`` over them), and what stops it moving there or starting under it: a criterion ``new`` asks that
    it has not answered, an answer that is not yes/no (located at its criterion), a criterion it would not meet."""
    kept = {k: v for k, v in state.eligibility.items() if k in new.eligibility.ids}
    norm, problems, unmet = eligibility_answers(new, {**kept, **(given or {})})
    return norm, [*problems, *(f"it would not meet eligibility criterion {u!r} under v{new.version}" for u in unmet)]


def rescreen(store: Store, patient: str, answers: Mapping[str, Any], user: str | Actor | Login,
             version: str | None = None, when: dt.date | None = None) -> Written:
    """Answer eligibility criteria for a patient still in screening, under its own version or ``version`` (one
    it is to move to, which asks what its enrolment did not): each answer yes/no to a criterion of that version,
    every criterion then answered, each met (a patient that does not qualify is a screen failure, not an answer).
    Recorded as an event of the patient (its site's coordinator or investigator: the answers are clinical data)."""
    if not answers:
        raise Refused("no eligibility answers given (criterion id: yes/no)")

    def work(tx: Transaction) -> Written:
        state = tx.state(patient)
        if state is None:
            raise Refused(f"unknown patient {patient!r}: enrol them first")
        on = store.protocol(state.protocol_hash)[0]
        under = store.protocol(resolve_version(store, version).content_hash)[0] if version else on
        if not _screening(under, state) or not _screening(on, state):
            raise Refused(f"{patient} is past screening ({state.phase}): eligibility is answered in screening only")
        norm, problems = screening_answers(under, state, answers)
        if problems:
            located_ = [located(f"{patient}: {p}", 0, f) if (f := getattr(p, "field", None)) else f"{patient}: {p}"
                        for p in problems]
            if any("would not meet" in p for p in problems):
                located_.append(f"{patient}: a patient who does not qualify is a screen failure: trialflow "
                                f"screen-fail {patient} --reason ...")
            raise Refused(*located_)
        given = {k: norm[k] for k in answers if k in norm}
        if all(state.eligibility.get(k) == v for k, v in given.items()):
            return Written(patient, (), state.phase, f"{patient}: every answer already recorded as given")
        ev = NewEvent(ELIGIBILITY_ANSWERED, when or today(),
                      {"answers": given, "version": under.version, "protocol_hash": under.content_hash})
        events = tx.append(patient, state, [ev], projection(on))
        return Written(patient, tuple(events), state.phase,
                       f"{patient}: eligibility answered under v{under.version} ({', '.join(sorted(given))})")

    return store.write(user, work)


def migrate(store: Store, patients: list[str] | None, to: str, reason: str, user: str | Actor | Login,
            as_of: dt.date | None = None) -> list[Written]:
    """Move patients onto version ``to`` (all patients the policy moves when ``patients`` is None).

    A patient still in screening moves only once it has an answer to every eligibility criterion the version
    asks, each met (:func:`rescreen` records the answers to criteria its enrolment was not asked)."""
    if not reason.strip():
        raise Refused("a migration needs a reason (--reason)")
    actor = identify(store, user)
    authorize(actor, "migrate")
    target = resolve_version(store, to)
    new = store.protocol(target.content_hash)[0]
    when = as_of or today()
    ids = list(dict.fromkeys(patients)) if patients is not None else store.patient_ids()  # a name given twice: once

    def work(tx: Transaction) -> list[Written]:
        out: list[Written] = []
        problems: list[str] = []
        plan: list[PatientState] = []
        for pid in ids:
            state = tx.state(pid)
            if state is None:
                problems.append(f"unknown patient {pid!r}")
                continue
            if state.protocol_hash == target.content_hash:
                out.append(Written(pid, (), state.phase, f"{pid}: already on v{new.version}"))
                continue
            moves, why = migration_policy(new, state)
            if patients is None and not moves:
                out.append(Written(pid, (), state.phase, f"{pid}: stays on its version ({why})"))
                continue
            missing = [s.phase for s in state.stints if s.phase not in {p.id for p in new.phases}]
            if missing:
                problems.append(f"{pid}: phase {missing[-1]!r} does not exist in v{new.version}")
                continue
            unfit = screening_answers(new, state)[1] if _screening(new, state) else []
            if unfit and patients is None:  # a policy's move waits for the patient's answers
                out.append(Written(pid, (), state.phase, f"{pid}: stays on its version (in screening: "
                                   f"{'; '.join(unfit)}; its site answers with trialflow rescreen {pid} "
                                   f"--eligibility FILE --version {new.version})"))
                continue
            if unfit:
                problems += [f"{pid} is in screening and v{new.version} asks: {u}" for u in unfit]
                problems.append(f"{pid}: its site answers first (trialflow rescreen {pid} --eligibility FILE "
                                f"--version {new.version}), or it stays on its version")
                continue
            plan.append(state)
        if problems:
            raise Refused(*problems)
        for state in plan:
            pid = state.patient
            old = store.protocol(state.protocol_hash)[0]
            ev = NewEvent(MIGRATED, when, {"from_hash": state.protocol_hash, "to_hash": target.content_hash,
                                           "from_version": old.version, "to_version": new.version}, reason)
            events = tx.append(pid, state, [ev], projection(new, target.id))
            out.append(Written(pid, tuple(events), state.phase, f"{pid}: v{old.version} → v{new.version}"))
        return out

    return store.write(actor, work)
