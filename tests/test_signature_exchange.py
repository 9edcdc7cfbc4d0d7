"""A signed decision copied into another store (``export odm`` then ``import``) still verifies there; a tampered
one still fails; signatures written before (payload version 1, bound to the store's event ids) verify as before.

The source enrols P-A02 before P-A01 and the import restores P-A01 first, so every restored event gets another
id than it had: a signature bound to ids could not verify there, one bound to places in the history does.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from team_helpers import PASSWORDS, Team, at_decision, cheap_hashing, copy_sites, new_team_store  # noqa: F401  # fixture
from workflow_helpers import BACKENDS, DECISION_DAY, INVESTIGATOR, new_db_url

from trialflow.engine import (
    Event,
    Store,
    authenticate,
    correct,
    decide,
    history,
    init_store,
    verify_signatures,
    verify_store,
)
from trialflow.exchange import export_odm, import_odm

pytestmark = pytest.mark.slow
OLD = Path(__file__).parent / "reference" / "store_a25e4a6_signed" / "store_a25e4a6_signed.sql.gz"


def _signed_team(team: Team) -> None:
    """P-A02 then P-A01 at the decision; P-A01's week-4 Tg corrected first (a correction is evidence too)."""
    s = team.store
    at_decision(team, "P-A02", "anna", "AMS")
    at_decision(team, "P-A01", "anna", "AMS")
    tg = [e for e in s.events("P-A01") if e.kind == "observation" and e.payload["kind"] == "tg"][1]
    correct(s, "P-A01", tg.id, {"value": float(tg.payload["value"]) * 1.01}, "lab re-issued", team["anna"])
    for pid in ("P-A01", "P-A02"):
        decide(s, pid, DECISION_DAY, team["dr.smit"], signature=PASSWORDS["dr.smit"])


def _copy(source: Store, backend: str, tmp_path: Path, actor: Any = None) -> Iterator[Store]:
    """The source's patients restored by ``import odm`` into an empty store on ``backend`` that registered the
    source's protocol text (an ODM import needs the version its subjects were enrolled under, which need not be
    the text trialflow bundles today)."""
    out = tmp_path / "signed.xml"
    export_odm(source, out, actor=actor)
    with source.engine.connect() as c:
        texts = c.execute(text("SELECT yaml_text FROM protocol_version ORDER BY id")).scalars().all()
    assert len(texts) == 1, "the source stores hold one protocol version"
    protocol_file = tmp_path / "source-protocol.yaml"
    protocol_file.write_text(texts[0], encoding="utf-8")
    urls = new_db_url(backend, tmp_path / "target")
    (tmp_path / "target").mkdir()
    target = init_store(next(urls), protocol_file, INVESTIGATOR)[0]
    try:
        copy_sites(source, target)
        import_odm(target, out, "data.manager")
        yield target
    finally:
        target.close()
        for _ in urls:
            pass


@contextmanager
def _tampered(store: Store, event: Event, payload: dict[str, Any]) -> Iterator[None]:
    """An insider's direct SQL edit of one stored payload (its version kept), put back as it was afterwards."""
    with store.engine.begin() as c:
        raw = c.execute(text("SELECT payload FROM event WHERE id = :i"), {"i": event.id}).scalar_one()
        version = {"_v": json.loads(raw)["_v"]} if "_v" in json.loads(raw) else {}
        c.execute(text("UPDATE event SET payload = :p WHERE id = :i"), {"p": json.dumps({**payload, **version}),
                                                                        "i": event.id})
    try:
        yield
    finally:
        with store.engine.begin() as c:
            c.execute(text("UPDATE event SET payload = :p WHERE id = :i"), {"p": raw, "i": event.id})


def _kind(store: Store, pid: str, kind: str) -> Event:
    return next(e for e in store.events(pid) if e.kind == kind)


def _tamper_and_check(target: Store) -> None:
    """A changed decision, a changed piece of evidence and a signature moved to the other patient all fail."""
    decision = _kind(target, "P-A01", "decision")
    with _tampered(target, decision, {**decision.payload, "outcomes": {**decision.payload["outcomes"],
                                                                       "tg_slope": "progression"}}):
        problems = verify_signatures(target.events("P-A01"))
        assert any(f"decision event {decision.id} no longer matches what was signed" in p for p in problems), problems
    assert verify_signatures(target.events("P-A01")) == []

    ct = next(e for e in target.events("P-A01") if e.kind == "observation" and e.payload["kind"] == "ct")
    with _tampered(target, ct, {**ct.payload, "date": "2026-01-02"}):
        problems = verify_signatures(target.events("P-A01"))
        assert any(f"evidence event {ct.id} " in p and p.endswith("was altered after signing") for p in problems), \
            problems

    sig1, sig2 = _kind(target, "P-A01", "signature"), _kind(target, "P-A02", "signature")
    with _tampered(target, sig2, dict(sig1.payload)):  # P-A01's signature pasted over P-A02's
        problems = verify_signatures(target.events("P-A02"))
        assert problems and all(f"P-A02: signature event {sig2.id}: " in p for p in problems), problems
        assert any("no longer matches" in p or "is not in this patient's events" in p for p in problems), problems
    assert verify_signatures(target.events("P-A02")) == []


