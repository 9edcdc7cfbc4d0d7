"""CDISC ODM 1.3.2 out and in: schema validity, the round trip through an empty store, REDCap-style data."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from team_helpers import cheap_hashing  # noqa: F401  # fixture
from typer.testing import CliRunner
from workflow_helpers import BACKENDS, ELIGIBLE, ENROLLED, INVESTIGATOR, USER, enrol_started, new_db_url, new_store

from trialflow.cli import app
from trialflow.engine import (
    Refused,
    Store,
    correct,
    evaluate,
    history,
    next_actions,
    record,
    report,
)
from trialflow.engine._demo import build_demo
from trialflow.exchange import OdmSchemaError, export_odm, import_odm, validate_odm_file
from trialflow.protocol import DocumentError

REDCAP = Path(__file__).parent / "reference" / "redcap_odm_export.xml"
pytestmark = pytest.mark.slow


def _comparable_history(store: Store, patient: str) -> list[dict[str, Any]]:
    """The audit trail with the store's own event ids replaced by each event's place in the history."""
    entries = history(store, patient)
    seq = {e.event: e.seq for e in entries}
    out = []
    for e in entries:
        payload = _ids_as_seq(store, patient, dict(e.payload))  # a decision's evidence names records by id
        if "root" in payload:
            payload["root"] = seq[payload["root"]]
        out.append({"seq": e.seq, "kind": e.kind, "date": e.effective_date, "recorded_at": e.recorded_at,
                    "user": e.user, "reason": e.reason, "payload": payload,
                    "summary": re.sub(r"event (\d+)", lambda m: f"event #{seq[int(m.group(1))]}", e.summary),
                    "corrects": seq.get(e.corrects) if e.corrects else None,
                    "corrected_by": seq.get(e.corrected_by) if e.corrected_by else None})
    return out


def _ids_as_seq(store: Store, patient: str, answer: Any) -> Any:
    """A library answer as JSON data with every event id replaced by that event's place in the history
    (ids are the store's own numbering; the seq is what a restored history keeps)."""
    from trialflow.cli._output import jsonable

    seq = {e.event: e.seq for e in history(store, patient)}

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if key in ("event_id", "event", "event_ids") and isinstance(value, int):
            return f"seq {seq.get(value, value)}"
        return value

    return walk(jsonable(answer))


def _with_corrections(store: Store) -> None:
    """The demo has no corrections: add one correction chain and one retraction, as a coordinator would."""
    tg = next(e for e in history(store, "DEMO-020") if e.kind == "observation" and e.payload["kind"] == "tg")
    first = correct(store, "DEMO-020", tg.event, {"value": tg.payload["value"] * 1.1},
                    "lab re-issued the result", USER)
    correct(store, "DEMO-020", first.events[0].id, {"value": tg.payload["value"] * 1.2}, "second re-issue", USER)
    tgab = next(e for e in history(store, "DEMO-021") if e.kind == "observation" and e.payload["kind"] == "tgab")
    correct(store, "DEMO-021", tgab.event, None, "sample mislabelled", USER)


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_through_an_empty_store_agrees_on_every_patient(backend: str, tmp_path: Path) -> None:
    """Export ODM from the demo store (SQLite, as `trialflow demo` writes it), import it into an empty store on
    ``backend``: every patient's history, worklist and evaluation, and the report, agree with the original."""
    target_urls = new_db_url(backend, tmp_path)
    try:
        source = build_demo(str(tmp_path / "demo.db"))
        _with_corrections(source)
        out = tmp_path / "demo-odm.xml"
        exported = export_odm(source, out)
        assert exported.patients == 30 and exported.events == sum(len(v) for v in source.events_of().values())
        validate_odm_file(out)

        target = new_store(next(target_urls))
        result = import_odm(target, out, "data.manager")
        assert result.events == exported.events and len(result.restored) == 30

        for patient in source.patient_ids():
            assert _comparable_history(target, patient) == _comparable_history(source, patient), patient
            assert _ids_as_seq(target, patient, evaluate(target, patient)) == \
                _ids_as_seq(source, patient, evaluate(source, patient)), patient
            assert next_actions(target, patient) == next_actions(source, patient), patient
        assert next_actions(target) == next_actions(source)
        assert report(target) == report(source)

        again = import_odm(target, out, "data.manager")  # idempotent: the same file adds nothing
        assert again.events == 0 and again.restored == ()
        second = tmp_path / "second.xml"  # and the restored store exports the same history again
        export_odm(target, second)
        assert import_odm(target, second, "data.manager").events == 0
        source.close()
        target.close()
    finally:
        for _ in target_urls:  # runs the generator's clean-up (drops the PostgreSQL schema)
            pass


@pytest.fixture(scope="module")
def demo_odm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("odm")
    store = build_demo(str(folder / "demo.db"))
    out = folder / "demo.xml"
    export_odm(store, out)
    store.close()
    return out


def test_export_validates_with_odmlibs_schema_validator(demo_odm: Path) -> None:
    from odmlib.odm_parser import ODMSchemaValidator

    from trialflow.exchange._odm_schema import extension_schema_path

    validator = ODMSchemaValidator(xsd_file=extension_schema_path())
    validator.validate_file(str(demo_odm))  # raises OdmlibSchemaValidationError on a violation
    assert validator.validate_tree(str(demo_odm)) is True
    text = demo_odm.read_text(encoding="utf-8")
    # the parts the issue names are there
    for needle in ('ODMVersion="1.3.2"', "<BasicDefinitions>", 'MeasurementUnit OID="MU.UG_L"', "<AdminData",
                   'SignatureDef OID="SD.DECISION"', 'StudyEventDef OID="SE.tg_w4"', 'tf:StudyDay="28"',
                   'tf:WindowBefore="3"', 'Type="Common"', 'CodeList OID="CL.OUTCOME_RECIST"',
                   'ItemOID="tg_value"', "<AuditRecord>", "<Signature ID=", 'TransactionType="Insert"'):
        assert needle in text, needle


def test_the_validator_refuses_a_document_that_breaks_the_schema(demo_odm: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    text = demo_odm.read_text(encoding="utf-8")
    broken.write_text(text.replace('Repeating="No" Type="Scheduled"', 'Repeating="Sometimes" Type="Scheduled"', 1),
                      encoding="utf-8")
    with pytest.raises(OdmSchemaError) as err:
        validate_odm_file(broken)
    assert any("Repeating" in p or "Sometimes" in p for p in err.value.problems)
    bad_ext = tmp_path / "bad-ext.xml"
    bad_ext.write_text(text.replace('tf:StudyDay="28"', 'tf:StudyDay="four weeks"', 1), encoding="utf-8")
    with pytest.raises(OdmSchemaError):
        validate_odm_file(bad_ext)


def test_metadata_only_export_has_no_clinical_data(tmp_path: Path) -> None:
    store = new_store(str(tmp_path / "s.db"))
    result = export_odm(store, tmp_path / "meta.xml", metadata_only=True)
    text = (tmp_path / "meta.xml").read_text(encoding="utf-8")
    assert result.patients == 0 and "<ClinicalData" not in text and 'Granularity="Metadata"' in text
    validate_odm_file(tmp_path / "meta.xml")


# -- a REDCap project's export ---------------------------------------------------------------------
@pytest.fixture(params=BACKENDS)
def site_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    urls = new_db_url(request.param, tmp_path)
    store = new_store(next(urls))
    enrol_started(store, "P-101")
    yield store
    store.close()
    for _ in urls:
        pass


def test_redcap_export_maps_onto_trialflows_record_kinds(site_store: Store) -> None:
    result = import_odm(site_store, REDCAP, "data.manager")
    assert result.restored == ()
    kinds = [(e.payload["kind"], e.effective_date.isoformat()) for e in history(site_store, "P-101")
             if e.kind == "observation"]
    assert ("tg", "2026-01-12") in kinds and ("tgab", "2026-02-09") in kinds
    assert kinds.count(("adverse_event", "2026-02-20")) == 1 and ("adverse_event", "2026-03-02") in kinds
    tg = {e.effective_date.isoformat(): e.payload for e in history(site_store, "P-101")
          if e.kind == "observation" and e.payload["kind"] == "tg"}
    assert tg["2026-01-12"] == {"kind": "tg", "date": "2026-01-12", "value": 120.0, "unit": "ug/L", "loq": 0.2}
    assert tg["2026-03-09"] == {"kind": "tg", "date": "2026-03-09", "value": None, "unit": "ug/L", "loq": 0.2,
                                "below_loq": True} or tg["2026-03-09"]["below_loq"] is True
    assert "P-101: tg_complete" in result.skipped and "P-101: record_id" in result.skipped
    assert all(e.user == "data.manager" for e in history(site_store, "P-101")[-7:])
    again = import_odm(site_store, REDCAP, "data.manager")
    assert again.events == 0


def test_unknown_item_oids_are_reported_with_their_location_and_nothing_is_written(site_store: Store,
                                                                                   tmp_path: Path) -> None:
    text = REDCAP.read_text(encoding="utf-8")
    text = text.replace('<ItemData ItemOID="tgab_result" Value="negative"/>',
                        '<ItemData ItemOID="tgab_titre" Value="12"/>', 1)
    text = text.replace('<ItemData ItemOID="ae_grade" Value="2"/>', '<ItemData ItemOID="ae_grade" Value="two"/>')
    bad = tmp_path / "bad.xml"
    bad.write_text(text, encoding="utf-8")
    before = len(history(site_store, "P-101"))
    with pytest.raises(DocumentError) as err:
        import_odm(site_store, bad, "data.manager")
    problems = [str(p) for p in err.value.problems]
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if "tgab_titre" in row)
    assert any(p.startswith(f"{bad}:{line}:") and "unknown ItemOID 'tgab_titre'" in p
               and "SubjectData[P-101]/StudyEventData[Event.tg_w0_arm_1]/FormData[Form.tgab:1]" in p
               for p in problems), problems
    assert any("ae_grade" in p and "expected a whole number" in p for p in problems), problems
    assert len(history(site_store, "P-101")) == before


def test_a_record_the_form_cannot_hold_is_refused_at_its_place_in_the_file(site_store: Store,
                                                                          tmp_path: Path) -> None:
    text = REDCAP.read_text(encoding="utf-8").replace('<ItemData ItemOID="tg_date" Value="2026-02-09"/>',
                                                      '<ItemData ItemOID="tg_date" Value="2026-02-30"/>', 1)
    bad = tmp_path / "bad-date.xml"
    bad.write_text(text, encoding="utf-8")
    before = len(history(site_store, "P-101"))
    with pytest.raises(Refused) as err:
        import_odm(site_store, bad, "data.manager")
    lines = text.splitlines()
    date_line = next(n for n, row in enumerate(lines, start=1) if "2026-02-30" in row)
    form_line = max(n for n, row in enumerate(lines[:date_line], start=1) if "<FormData" in row)
    [problem] = err.value.problems
    assert problem.startswith(f"{bad}:{form_line}:") and "FormData[Form.tg:" in problem, problem
    assert "date must be an ISO date (YYYY-MM-DD), got '2026-02-30'" in problem
    assert len(history(site_store, "P-101")) == before


def test_records_for_an_unknown_subject_are_refused(tmp_path: Path) -> None:
    store = new_store(str(tmp_path / "s.db"))
    with pytest.raises(Refused, match="unknown patient 'P-101'"):
        import_odm(store, REDCAP, "data.manager")
    assert store.patient_ids() == []


def test_a_file_that_is_not_odm_is_refused_with_its_position(tmp_path: Path) -> None:
    store = new_store(str(tmp_path / "s.db"))
    f = tmp_path / "x.xml"
    f.write_text("<?xml version='1.0'?>\n<ODM xmlns='http://www.cdisc.org/ns/odm/v1.3'>\n<ClinicalData>\n</ODM>\n")
    with pytest.raises(DocumentError, match=r"x.xml:4:\d+: .*not well-formed"):
        import_odm(store, f, USER)
    f.write_text('<?xml version="1.0"?>\n<!DOCTYPE ODM [<!ENTITY a "aaaa">]>\n<ODM/>\n')
    with pytest.raises(DocumentError, match="DOCTYPE is not accepted"):
        import_odm(store, f, USER)


# -- the CLI --------------------------------------------------------------------------------------
def test_cli_export_and_import_odm(tmp_path: Path) -> None:
    runner = CliRunner()
    src, dst, out = str(tmp_path / "src.db"), str(tmp_path / "dst.db"), tmp_path / "export.xml"
    store = new_store(src)
    enrol_started(store, "P-201")
    record(store, "P-201", {"kind": "adverse_event", "date": "2026-01-20", "term": "Fatigue", "grade": 2}, USER)
    r = runner.invoke(app, ["export", "odm", "--out", str(out), "--db", src])
    assert r.exit_code == 0, r.output
    assert re.search(r"1 subject\(s\), \d+ event\(s\)", r.output)
    r = runner.invoke(app, ["export", "odm", "--metadata-only", "--db", src])
    assert r.exit_code == 0 and r.output.startswith("<?xml") and "<ClinicalData" not in r.output
    assert runner.invoke(app, ["init", "--db", dst]).exit_code == 0
    r = runner.invoke(app, ["import", "odm", str(out), "--db", dst, "--user", INVESTIGATOR])
    assert r.exit_code == 0, r.output
    assert "P-201: 6 event(s) restored; phase sorafenib_6m" in r.output
    r = runner.invoke(app, ["import", str(out), "--db", dst])  # a .xml file is ODM without saying so
    assert r.exit_code == 0 and "P-201: already up to date" in r.output
    r = runner.invoke(app, ["import", "odm", "--db", dst])
    assert r.exit_code == 2
    r = runner.invoke(app, ["import", "odm", str(tmp_path / "none.xml"), "--db", dst])
    assert r.exit_code == 1 and "no such file" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["export", "odm", "--out", str(tmp_path / "missing" / "x.xml"), "--db", src])
    assert r.exit_code == 1 and "cannot write" in r.output and "Traceback" not in r.output
    (tmp_path / "a-file").write_text("x")
    for command in ("fhir", "sdtm-design"):
        r = runner.invoke(app, ["export", command, "--out", str(tmp_path / "a-file"), "--db", src])
        assert r.exit_code == 1 and "is a file" in r.output, command


