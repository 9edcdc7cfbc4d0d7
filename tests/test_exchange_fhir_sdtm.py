"""FHIR R5 out (loaded back into fhir.resources models) and the SDTM trial design domains from the protocol."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from team_helpers import cheap_hashing  # noqa: F401  # fixture
from typer.testing import CliRunner
from workflow_helpers import USER, new_store, patient_at_decision

from trialflow.cli import app
from trialflow.engine import decide, withdraw
from trialflow.exchange import LOINC_TG, LOINC_TGAB, design_domains, export_fhir, export_sdtm_design
from trialflow.protocol import load_bundled_protocol


@pytest.fixture(scope="module")
def fhir_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fhir")
    store = new_store(str(folder / "s.db"))
    patient_at_decision(store, "P-001")
    decide(store, "P-001", __import__("workflow_helpers").DECISION_DAY, "investigator.dr-smit")
    patient_at_decision(store, "P-002")
    withdraw(store, "P-002", __import__("workflow_helpers").MONTH6, "toxicity", USER)
    export_fhir(store, folder / "out")
    store.close()
    return folder / "out"


def test_fhir_export_loads_into_fhir_resources_r5_models(fhir_folder: Path) -> None:
    from fhir.resources import get_fhir_model_class
    from fhir.resources.bundle import Bundle

    bundle = Bundle.model_validate_json((fhir_folder / "bundle.json").read_text(encoding="utf-8"))
    kinds = [e.resource.get_resource_type() for e in bundle.entry]
    assert kinds.count("ResearchStudy") == 1 and kinds.count("PlanDefinition") == 1
    assert kinds.count("ResearchSubject") == 2 and kinds.count("Observation") == 32  # 2 × 8 Tg and 8 TgAb
    for line_file in fhir_folder.glob("*.ndjson"):
        for line in line_file.read_text(encoding="utf-8").splitlines():
            data = json.loads(line)
            get_fhir_model_class(data["resourceType"]).model_validate(data)


def test_fhir_export_files_are_private_as_the_odm_and_dv_exports(fhir_folder: Path, tmp_path: Path) -> None:
    """The FHIR files hold patient data: mode 0600, in a folder of mode 0700 when the export makes it."""
    files = sorted(fhir_folder.iterdir())
    assert {f.name for f in files} >= {"bundle.json", "ResearchSubject.ndjson", "Observation.ndjson"}
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files), [(f.name, oct(f.stat().st_mode)) for f in files]
    assert fhir_folder.stat().st_mode & 0o777 == 0o700
    existing = tmp_path / "mine"  # a folder that is there keeps its mode; the files in it are private still
    existing.mkdir(mode=0o755)
    (existing / "bundle.json").write_text("{}")
    (existing / "bundle.json").chmod(0o644)
    store = new_store(str(tmp_path / "s.db"))
    patient_at_decision(store, "P-001")
    export_fhir(store, existing)
    store.close()
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in existing.iterdir())


def test_fhir_observations_carry_the_loinc_codes_and_units(fhir_folder: Path) -> None:
    from fhir.resources.observation import Observation

    obs = [Observation.model_validate_json(line) for line in
           (fhir_folder / "Observation.ndjson").read_text(encoding="utf-8").splitlines()]
    tg = [o for o in obs if o.code.coding[0].code == LOINC_TG[0]]
    tgab = [o for o in obs if o.code.coding[0].code == LOINC_TGAB[0]]
    assert LOINC_TG[0] == "3013-0" and LOINC_TGAB[0] == "8098-6"
    assert len(tg) == len(tgab) == 16
    first = next(o for o in tg if o.subject.identifier.value == "P-001")
    assert first.valueQuantity.unit == "ug/L" and first.valueQuantity.code == "ug/L"
    assert float(first.valueQuantity.value) == 120.0
    assert all(o.interpretation[0].coding[0].code == "NEG" for o in tgab)


def test_research_subject_progress_holds_phases_the_decision_and_the_off_study_reason(fhir_folder: Path) -> None:
    from fhir.resources.researchsubject import ResearchSubject

    subjects = {s.id: s for s in (ResearchSubject.model_validate_json(line) for line in
                                  (fhir_folder / "ResearchSubject.ndjson").read_text(encoding="utf-8").splitlines())}
    states = [p.subjectState.coding[0].code for p in subjects["P-001"].progress if p.subjectState]
    assert states == ["screening", "on-study-intervention", "on-study", "on-study-intervention"]
    milestones = [p.milestone.text or p.milestone.coding[0].code for p in subjects["P-001"].progress if p.milestone]
    assert milestones[0] == "SignedUp"
    assert any(m.startswith("Decision month6: branch favourable_without_uptake → continued_sorafenib")
               for m in milestones)
    assert subjects["P-001"].actualComparisonGroup == "favourable-without-uptake"
    last = subjects["P-002"].progress[-1]
    assert last.subjectState.coding[0].code == "withdrawn" and last.reason.text == "toxicity"


def test_plan_definition_actions_carry_each_visits_offset_and_window(fhir_folder: Path) -> None:
    from fhir.resources.plandefinition import PlanDefinition

    plan = PlanDefinition.model_validate_json((fhir_folder / "PlanDefinition.ndjson").read_text(encoding="utf-8"))
    protocol = load_bundled_protocol()
    actions = {a.id: a for phase in plan.action for a in (phase.action or [])}
    for v in protocol.visits:
        a = actions[v.id.replace("_", "-")]
        assert float(a.relatedAction[0].offsetDuration.value) == v.day
        assert (float(a.timingRange.low.value), float(a.timingRange.high.value)) == (v.first_day, v.last_day)


# -- SDTM trial design ----------------------------------------------------------------------------
def test_sdtm_tv_rows_equal_the_protocols_visits() -> None:
    """TV: one row per visit; VISITDY in SDTM counting (day 1 = first dose, no day 0); the window as rules."""
    protocol = load_bundled_protocol()
    tv = design_domains(protocol)["TV"]
    assert [r["VISIT"] for r in tv] == [v.name for v in protocol.visits]
    assert [r["VISITNUM"] for r in tv] == list(range(1, len(protocol.visits) + 1))
    for row, visit in zip(tv, protocol.visits, strict=True):
        phase = protocol.phase(visit.phase)
        expected_dy = (visit.day + 1 if visit.day >= 0 else visit.day) if phase.anchor == "day0" else None
        assert row["VISITDY"] == expected_dy
        start = int(re.search(r"([+-]) (\d+) days$", row["TVSTRL"]).group(2))  # type: ignore[union-attr]
        sign = re.search(r"([+-]) (\d+) days$", row["TVSTRL"]).group(1)  # type: ignore[union-attr]
        end = int(re.search(r"\+ (\d+) days$", row["TVENRL"]).group(1))  # type: ignore[union-attr]
        assert (start if sign == "+" else -start) == visit.day - visit.window.before
        assert end == visit.day + visit.window.after
    week4 = next(r for r in tv if r["VISIT"] == "Tg week 4")
    assert (week4["VISITDY"], week4["TVSTRL"], week4["TVENRL"]) == (
        29, "First Sorafenib dose (day 0) + 25 days", "First Sorafenib dose (day 0) + 31 days")
    arm_only = {r["VISIT"]: r["ARMCD"] for r in tv if r["ARMCD"]}
    assert arm_only["Administer 6000 MBq 131I"] == "RAIREIND"


def test_sdtm_ta_te_ti_ts_follow_the_protocol() -> None:
    protocol = load_bundled_protocol()
    d = design_domains(protocol)
    assert {r["ARMCD"] for r in d["TA"]} == {"RAIREIND", "FAVOURAB", "NORESPON"}
    branch_rows = [r for r in d["TA"] if r["TABRANCH"]]
    assert len(branch_rows) == 3 and all(r["ELEMENT"] == "Sorafenib 800 mg/day for 6 months" for r in branch_rows)
    assert {r["ETCD"]: r["TEDUR"] for r in d["TE"]}["SORAFENI"] == "P196D"
    assert [r["IECAT"] for r in d["TI"]].count("INCLUSION") == len(protocol.eligibility.inclusion)
    assert len({r["IETESTCD"] for r in d["TI"]}) == len(d["TI"]) and all(len(r["IETESTCD"]) <= 8 for r in d["TI"])
    ts = {r["TSPARMCD"]: r["TSVAL"] for r in d["TS"]}
    assert ts["PLANSUB"] == "30" and ts["NARMS"] == "3" and ts["TRT"] == "Sorafenib" and ts["RANDOM"] == "N"


def test_sdtm_export_writes_dataset_json_and_csv(tmp_path: Path) -> None:
    protocol = load_bundled_protocol()
    result = export_sdtm_design(protocol, tmp_path / "json")
    tv = json.loads(Path(result.files["TV"]).read_text(encoding="utf-8"))
    assert tv["datasetJSONVersion"] == "1.1.0" and tv["name"] == "TV" and tv["records"] == len(protocol.visits)
    names = [c["name"] for c in tv["columns"]]
    assert names[:5] == ["STUDYID", "DOMAIN", "VISITNUM", "VISIT", "VISITDY"]
    assert tv["rows"][3][names.index("VISITDY")] == 29
    csv_result = export_sdtm_design(protocol, tmp_path / "csv", "csv")
    with open(csv_result.files["TV"], newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows[3]["VISIT"] == "Tg week 4" and rows[3]["TVENRL"].endswith("+ 31 days")


def test_cli_export_fhir_and_sdtm(tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "s.db")
    store = new_store(db)
    patient_at_decision(store, "P-001")
    store.close()
    r = runner.invoke(app, ["export", "fhir", "--out", str(tmp_path / "fhir"), "--db", db])
    assert r.exit_code == 0, r.output
    assert "1 ResearchSubject" in r.output and (tmp_path / "fhir" / "bundle.json").exists()
    r = runner.invoke(app, ["export", "sdtm-design", "--out", str(tmp_path / "sdtm"), "--format", "csv", "--db", db])
    assert r.exit_code == 0, r.output
    assert "TV 21 rows" in r.output and (tmp_path / "sdtm" / "tv.csv").exists()
    r = runner.invoke(app, ["export", "sdtm-design", "--format", "xlsx", "--db", db])
    assert r.exit_code == 2


# -- SDTM DV: protocol deviations ---------------------------------------------------------------------
DV_NAMES = ["STUDYID", "DOMAIN", "USUBJID", "DVSEQ", "DVTERM", "DVDECOD", "VISITNUM", "VISIT", "DVSTDTC"]


@pytest.fixture
def deviations_db(tmp_path: Path) -> str:
    """P-002: Tg week 4 missed, Tg week 8 out of window; P-001: no deviation; P-003: week 4 not done."""
    import datetime as dt

    from workflow_helpers import DAY0, enrol_started

    from trialflow.engine import deviation

    db = str(tmp_path / "dv.db")
    store = new_store(db)
    for pid in ("P-001", "P-002", "P-003"):
        enrol_started(store, pid)
    deviation(store, "P-002", "tg_w4", "missed", "patient on holiday", DAY0 + dt.timedelta(days=40), USER)
    deviation(store, "P-002", "tg_w8", "out_of_window", "sample drawn on day 70", DAY0 + dt.timedelta(days=70), USER)
    deviation(store, "P-003", "tg_w4", "not_done", "laboratory strike", DAY0 + dt.timedelta(days=35), USER)
    store.close()
    return db


def test_sdtm_dv_has_a_row_per_deviation_with_the_sdtmig_variables(deviations_db: str, tmp_path: Path) -> None:
    from trialflow.engine import Store
    from trialflow.exchange import export_sdtm_dv

    store = Store.open(deviations_db)
    result = export_sdtm_dv(store, tmp_path / "json")
    csv_result = export_sdtm_dv(store, tmp_path / "csv", "csv")
    store.close()
    assert (result.rows, result.subjects) == (3, 2)
    ds = json.loads(Path(result.file).read_text(encoding="utf-8"))
    assert ds["datasetJSONVersion"] == "1.1.0" and ds["name"] == "DV" and ds["records"] == 3
    assert [c["name"] for c in ds["columns"]] == DV_NAMES
    rows = [dict(zip(DV_NAMES, r, strict=True)) for r in ds["rows"]]
    tv = {r["VISIT"]: r["VISITNUM"] for r in design_domains(load_bundled_protocol())["TV"]}
    assert rows == [
        {"STUDYID": "sorafenib-dtc", "DOMAIN": "DV", "USUBJID": "sorafenib-dtc-P-002", "DVSEQ": 1,
         "DVTERM": "Tg week 4 missed: patient on holiday", "DVDECOD": "MISSED VISIT",
         "VISITNUM": tv["Tg week 4"], "VISIT": "Tg week 4", "DVSTDTC": "2026-02-21"},
        {"STUDYID": "sorafenib-dtc", "DOMAIN": "DV", "USUBJID": "sorafenib-dtc-P-002", "DVSEQ": 2,
         "DVTERM": "Tg week 8 out of window: sample drawn on day 70", "DVDECOD": "VISIT OUT OF WINDOW",
         "VISITNUM": tv["Tg week 8"], "VISIT": "Tg week 8", "DVSTDTC": "2026-03-23"},
        {"STUDYID": "sorafenib-dtc", "DOMAIN": "DV", "USUBJID": "sorafenib-dtc-P-003", "DVSEQ": 1,
         "DVTERM": "Tg week 4 not done: laboratory strike", "DVDECOD": "VISIT ASSESSMENT NOT DONE",
         "VISITNUM": tv["Tg week 4"], "VISIT": "Tg week 4", "DVSTDTC": "2026-02-16"},
    ]
    with open(csv_result.file, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == DV_NAMES
        assert [r["DVDECOD"] for r in reader] == ["MISSED VISIT", "VISIT OUT OF WINDOW", "VISIT ASSESSMENT NOT DONE"]
    assert Path(result.file).stat().st_mode & 0o777 == 0o600  # patient data


def test_sdtm_dv_holds_only_the_patients_the_actor_may_read(tmp_path: Path,
                                                           cheap_hashing: list[float]) -> None:  # noqa: F811
    import datetime as dt

    from team_helpers import new_team_store
    from workflow_helpers import DAY0, ELIGIBLE, ENROLLED

    from trialflow.engine import Refused, deviation, enroll, start
    from trialflow.exchange import deviation_rows

    team = new_team_store(str(tmp_path / "team.db"), cheap_hashing)
    for pid, who, site in (("P-A01", "anna", "AMS"), ("P-L01", "bram", "LEI")):
        enroll(team.store, pid, ENROLLED, ELIGIBLE, team[who], site=site)
        start(team.store, pid, DAY0, team[who])
        deviation(team.store, pid, "tg_w4", "missed", "no show", DAY0 + dt.timedelta(days=40), team[who])
    with pytest.raises(Refused, match="this store has users"):
        deviation_rows(team.store)
    assert [r["USUBJID"] for r in deviation_rows(team.store, team["anna"])] == ["sorafenib-dtc-P-A01"]
    assert len(deviation_rows(team.store, team["dina"])) == 2
    team.store.close()


def test_cli_export_sdtm_dv(deviations_db: str, tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["export", "sdtm-dv", "--out", str(tmp_path / "sdtm"), "--format", "csv",
                                 "--db", deviations_db])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == f"{tmp_path / 'sdtm' / 'dv.csv'}: SDTM DV for sorafenib-dtc: 3 deviation(s) of 2 " \
                               "subject(s)"
    r = CliRunner().invoke(app, ["export", "sdtm-dv", "--format", "xpt", "--db", deviations_db])
    assert r.exit_code == 2


def test_csv_cells_a_spreadsheet_would_run_as_formulas_open_as_text(tmp_path: Path) -> None:
    """CSV injection (OWASP): a text cell starting with = + - @ tab or CR gets a leading single quote; other
    text and numbers are written as they are."""
    from trialflow.exchange._sdtm import write_dataset
    from trialflow.exchange._sdtm_dv import DV_VARIABLES

    texts = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "a = b", "Tg week 4 missed"]
    rows = [{"STUDYID": "s", "DOMAIN": "DV", "USUBJID": "s-P", "DVSEQ": n, "DVTERM": t, "DVDECOD": "OTHER",
             "VISITNUM": -1, "VISIT": "v", "DVSTDTC": "2026-01-01"} for n, t in enumerate(texts, start=1)]
    path = write_dataset(tmp_path, "DV", rows, load_bundled_protocol(), "csv", DV_VARIABLES)
    with open(path, newline="", encoding="utf-8") as f:
        read = list(csv.DictReader(f))
    assert [r["DVTERM"] for r in read] == ["'" + t for t in texts[:6]] + texts[6:]
    assert {r["VISITNUM"] for r in read} == {"-1"}  # a number is not a formula