@pytest.fixture
def signed(tmp_path: Path, cheap_hashing: list[float]) -> Iterator[Team]:  # noqa: F811
    team = new_team_store(str(tmp_path / "team.db"), cheap_hashing)
    _signed_team(team)
    yield team
    team.store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_signed_decision_imported_into_another_store_verifies_there(signed: Team, backend: str,
                                                                      tmp_path: Path) -> None:
    source, dina = signed.store, signed["dina"]
    assert verify_store(source, dina).ok
    sig = _kind(source, "P-A01", "signature")
    assert sig.payload["binds"] == "seq" and "imported_ids" not in sig.payload
    for target in _copy(source, backend, tmp_path, dina):
        for pid in ("P-A01", "P-A02"):
            ours, theirs = source.events(pid), target.events(pid)
            assert [e.id for e in ours] != [e.id for e in theirs], pid  # the ids differ ...
            assert verify_signatures(theirs) == [], pid  # ... and the signatures still verify
            assert _kind(target, pid, "signature").payload == _kind(source, pid, "signature").payload
            entry = next(h for h in history(target, pid) if h.kind == "signature")
            assert entry.signature is not None and entry.signature.valid, pid
        assert verify_store(target, None).problems == ()
        # an honest correction of the evidence in the copy invalidates its signature there, as in the source
        ct = next(e for e in target.events("P-A02") if e.kind == "observation" and e.payload["kind"] == "ct")
        fix = correct(target, "P-A02", ct.id, {"slice_thickness_mm": 3}, "re-read", "anna")
        entry = next(h for h in history(target, "P-A02") if h.kind == "signature")
        assert entry.signature is not None and not entry.signature.valid
        assert f"event {fix.events[0].id} corrected evidence event {ct.id}" in entry.signature.invalidated_by
        assert verify_signatures(target.events("P-A02")) == []
        _tamper_and_check(target)


def _old_store(tmp_path: Path) -> Store:
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript(gzip.decompress(OLD.read_bytes()).decode())
    con.close()
    return init_store(str(db), None, "admin")[0]  # written at revision 0003: `trialflow init` upgrades it once


def test_signatures_written_before_bind_event_ids_and_verify_as_before(tmp_path: Path,
                                                                        cheap_hashing: list[float]) -> None:  # noqa: F811
    store = _old_store(tmp_path)
    try:
        with store.engine.connect() as c:
            raw = [json.loads(p) for (p,) in c.execute(text("SELECT payload FROM event WHERE kind = 'signature'"))]
        assert len(raw) == 2 and all(p.get("_v", 1) == 1 and "binds" not in p for p in raw)  # as written by a25e4a6
        sig = _kind(store, "P-A01", "signature")
        assert sig.payload["binds"] == "event_id"  # the upcaster names what version 1 binds
        ids = {e.id for e in store.events("P-A01")}
        assert {int(i) for i, _ in sig.payload["records"]} <= ids
        reader = authenticate(store, "dina", PASSWORDS["dina"])
        assert verify_store(store, reader).ok
        for pid in ("P-A01", "P-A02"):
            entry = next(h for h in history(store, pid, actor=reader) if h.kind == "signature")
            assert entry.signature is not None and entry.signature.valid
        tg = next(e for e in store.events("P-A01") if e.kind == "observation" and e.payload["kind"] == "tg")
        with _tampered(store, tg, {**tg.payload, "value": 12.0}):
            problems = verify_store(store, reader).problems
            assert any(f"evidence event {tg.id} was altered after signing" in p for p in problems), problems
        decision = _kind(store, "P-A02", "decision")
        with _tampered(store, decision, {**decision.payload, "to": "rai_plus_sorafenib"}):
            problems = verify_store(store, reader).problems
            assert any(f"decision event {decision.id} no longer matches" in p for p in problems), problems
        assert verify_store(store, reader).ok
    finally:
        store.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_version_1_signature_imported_into_another_store_verifies_through_its_imported_ids(
        backend: str, tmp_path: Path, cheap_hashing: list[float]) -> None:  # noqa: F811
    source = _old_store(tmp_path)
    try:
        dina = authenticate(source, "dina", PASSWORDS["dina"])
        for target in _copy(source, backend, tmp_path, dina):
            for pid in ("P-A01", "P-A02"):
                theirs = target.events(pid)
                assert [e.id for e in source.events(pid)] != [e.id for e in theirs], pid
                sig = _kind(target, pid, "signature")
                assert sig.payload["binds"] == "event_id" and sig.payload["imported_ids"], pid
                assert verify_signatures(theirs) == [], pid
                entry = next(h for h in history(target, pid) if h.kind == "signature")
                assert entry.signature is not None and entry.signature.valid, pid
            # exported again and imported into the copy: nothing new, the note kept as it is
            again = tmp_path / "again.xml"
            export_odm(target, again)
            assert import_odm(target, again, "data.manager").events == 0
            _tamper_and_check(target)
    finally:
        source.close()