def test_cli_without_the_exchange_extra_says_how_to_install_it(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "odmlib", None)  # an import of odmlib now fails as if not installed
    new_store(str(tmp_path / "s.db"))
    r = CliRunner().invoke(app, ["export", "odm", "--db", str(tmp_path / "s.db")])
    assert r.exit_code == 1
    assert "pip install 'trialflow[exchange]'" in r.output and "Traceback" not in r.output


def test_cli_start_up_does_not_import_the_exchange_libraries() -> None:
    code = ("import sys, trialflow.cli; from trialflow.cli import app; "
            "bad = [m for m in ('odmlib', 'fhir.resources', 'xmlschema', 'trialflow.exchange') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    exe = shutil.which("trialflow")
    if exe:
        assert subprocess.run([exe, "--help"], capture_output=True, timeout=120).returncode == 0


def test_export_odm_puts_a_record_outside_every_window_in_the_unscheduled_event(tmp_path: Path) -> None:
    store = new_store(str(tmp_path / "s.db"))
    enrol_started(store, "P-301")
    day = dt.date(2026, 1, 20)  # day 8: between the week-0 and week-4 windows
    record(store, "P-301", {"kind": "adverse_event", "date": day.isoformat(), "term": "Rash", "grade": 1}, USER)
    result = export_odm(store)
    assert result.xml is not None
    unscheduled = result.xml[result.xml.index('StudyEventOID="SE.UNSCHEDULED"'):]
    assert 'ItemOID="ae_term" Value="Rash"' in unscheduled


def test_exports_in_a_store_with_users_hold_only_what_the_actor_may_read(tmp_path: Path,
                                                                         cheap_hashing: list[float]) -> None:  # noqa: F811
    """The engine's read permission applies to exports: no one → refused; a site's coordinator → their site."""
    from team_helpers import at_decision, new_team_store

    from trialflow.exchange import export_fhir

    team = new_team_store(str(tmp_path / "team.db"), cheap_hashing)
    at_decision(team, "P-A01", "anna", "AMS")
    at_decision(team, "P-L01", "bram", "LEI")
    with pytest.raises(Refused, match="this store has users"):
        export_odm(team.store)
    assert export_odm(team.store, metadata_only=True).patients == 0  # the metadata is no patient data
    mine = export_odm(team.store, actor=team["anna"])
    assert mine.xml is not None and 'SubjectKey="P-A01"' in mine.xml and "P-L01" not in mine.xml
    everyone = export_odm(team.store, actor=team["dina"])  # the data manager reads every site
    assert everyone.patients == 2
    fhir = export_fhir(team.store, tmp_path / "fhir", actor=team["anna"])
    assert fhir.counts["ResearchSubject"] == 1
    team.store.close()


def test_export_of_a_two_site_team_lists_sites_and_users_and_the_signer(tmp_path: Path,
                                                                      cheap_hashing: list[float]) -> None:  # noqa: F811
    """AdminData names every user and site; the decision's Signature is the investigator who signed it."""
    import xml.etree.ElementTree as ET

    from team_helpers import at_decision, new_team_store
    from workflow_helpers import DECISION_DAY

    from trialflow.engine import decide

    team = new_team_store(str(tmp_path / "team.db"), cheap_hashing)
    at_decision(team, "P-A01", "anna", "AMS")
    at_decision(team, "P-L01", "bram", "LEI")
    decide(team.store, "P-A01", DECISION_DAY, team["dr.smit"], signature="smit-pass-0001")
    signed = next(e for e in history(team.store, "P-A01", actor=team["dina"]) if e.kind == "signature")
    assert signed.payload["signer"] == "dr.smit"
    out = tmp_path / "team.xml"
    result = export_odm(team.store, out, actor=team["dina"])
    team.store.close()
    validate_odm_file(out)  # the XSD again, on the file as written
    ns = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}
    root = ET.parse(out).getroot()
    admin = root.find("odm:AdminData", ns)
    assert admin is not None
    locations = {loc.get("OID"): loc.get("Name") for loc in admin.findall("odm:Location", ns)}
    assert locations == {"LOC.AMS": "Amsterdam UMC", "LOC.LEI": "Leiden University Medical Center"}
    users = {u.get("OID"): u for u in admin.findall("odm:User", ns)}
    assert set(users) == {f"USR.{n}" for n in ("admin.jo", "anna", "dr.smit", "bram", "dr.visser", "dina", "mona")}
    assert result.users == 7
    smit = users["USR.dr.smit"]
    assert smit.findtext("odm:LoginName", namespaces=ns) == "dr.smit"
    assert smit.findtext("odm:FullName", namespaces=ns) == "Dr. Jan Smit"
    assert [r.get("LocationOID") for r in smit.findall("odm:LocationRef", ns)] == ["LOC.AMS"]
    assert smit.get("UserType") == "Investigator"
    assert [r.get("LocationOID") for r in users["USR.bram"].findall("odm:LocationRef", ns)] == ["LOC.LEI"]
    sig_def = admin.find("odm:SignatureDef", ns)
    assert sig_def is not None and sig_def.findtext("odm:Meaning", namespaces=ns)
    assert sig_def.findtext("odm:LegalReason", namespaces=ns)
    subjects = {s.get("SubjectKey"): s for s in root.iter("{http://www.cdisc.org/ns/odm/v1.3}SubjectData")}
    signatures = list(subjects["P-A01"].iter("{http://www.cdisc.org/ns/odm/v1.3}Signature"))
    assert len(signatures) == 1  # the signed decision; P-L01 has no decision yet
    sig = signatures[0]
    assert sig.find("odm:UserRef", ns).get("UserOID") == "USR.dr.smit"  # type: ignore[union-attr]
    assert sig.find("odm:LocationRef", ns).get("LocationOID") == "LOC.AMS"  # type: ignore[union-attr]
    assert sig.find("odm:SignatureRef", ns).get("SignatureOID") == sig_def.get("OID")  # type: ignore[union-attr]
    assert not list(subjects["P-L01"].iter("{http://www.cdisc.org/ns/odm/v1.3}Signature"))
    audit_locations = {a.find("odm:LocationRef", ns).get("LocationOID")  # type: ignore[union-attr]
                       for a in subjects["P-L01"].iter("{http://www.cdisc.org/ns/odm/v1.3}AuditRecord")}
    assert audit_locations == {"LOC.LEI"}
    # The Signature is the signature event's moment of signing (to the second), not the decision event's
    stamp = sig.findtext("odm:DateTimeStamp", namespaces=ns)
    assert stamp is not None
    assert dt.datetime.fromisoformat(stamp) == dt.datetime.fromisoformat(signed.payload["signed_at"])


# -- a file that extends a stored history ----------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_file_extending_a_stored_history_adds_only_records_checked_as_record_checks_them(
        backend: str, tmp_path: Path) -> None:
    """Beyond the stored history a file may add new records (checked as ``trialflow record`` checks them), not
    events the engine has its own guarded command for: a reversal of the start's phase change, which
    ``trialflow reverse`` refuses, is refused, and so is a deviation; nothing is written."""
    from trialflow.engine import deviation, reverse

    urls = new_db_url(backend, tmp_path)
    try:
        source = new_store(str(tmp_path / "source.db"))
        enrol_started(source, "P-201")
        first = tmp_path / "first.xml"
        export_odm(source, first)
        target = new_store(next(urls))
        assert import_odm(target, first, "data.manager").restored == ("P-201",)
        start_event = next(e for e in history(source, "P-201") if e.kind == "phase_changed"
                           and e.payload["trigger"] == "start_treatment")
        with pytest.raises(Refused, match="only a completion, a withdrawal or a screen failure"):
            reverse(source, "P-201", start_event.event, "typo", USER)  # what the engine's own command says

        deviation(source, "P-201", "tg_w4", "missed", "patient on holiday", dt.date(2026, 2, 20), USER)
        with_deviation = tmp_path / "deviation.xml"
        export_odm(source, with_deviation)
        text = with_deviation.read_text()
        assert 'Value="deviation"' in text
        target_start = next(e for e in history(target, "P-201") if e.kind == "phase_changed"
                            and e.payload["trigger"] == "start_treatment")
        payload = f'{{"reverses": [{start_event.event}]}}'
        reversal = tmp_path / "reversal.xml"
        reversal.write_text(re.sub(r'ItemOID="event_payload" Value="[^"]*"',
                                   f'ItemOID="event_payload" Value="{payload.replace(chr(34), "&quot;")}"',
                                   text.replace('Value="deviation"', 'Value="reversal"')))
        before = [(e.event, e.kind) for e in history(target, "P-201")]
        for file, kind in ((with_deviation, "deviation"), (reversal, "reversal")):
            with pytest.raises(Refused, match=f"P-201's history is already in this store.*not a {kind} event"):
                import_odm(target, file, "data.manager")
            assert [(e.event, e.kind) for e in history(target, "P-201")] == before
        assert visits_phase(target) == "sorafenib_6m" and target_start.event in {e for e, _ in before}

        record(source, "P-201", {"kind": "adverse_event", "date": "2026-01-20", "term": "Fatigue", "grade": 2}, USER)
        records_only = tmp_path / "records.xml"  # the deviation taken out: a new record is what remains
        export_odm(source, records_only)
        kept = re.sub(r"<FormData FormOID=\"F\.EVENT\".*?</FormData>", "", records_only.read_text(), flags=re.S)
        records_only.write_text(kept)
        result = import_odm(target, records_only, "data.manager")
        assert result.events == 1 and result.restored == ()
        added = history(target, "P-201")[-1]
        assert (added.kind, added.payload["term"], added.user) == ("observation", "Fatigue", "data.manager")
        source.close()
        target.close()
    finally:
        for _ in urls:
            pass


def visits_phase(store: Store) -> str:
    from trialflow.engine import fold

    return fold(store.events("P-201")).phase


def test_a_restored_event_names_who_imported_it_beside_its_author(tmp_path: Path) -> None:
    """A restored event keeps its author as the file names them and records, in its context (the audit trail
    shows it), the user who wrote it into this store."""
    from trialflow.engine import audit_trail

    source = new_store(str(tmp_path / "source.db"))
    enrol_started(source, "P-201")
    out = tmp_path / "out.xml"
    export_odm(source, out)
    target = new_store(str(tmp_path / "target.db"))
    import_odm(target, out, "data.manager")
    entries = [e for e in audit_trail(target, None) if e.patient == "P-201"]
    assert entries and all(e.user == USER and e.context.get("imported_by") == "data.manager" for e in entries)
    source.close()
    target.close()


def test_the_history_line_of_a_reversal_restored_without_the_engines_fields_names_what_it_reverses() -> None:
    """A reversal from a file may lack corrects, from, to and trigger (an older export): its line names the
    events it reverses from its payload and prints no 'None'."""
    from trialflow.engine._queries import _summary
    from trialflow.engine._state import Event

    when = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    bare = Event(7, "P-1", 7, "reversal", dt.date(2026, 3, 1), when, USER, "typo", {"reverses": [5, 6]}, None)
    assert _summary(bare) == "reverses event 5, 6"
    full = Event(7, "P-1", 7, "reversal", dt.date(2026, 3, 1), when, USER, "typo",
                 {"reverses": [5, 6], "from": "off_study", "to": "sorafenib_6m", "trigger": "withdraw"}, 5)
    assert _summary(full) == "reverses event 5 (withdraw: back from off_study to sorafenib_6m)"


# -- files the store cannot take: another study, a protocol version it has not registered ----------------
def test_a_file_of_another_study_is_refused_naming_both_studies(tmp_path: Path) -> None:
    """A trialflow export of another study (its StudyOID ST.other-study) is refused, naming the file's StudyOID
    and the store's study; nothing is written. A REDCap file, which names its project its own way, is not."""
    source = new_store(str(tmp_path / "source.db"))
    enrol_started(source, "P-201")
    out = tmp_path / "out.xml"
    export_odm(source, out)
    source.close()
    other = tmp_path / "other.xml"
    other.write_text(out.read_text(encoding="utf-8").replace("sorafenib-dtc", "other-study"), encoding="utf-8")
    target = new_store(str(tmp_path / "target.db"))
    with pytest.raises(DocumentError) as err:
        import_odm(target, other, "data.manager")
    [problem] = [str(p) for p in err.value.problems]
    line = next(n for n, row in enumerate(other.read_text().splitlines(), start=1) if "<ClinicalData" in row)
    assert problem.startswith(f"{other}:{line}:"), problem
    assert "StudyOID 'ST.other-study'" in problem and "study sorafenib-dtc (StudyOID ST.sorafenib-dtc)" in problem
    assert target.patient_ids() == []
    result = CliRunner().invoke(app, ["import", "odm", str(other), "--db", str(tmp_path / "target.db")])
    assert result.exit_code == 1 and "ST.other-study" in result.output and "Traceback" not in result.output
    target.close()


def test_a_subject_migrated_to_a_version_the_store_lacks_is_refused_naming_it(tmp_path: Path) -> None:
    """A subject migrated to v1.1 in the exporting store: the target, which has only v1.0, says which version (and
    its hash) it lacks and how to register it, not that it has no protocol; nothing is written."""
    from trialflow.engine import amend, migrate
    from trialflow.protocol import bundled_protocol_path

    source = new_store(str(tmp_path / "source.db"))
    enrol_started(source, "P-201")
    enrol_started(source, "P-202")
    text = bundled_protocol_path().read_text(encoding="utf-8")
    amended = tmp_path / "v1.1.yaml"
    amended.write_text(text.replace('  version: "1.0"\n  design:', '  version: "1.1"\n  design:', 1)
                       .replace("{alpha: 0.05, test: two_sided", "{alpha: 0.10, test: two_sided", 1), encoding="utf-8")
    amend(source, amended, "alpha 0.10", USER, apply=True)
    migrate(source, ["P-202"], "1.1", "adopt amendment 1", USER)
    v11 = source.versions()[-1].content_hash
    out = tmp_path / "out.xml"
    export_odm(source, out)
    source.close()
    target = new_store(str(tmp_path / "target.db"))
    with pytest.raises(Refused) as err:
        import_odm(target, out, "data.manager")
    [problem] = err.value.problems
    assert "P-202 was migrated" in problem and f"v1.1 (sha256 {v11[:12]})" in problem, problem
    assert "trialflow protocol amend FILE --apply" in problem and "no protocol registered" not in problem
    assert "SubjectData[P-202]" in problem
    assert target.patient_ids() == []  # P-201, clean, is not written either: one transaction
    amend(target, amended, "alpha 0.10", USER, apply=True)
    assert set(import_odm(target, out, "data.manager").restored) == {"P-201", "P-202"}
    target.close()


# -- the subject's site ----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_subjects_site_travels_as_siteref_and_is_restored_with_the_enrolling_permission(
        backend: str, tmp_path: Path, cheap_hashing: list[float]) -> None:  # noqa: F811
    """The export names each subject's site as ODM 1.3.2's SiteRef (a Location of its AdminData); the import puts
    the restored subject at that site, as ``enroll --site`` would, with the engine's enrolling permission: the
    Amsterdam coordinator restores her patient into a team store, not Leiden's; a store without the site says to
    add it. Nothing is written by a refused import."""
    import xml.etree.ElementTree as ET

    from team_helpers import at_decision, new_team_store

    from trialflow.engine import PermissionDenied, add_site

    source = new_team_store(str(tmp_path / "source.db"), cheap_hashing)
    at_decision(source, "P-A01", "anna", "AMS")
    at_decision(source, "P-L01", "bram", "LEI")
    everyone, amsterdam = tmp_path / "all.xml", tmp_path / "ams.xml"
    export_odm(source.store, everyone, actor=source["dina"])
    export_odm(source.store, amsterdam, actor=source["anna"])
    source.store.close()
    validate_odm_file(everyone)
    ns = "{http://www.cdisc.org/ns/odm/v1.3}"
    root = ET.parse(everyone).getroot()
    refs = {s.get("SubjectKey"): s.find(f"{ns}SiteRef").get("LocationOID")  # type: ignore[union-attr]
            for s in root.iter(f"{ns}SubjectData")}
    assert refs == {"P-A01": "LOC.AMS", "P-L01": "LOC.LEI"}
    defined = {loc.get("OID") for loc in root.iter(f"{ns}Location")}
    assert set(refs.values()) <= defined

    urls = new_db_url(backend, tmp_path)
    try:
        team = new_team_store(next(urls), cheap_hashing)
        with pytest.raises(PermissionDenied, match=r"anna.*P-L01.*site LEI"):
            import_odm(team.store, everyone, team["anna"])
        assert team.store.patient_ids() == []
        result = import_odm(team.store, amsterdam, team["anna"])
        assert result.restored == ("P-A01",) and team.store.sites_of(["P-A01"]) == {"P-A01": "AMS"}
        assert import_odm(team.store, everyone, team["bram"]).restored == ("P-L01",)  # P-A01 up to date
        assert team.store.sites_of(["P-L01"]) == {"P-L01": "LEI"}
        team.store.close()
        # no SiteRef (another system's file): as enrol without --site, the only site of the store or of the user
        unsited = tmp_path / "unsited.xml"
        unsited.write_text(re.sub(r"<SiteRef [^>]*/>", "", amsterdam.read_text(encoding="utf-8")), encoding="utf-8")
        other = new_team_store(str(tmp_path / "other.db"), cheap_hashing)
        with pytest.raises(Refused, match=r"names no site for P-A01 and this store has 2 sites \(AMS, LEI\)"):
            import_odm(other.store, unsited, other["dina"])
        assert import_odm(other.store, unsited, other["anna"]).restored == ("P-A01",)
        assert other.store.sites_of(["P-A01"]) == {"P-A01": "AMS"}
        undefined = tmp_path / "undefined.xml"  # a SiteRef to a Location the AdminData does not define
        undefined.write_text(amsterdam.read_text(encoding="utf-8").replace('<SiteRef LocationOID="LOC.AMS"',
                                                                           '<SiteRef LocationOID="LOC.XYZ"'))
        with pytest.raises(DocumentError, match=r"SiteRef\[LOC.XYZ\].*does not define"):
            import_odm(other.store, undefined, other["dina"])
        other.store.close()
    finally:
        for _ in urls:
            pass

    plain = new_store(str(tmp_path / "plain.db"))  # a store without a team and without sites
    with pytest.raises(Refused) as err:
        import_odm(plain, amsterdam, "data.manager")
    [problem] = err.value.problems
    line = next(n for n, row in enumerate(amsterdam.read_text().splitlines(), start=1) if "<SiteRef" in row)
    assert problem.startswith(f"{amsterdam}:{line}:") and "SubjectData[P-A01]/SiteRef[LOC.AMS]" in problem, problem
    assert 'at site AMS (Amsterdam UMC)' in problem and 'trialflow site add AMS "Amsterdam UMC"' in problem
    assert plain.patient_ids() == []
    add_site(plain, "data.manager", "AMS", "Amsterdam UMC")
    assert import_odm(plain, amsterdam, "data.manager").restored == ("P-A01",)
    assert plain.sites_of(["P-A01"]) == {"P-A01": "AMS"}
    plain.close()


# -- records checked as `trialflow record` checks them, restored subjects too --------------------------
def _edited(text: str, item: str, value: str) -> str:
    """The file with the first ``item``'s Value replaced."""
    return re.sub(rf'(ItemOID="{item}" Value=")[^"]*(")', rf"\g<1>{value}\g<2>", text, count=1)


def _started_with_a_tg(store: Store) -> None:
    enrol_started(store, "P-201")
    record(store, "P-201", {"kind": "tg", "date": "2026-01-12", "value": 120, "unit": "ug/L", "loq": 0.2}, USER)


def _line_of(text: str, needle: str) -> int:
    return next(n for n, row in enumerate(text.splitlines(), start=1) if needle in row)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_restored_subjects_records_get_records_date_and_plausibility_checks(backend: str, tmp_path: Path) -> None:
    """A subject new to the store is restored with every record checked as ``trialflow record`` checks it against
    the restored state at that point: a date in the future or long before enrolment is refused, and a value outside
    the protocol's plausible range unless ``--confirm-unusual`` gives the reason; each refusal at its place in the
    file; a refused import writes nothing."""
    source = new_store(str(tmp_path / "source.db"))
    _started_with_a_tg(source)
    out = tmp_path / "out.xml"
    export_odm(source, out)
    source.close()
    text = out.read_text(encoding="utf-8")
    urls = new_db_url(backend, tmp_path)
    try:
        target = new_store(next(urls))
        for value, finding in (("2029-09-13", "is in the future"), ("1990-01-05", "is long before enrolment")):
            bad = tmp_path / f"bad-{value}.xml"
            bad.write_text(_edited(text, "tg_date", value), encoding="utf-8")
            with pytest.raises(Refused) as err:
                import_odm(target, bad, "data.manager")
            [problem] = err.value.problems
            form_line = max(n for n, row in enumerate(text.splitlines()[:_line_of(text, 'ItemOID="tg_date"')],
                                                      start=1) if "<FormData" in row)
            assert problem.startswith(f"{bad}:{form_line}:"), problem
            assert "SubjectData[P-201]/" in problem and "/ItemData[tg_date]: P-201: tg dated" in problem, problem
            assert finding in problem, problem
            assert target.patient_ids() == []

        unusual = tmp_path / "unusual.xml"
        unusual.write_text(_edited(text, "tg_value", "250000"), encoding="utf-8")
        with pytest.raises(Refused) as err:
            import_odm(target, unusual, "data.manager")
        [problem] = err.value.problems
        assert "/ItemData[tg_value]: P-201: tg value 250000 ug/L" in problem and "plausible range" in problem
        assert problem.endswith("import the file with --confirm-unusual REASON"), problem
        assert err.value.unusual and target.patient_ids() == []
        result = import_odm(target, unusual, "data.manager", confirm_unusual="lab confirmed the value")
        assert result.restored == ("P-201",)
        confirmed = next(e for e in history(target, "P-201") if e.kind == "observation"
                         and e.payload.get("value") == 250000)
        assert confirmed.reason == "unusual value confirmed: lab confirmed the value"
        # the confirmation travels with the record: its export restores into another store without being asked again
        again = tmp_path / "again.xml"
        export_odm(target, again)
        target.close()
        elsewhere = new_store(str(tmp_path / "elsewhere.db"))
        assert import_odm(elsewhere, again, "data.manager").restored == ("P-201",)
        elsewhere.close()
    finally:
        for _ in urls:
            pass


def test_an_enrolled_subjects_refused_record_is_located_in_the_file_and_confirmable(site_store: Store,
                                                                                     tmp_path: Path) -> None:
    """Records for an enrolled subject: a refusal of the engine's checks names the file, line and column and the
    SubjectData/.../ItemData path as the file's other problems do; --confirm-unusual imports the value."""
    text = _edited(REDCAP.read_text(encoding="utf-8"), "tg_value", "250000")
    bad = tmp_path / "unusual.xml"
    bad.write_text(text, encoding="utf-8")
    before = len(history(site_store, "P-101"))
    with pytest.raises(Refused) as err:
        import_odm(site_store, bad, "data.manager")
    [problem] = err.value.problems
    lines = text.splitlines()
    form_line = max(n for n, row in enumerate(lines[:_line_of(text, 'Value="250000"')], start=1) if "<FormData" in row)
    assert problem.startswith(f"{bad}:{form_line}:"), problem
    assert "SubjectData[P-101]/StudyEventData[Event.tg_w0_arm_1]/FormData[Form.tg:1]/ItemData[tg_value]" in problem
    assert "P-101: tg value 250000 ug/L" in problem and problem.endswith("--confirm-unusual REASON"), problem
    assert "confirms no value" not in problem
    assert len(history(site_store, "P-101")) == before
    result = import_odm(site_store, bad, "data.manager", confirm_unusual="re-assayed: right")
    assert result.events == 7
    tg = next(e for e in history(site_store, "P-101") if e.kind == "observation" and e.payload.get("value") == 250000)
    assert tg.reason == "unusual value confirmed: re-assayed: right"


def test_cli_import_odm_takes_confirm_unusual(tmp_path: Path) -> None:
    runner = CliRunner()
    src, dst = str(tmp_path / "src.db"), str(tmp_path / "dst.db")
    source = new_store(src)
    _started_with_a_tg(source)
    out = tmp_path / "out.xml"
    export_odm(source, out)
    source.close()
    bad = tmp_path / "bad.xml"
    bad.write_text(_edited(out.read_text(encoding="utf-8"), "tg_value", "250000"), encoding="utf-8")
    new_store(dst).close()
    refused = runner.invoke(app, ["import", "odm", str(bad), "--db", dst])
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert f"{bad}:" in refused.output and "--confirm-unusual REASON" in refused.output, refused.output
    blank = runner.invoke(app, ["import", "odm", str(bad), "--confirm-unusual", " ", "--db", dst])
    assert blank.exit_code == 1 and "needs the reason" in blank.output
    done = runner.invoke(app, ["import", "odm", str(bad), "--confirm-unusual", "lab confirmed", "--db", dst])
    assert done.exit_code == 0, done.output
    assert "1 subject(s) restored" in done.output


def _form_line(text: str, needle: str) -> int:
    """The line of the FormData holding the first ``needle``."""
    return max(n for n, row in enumerate(text.splitlines()[:_line_of(text, needle)], start=1) if "<FormData" in row)


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;")


def test_a_formdata_without_sourceid_imports_in_the_files_order(tmp_path: Path) -> None:
    """A file in which only some entries state their place in the source's history (SourceID), as a hand edit or
    another system leaves it: imported in the file's order, no traceback."""
    source = new_store(str(tmp_path / "source.db"))
    _started_with_a_tg(source)
    out = tmp_path / "out.xml"
    export_odm(source, out)
    source.close()
    text = out.read_text(encoding="utf-8")
    start = text.rfind("<FormData", 0, text.find('ItemOID="tg_value" Value='))
    end = text.find("</FormData>", start)
    partial = tmp_path / "partial.xml"
    partial.write_text(text[:start] + re.sub(r"<SourceID>[^<]*</SourceID>", "", text[start:end]) + text[end:],
                       encoding="utf-8")
    assert text[start:end].count("<SourceID>") and text[:start].count("<SourceID>")
    target = new_store(str(tmp_path / "target.db"))
    assert import_odm(target, partial, "data.manager").restored == ("P-201",)
    assert [e.payload.get("value") for e in history(target, "P-201") if e.kind == "observation"
            and e.payload.get("kind") == "tg"] == [120]
    result = CliRunner().invoke(app, ["import", "odm", str(partial), "--db", str(tmp_path / "target.db")])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    target.close()


def test_a_confirmation_of_an_unusual_value_counts_only_from_a_trialflow_export_in_the_engines_words(
        tmp_path: Path) -> None:
    """A value outside the plausible range stands as confirmed only when the file is a trialflow export and its
    ReasonForChange carries the note as record and correct write it (the whole reason, or after '; '): the words
    inside another sentence, or another system's file, need --confirm-unusual as any import does."""
    source = new_store(str(tmp_path / "source.db"))
    _started_with_a_tg(source)
    out = tmp_path / "out.xml"
    export_odm(source, out)
    source.close()
    text = _edited(out.read_text(encoding="utf-8"), "tg_value", "250000")
    start = text.rfind("<FormData", 0, text.find('ItemOID="tg_value" Value="250000"'))
    end = text.find("</FormData>", start)

    def with_reason(reason: str, body: str = text) -> str:
        form = re.sub(r"<ReasonForChange>.*?</ReasonForChange>", "", body[start:end])
        return body[:start] + form.replace("<SourceID>", f"<ReasonForChange>{reason}</ReasonForChange><SourceID>") \
            + body[end:]

    foreign = text.replace('Originator="trialflow" SourceSystem="trialflow"', 'Originator="lab" SourceSystem="lab"', 1)
    assert foreign != text
    target = new_store(str(tmp_path / "target.db"))
    for name, body in (("mention", with_reason("not sure, no unusual value confirmed: by anybody")),
                       ("foreign", with_reason("unusual value confirmed: lab", foreign))):
        bad = tmp_path / f"{name}.xml"
        bad.write_text(body, encoding="utf-8")
        with pytest.raises(Refused) as err:
            import_odm(target, bad, "data.manager")
        [problem] = err.value.problems
        assert problem.startswith(f"{bad}:") and "/ItemData[tg_value]: P-201: tg value 250000" in problem, problem
        assert problem.endswith("--confirm-unusual REASON") and err.value.unusual, problem
        assert target.patient_ids() == []
    for name, reason in (("recorded", "unusual value confirmed: re-assayed"),
                         ("corrected", "lab re-issued; unusual value confirmed: re-assayed")):
        good = tmp_path / f"{name}.xml"
        good.write_text(with_reason(reason), encoding="utf-8")
        other = new_store(str(tmp_path / f"{name}.db"))
        assert import_odm(other, good, "data.manager").restored == ("P-201",)
        tg = next(e for e in history(other, "P-201") if e.kind == "observation" and e.payload.get("value") == 250000)
        assert tg.reason == reason
        other.close()
    target.close()


def test_a_second_different_value_of_the_same_day_is_refused_as_record_refuses_it(tmp_path: Path) -> None:
    """Two Tg of one day with different values in a restored history: refused at the second one's place (a
    correction, not a second fact), as ``trialflow record`` refuses a second Tg of a recorded day."""
    source = new_store(str(tmp_path / "source.db"))
    _started_with_a_tg(source)
    out = tmp_path / "out.xml"
    export_odm(source, out)
    source.close()
    text = out.read_text(encoding="utf-8")
    start = text.rfind("<FormData", 0, text.find('ItemOID="tg_value" Value='))
    end = text.find("</FormData>", start) + len("</FormData>")
    twin = re.sub(r'FormRepeatKey="\d+"', 'FormRepeatKey="99"', text[start:end])
    twin = _edited(twin, "tg_value", "5")
    twin = re.sub(r"<SourceID>[^<]*</SourceID>", "<SourceID>seq 99; event 9999</SourceID>", twin)
    bad = tmp_path / "twin.xml"
    body = text[:end] + "\n" + twin + text[end:]
    bad.write_text(body, encoding="utf-8")
    target = new_store(str(tmp_path / "target.db"))
    with pytest.raises(Refused) as err:
        import_odm(target, bad, "data.manager")
    [problem] = err.value.problems
    line = _form_line(body, 'ItemOID="tg_value" Value="5"')
    assert problem.startswith(f"{bad}:{line}:"), problem
    assert "FormData[F.TG:99]/ItemData[tg_date]: P-201: two different tg records of 2026-01-12" in problem, problem
    assert target.patient_ids() == []
    target.close()


def test_a_restored_enrolment_needs_its_eligibility_answers_agreeing_with_its_verdict(tmp_path: Path) -> None:
    """An enrolment is restored with its answers checked as ``enroll`` checks them: every criterion answered,
    and its eligible flag what the answers say; else refused at its place (start would refuse the subject
    forever)."""
    source = new_store(str(tmp_path / "source.db"))
    enrol_started(source, "P-201")
    out = tmp_path / "out.xml"
    export_odm(source, out)
    source.close()
    text = out.read_text(encoding="utf-8")
    line = _form_line(text, 'ItemOID="elig_')
    unanswered = tmp_path / "unanswered.xml"
    unanswered.write_text(re.sub(r'<ItemData ItemOID="elig_prior_tki" .*?</ItemData>', "", text, count=1,
                                 flags=re.S), encoding="utf-8")
    contradiction = tmp_path / "contradiction.xml"
    contradiction.write_text(_edited(text, "elig_prior_tki", "yes"), encoding="utf-8")
    target = new_store(str(tmp_path / "target.db"))
    for bad, finding in ((unanswered, "eligibility criterion 'prior_tki' is not answered"),
                         (contradiction, "the enrolment says eligible=True, its answers say otherwise "
                                         "(criteria prior_tki not met)")):
        with pytest.raises(Refused) as err:
            import_odm(target, bad, "data.manager")
        [problem] = err.value.problems
        assert problem.startswith(f"{bad}:{line}:") and "SubjectData[P-201]/" in problem, problem
        assert finding in problem, problem
        assert target.patient_ids() == []
    result = CliRunner().invoke(app, ["import", "odm", str(unanswered), "--db", str(tmp_path / "target.db")])
    assert result.exit_code == 1 and "Traceback" not in result.output and "not answered" in result.output
    assert import_odm(target, out, "data.manager").restored == ("P-201",)
    target.close()


def _migrated_in_screening(tmp_path: Path) -> tuple[Path, Path]:
    """(export, v1.9's YAML): P-201, in screening, answered v1.9's new exclusion criterion (rescreen) and was
    migrated; P-202, on treatment, migrated without an answer."""
    from test_amendments import HEPATIC, _edit, _version

    from trialflow.engine import amend, migrate, rescreen

    source = new_store(str(tmp_path / "source.db"))
    enrol_started(source, "P-201", day0=None)
    enrol_started(source, "P-202")
    v19 = _edit(tmp_path, "v19.yaml", _version("1.9"), HEPATIC)
    amend(source, v19, "hepatic safety", USER, apply=True)
    rescreen(source, "P-201", {"severe_hepatic_impairment": "no"}, USER, version="1.9")
    migrate(source, ["P-201"], "1.9", "adopt", USER)
    migrate(source, ["P-202"], "1.9", "adopt", USER)
    out = tmp_path / "out.xml"
    export_odm(source, out)
    source.close()
    return out, v19


@pytest.mark.parametrize("backend", BACKENDS)
def test_eligibility_answered_after_the_enrolment_is_checked_as_rescreen_and_migrate_check_it(backend: str,
                                                                                            tmp_path: Path) -> None:
    """A screening patient's later answers (rescreen) are restored when they are criterion: yes/no to a registered
    version, every criterion of it answered and met (the engine's screening_answers); its migration only once it
    has them, as migrate requires; else refused at the event's place, nothing written."""
    import json

    from trialflow.engine import amend, fold

    out, v19 = _migrated_in_screening(tmp_path)
    text = out.read_text(encoding="utf-8")
    kind_at = text.find('ItemOID="event_kind" Value="eligibility_answered"')
    found = re.compile(r'ItemOID="event_payload" Value="([^"]*)"').search(text, kind_at)
    assert kind_at > 0 and found is not None
    payload = json.loads(found.group(1).replace("&quot;", '"'))
    assert payload["answers"] == {"severe_hepatic_impairment": "no"}

    def forged(answers: Any) -> str:
        body = _attr(json.dumps({**payload, "answers": answers}))
        return text[:found.start()] + f'ItemOID="event_payload" Value="{body}"' + text[found.end():]

    form = (text.rfind("<FormData", 0, kind_at), text.find("</FormData>", kind_at) + len("</FormData>"))
    unanswered = text[:form[0]] + text[form[1]:]
    urls = new_db_url(backend, tmp_path)
    try:
        target = new_store(next(urls))
        amend(target, v19, "hepatic safety", USER, apply=True)
        for name, body, finding, at in (
                ("nope", forged("nope"), "eligibility answers 'nope' must map each criterion id to yes or no",
                 'ItemOID="event_kind" Value="eligibility_answered"'),
                ("unmet", forged({"severe_hepatic_impairment": "yes"}),
                 "would not meet eligibility criterion 'severe_hepatic_impairment' under v1.9",
                 'ItemOID="event_kind" Value="eligibility_answered"'),
                ("unknown", forged({"hepatic": "no"}), "unknown eligibility criterion 'hepatic'",
                 'ItemOID="event_kind" Value="eligibility_answered"'),
                ("unanswered", unanswered, "P-201 is in screening and v1.9 asks: eligibility criterion "
                                           "'severe_hepatic_impairment' is not answered", 'FormOID="F.MIGRATION"')):
            bad = tmp_path / f"{name}.xml"
            bad.write_text(body, encoding="utf-8")
            with pytest.raises(Refused) as err:
                import_odm(target, bad, "data.manager")
            problem = err.value.problems[0]
            assert problem.startswith(f"{bad}:{_form_line(body, at)}:"), (name, problem)
            assert "SubjectData[P-201]/" in problem and finding in problem, (name, problem)
            assert target.patient_ids() == []
        result = CliRunner().invoke(app, ["import", "odm", str(tmp_path / "nope.xml"), "--db",
                                          target.engine.url.render_as_string(hide_password=False)])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert set(import_odm(target, out, "data.manager").restored) == {"P-201", "P-202"}
        assert fold(target.events("P-201")).eligibility["severe_hepatic_impairment"] == "no"
        target.close()
    finally:
        for _ in urls:
            pass


def test_a_siteref_that_differs_from_the_stored_site_is_refused_at_its_place(tmp_path: Path) -> None:
    """A subject the store already has at AMS, whom the file puts at LEI: refused at the SiteRef, naming both
    sites (a site is not changed by an import). A site called STORE is not the store's own no-site Location."""
    from trialflow.engine import add_site, enroll

    source = new_store(str(tmp_path / "source.db"))
    for code in ("AMS", "LEI", "STORE"):
        add_site(source, "data.manager", code, f"site {code}")
    enroll(source, "P-A01", ENROLLED, ELIGIBLE, USER, site="AMS")
    enroll(source, "P-S01", ENROLLED, ELIGIBLE, USER, site="STORE")
    out = tmp_path / "out.xml"
    export_odm(source, out)
    source.close()
    validate_odm_file(out)
    text = out.read_text(encoding="utf-8")
    assert '<SiteRef LocationOID="LOC.STORE"' in text  # site STORE, not the no-site Location TRIALFLOW.STORE
    target = new_store(str(tmp_path / "target.db"))
    for code in ("AMS", "LEI", "STORE"):
        add_site(target, "data.manager", code, f"site {code}")
    assert set(import_odm(target, out, "data.manager").restored) == {"P-A01", "P-S01"}
    assert target.sites_of() == {"P-A01": "AMS", "P-S01": "STORE"}
    moved = tmp_path / "moved.xml"
    body = text.replace('<SiteRef LocationOID="LOC.AMS"', '<SiteRef LocationOID="LOC.LEI"', 1)
    moved.write_text(body, encoding="utf-8")
    before = len(history(target, "P-A01"))
    with pytest.raises(Refused) as err:
        import_odm(target, moved, "data.manager")
    [problem] = err.value.problems
    line = _line_of(body, '<SiteRef LocationOID="LOC.LEI"')
    assert problem.startswith(f"{moved}:{line}:"), problem
    assert "SubjectData[P-A01]/SiteRef[LOC.LEI]: the file puts P-A01 at LEI, the store at AMS" in problem, problem
    assert len(history(target, "P-A01")) == before
    target.close()


def test_records_added_to_a_stored_history_keep_the_files_reason(tmp_path: Path) -> None:
    """A subject already in the store gets the file's new records as ``record`` records them, each with the
    ReasonForChange the file gives it (an unusual value's confirmation after it); a value a trialflow export
    carries as confirmed, in the engine's words, stands as it does in a restored history."""
    source = new_store(str(tmp_path / "source.db"))
    enrol_started(source, "P-201")
    early = tmp_path / "early.xml"
    export_odm(source, early)
    record(source, "P-201", {"kind": "tg", "date": "2026-01-12", "value": 250000, "unit": "ug/L", "loq": 0.2}, USER,
           confirm_unusual="re-assayed")
    full = tmp_path / "full.xml"
    export_odm(source, full)
    source.close()
    text = full.read_text(encoding="utf-8")
    start = text.rfind("<FormData", 0, text.find('ItemOID="tg_value" Value='))
    end = text.find("</FormData>", start)
    form = re.sub(r"<ReasonForChange>.*?</ReasonForChange>", "", text[start:end])
    form = form.replace("<SourceID>", "<ReasonForChange>from the lab sheet</ReasonForChange><SourceID>")
    reasoned = tmp_path / "reasoned.xml"
    reasoned.write_text(text[:start] + form + text[end:], encoding="utf-8")
    target = new_store(str(tmp_path / "target.db"))
    import_odm(target, early, "data.manager")
    with pytest.raises(Refused, match="--confirm-unusual REASON"):
        import_odm(target, reasoned, "data.manager")
    result = import_odm(target, reasoned, "data.manager", confirm_unusual="lab confirmed")
    assert result.events == 1 and result.restored == ()
    tg = history(target, "P-201")[-1]
    assert (tg.payload["value"], tg.reason) == (250000, "from the lab sheet; unusual value confirmed: lab confirmed")
    target.close()
    later = new_store(str(tmp_path / "later.db"))
    import_odm(later, early, "data.manager")
    assert import_odm(later, full, "data.manager").events == 1  # the export's own confirmation
    assert history(later, "P-201")[-1].reason == "unusual value confirmed: re-assayed"
    later.close()
