"""The coordinator's workflow end to end through ``trialflow.engine``, on SQLite and PostgreSQL.

Fixture patients follow the bundled protocol (see ``workflow_helpers``): enrolled 2025-12-29, day 0
2026-01-12, 6-month CT and scintigraphy 2026-07-13, decision 2026-08-03.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from workflow_helpers import (
    BASELINE_MM,
    DAY0,
    DECISION_DAY,
    ELIGIBLE,
    ENROLLED,
    INVESTIGATOR,
    MONTH6,
    PD_MM,
    PR_MM,
    SD_MM,
    TG_PROGRESSION,
    TG_RESPONSE,
    TG_STABLE,
    USER,
    ct,
    enrol_started,
    event_count,
    iso,
    patient_at_decision,
    snapshot,
    tg,
)

from trialflow.engine import (
    Refused,
    Store,
    clopper_pearson,
    complete_phase,
    correct,
    decide,
    enroll,
    evaluate,
    history,
    import_file,
    next_actions,
    record,
    report,
    start,
    status,
    withdraw,
)
from trialflow.protocol import DocumentError

CASES = Path(__file__).parent / "cases"


def _decide(store: Store, pid: str, **kw: object) -> str:
    return decide(store, pid, DECISION_DAY, INVESTIGATOR, **kw).phase  # type: ignore[arg-type]


# -- the branches of the 6-month decision ----------------------------------------------------------
def test_reinduced_uptake_goes_to_rai_plus_sorafenib(store: Store) -> None:
    patient_at_decision(store, "P-001", tg_values=TG_STABLE, month6_mm=SD_MM, avid=["lung-left-lower"])
    p = evaluate(store, "P-001", as_of=DECISION_DAY)
    assert p.ready and p.missing == ()
    assert p.outcomes == {"rai_uptake": "reinduced", "tg_slope": "stable", "recist": "SD"}
    assert p.recommended_branch == "rai_reinduced" and p.recommended_phase == "rai_plus_sorafenib"
    assert _decide(store, "P-001") == "rai_plus_sorafenib"
    # The RaI arm's worklist asks for 6000 MBq 131I two weeks after the decision (window -7/+14).
    acts = next_actions(store, "P-001", as_of=DECISION_DAY + dt.timedelta(days=10))
    rai = next(a for a in acts if a.visit == "rai_therapy")
    assert (rai.action, rai.status) == ("administer", "due")
    assert (rai.target_date, rai.window_start, rai.window_end) == (
        dt.date(2026, 8, 17),
        dt.date(2026, 8, 10),
        dt.date(2026, 8, 31),
    )
    assert "6000 MBq" in rai.detail


def test_stable_tg_without_uptake_continues_sorafenib_and_flags_recist_pd(store: Store) -> None:
    """Read literally, RECIST PD with stable Tg is favourable: continue, but flag the discordance."""
    patient_at_decision(store, "P-002", tg_values=TG_STABLE, month6_mm=PD_MM)
    p = evaluate(store, "P-002", as_of=DECISION_DAY)
    assert p.outcomes == {"rai_uptake": "not_reinduced", "tg_slope": "stable", "recist": "PD"}
    assert p.criteria["tg_slope"]["slope_per_week"] == pytest.approx(0.001385, abs=5e-7)
    assert p.criteria["tg_slope"]["p_value"] == pytest.approx(0.745, abs=5e-4)
    assert p.favourable and p.favourable_criteria == ("tg_slope",)
    assert p.recommended_phase == "continued_sorafenib"
    assert any(f.startswith("discordant: recist PD") for f in p.flags)
    w = decide(store, "P-002", DECISION_DAY, INVESTIGATOR)
    assert w.phase == "continued_sorafenib" and any("discordant" in f for f in w.warnings)


def test_recist_sd_with_progressing_tg_continues_sorafenib(store: Store) -> None:
    patient_at_decision(store, "P-003", tg_values=TG_PROGRESSION, month6_mm=SD_MM)
    p = evaluate(store, "P-003", as_of=DECISION_DAY)
    assert p.outcomes == {"rai_uptake": "not_reinduced", "tg_slope": "progression", "recist": "SD"}
    assert p.criteria["tg_slope"]["slope_per_week"] == pytest.approx(0.058223, abs=5e-7)
    assert p.criteria["tg_slope"]["t"] == pytest.approx(40.6, abs=0.05)
    assert _decide(store, "P-003") == "continued_sorafenib"
    st = status(store, "P-003", as_of=DECISION_DAY)[0]
    assert (st.phase, st.decision, st.dose_mg_per_day) == ("continued_sorafenib", "continued_sorafenib", 800)


def test_progression_on_every_criterion_goes_off_study(store: Store) -> None:
    patient_at_decision(
        store, "P-004", tg_values=TG_PROGRESSION, month6_mm=PD_MM, new_lesions=["liver segment 6"]
    )
    p = evaluate(store, "P-004", as_of=DECISION_DAY)
    assert p.outcomes == {"rai_uptake": "not_reinduced", "tg_slope": "progression", "recist": "PD"}
    assert not p.favourable and p.recommended_phase == "off_study"
    assert _decide(store, "P-004") == "off_study"
    # Leaving a treatment phase puts "stop Sorafenib" on the worklist.
    acts = next_actions(store, "P-004", as_of=DECISION_DAY)
    assert [(a.action, a.status) for a in acts] == [("stop_treatment", "due")]
    with pytest.raises(Refused, match="left the study"):
        record(store, "P-004", tg(DECISION_DAY + dt.timedelta(days=3), 60.0), USER)


def test_tgab_positive_makes_tg_not_evaluable(store: Store) -> None:
    patient_at_decision(store, "P-005", tg_values=TG_RESPONSE, tgab="positive", month6_mm=SD_MM)
    p = evaluate(store, "P-005", as_of=DECISION_DAY)
    assert p.ready
    assert p.outcomes["tg_slope"] == "not_evaluable"
    assert (
        "antibod" in p.criteria["tg_slope"]["reason"].lower()
        or "tgab" in p.criteria["tg_slope"]["reason"].lower()
    )
    assert any(f.startswith("tg_slope not evaluable") for f in p.flags)
    assert p.recommended_phase == "continued_sorafenib"  # RECIST SD alone is favourable


def test_missed_month6_ct_waits_while_open_then_recist_ne(store: Store) -> None:
    patient_at_decision(store, "P-006", tg_values=TG_PROGRESSION, month6_mm=None)
    # Day 189: the 6-month CT window (days 175-196) is open, so the decision waits for it.
    open_day = DAY0 + dt.timedelta(days=189)
    p = evaluate(store, "P-006", as_of=open_day)
    assert not p.ready and p.recommended_branch is None
    assert "recist: month6_ct (overdue, window closes 2026-07-27)" in p.missing
    ct_item = next(a for a in next_actions(store, "P-006", as_of=open_day) if a.visit == "month6_ct")
    assert (ct_item.status, ct_item.target_date, ct_item.window_end) == (
        "overdue",
        MONTH6,
        dt.date(2026, 7, 27),
    )
    decide_item = next(a for a in next_actions(store, "P-006", as_of=open_day) if a.action == "decide")
    assert decide_item.status == "upcoming" and "month6_ct" in decide_item.reason
    with pytest.raises(Refused, match="not ready"):
        decide(store, "P-006", open_day, INVESTIGATOR)
    # After the window closed the decision is ready, with RECIST not evaluable (NE is not favourable).
    p = evaluate(store, "P-006", as_of=DECISION_DAY)
    assert p.ready and p.outcomes["recist"] == "NE"
    assert any(f.startswith("recist not evaluable") for f in p.flags)
    missed = next(a for a in next_actions(store, "P-006", as_of=DECISION_DAY) if a.visit == "month6_ct")
    assert missed.status == "missed"
    assert _decide(store, "P-006") == "off_study"


# -- withdrawal, screen failure, override -----------------------------------------------------------
@pytest.mark.parametrize(
    ("phase", "reason"),
    [
        ("screening", "consent"),
        ("sorafenib_6m", "toxicity"),
        ("continued_sorafenib", "progression"),
        ("rai_plus_sorafenib", "death"),
    ],
)
def test_withdrawal_in_each_active_phase(store: Store, phase: str, reason: str) -> None:
    pid = "P-010"
    if phase == "screening":
        enroll(store, pid, ENROLLED, ELIGIBLE, USER)
        when = ENROLLED + dt.timedelta(days=5)
    elif phase == "sorafenib_6m":
        enrol_started(store, pid)
        when = DAY0 + dt.timedelta(days=70)
    else:
        patient_at_decision(
            store,
            pid,
            tg_values=TG_STABLE,
            month6_mm=SD_MM,
            avid=["lung-left-lower"] if phase == "rai_plus_sorafenib" else (),
        )
        assert _decide(store, pid) == phase
        when = DECISION_DAY + dt.timedelta(days=40)
    assert status(store, pid, as_of=when)[0].phase == phase
    w = withdraw(store, pid, when, reason, USER, note="documented in the eCRF")
    assert w.phase == "withdrawn"
    st = store.state(pid)
    assert st is not None and st.withdrawal is not None
    assert st.withdrawal.payload["reason"] == reason and st.withdrawal.effective_date == when
    assert st.stints[-2].phase == phase and st.stints[-1].phase == "withdrawn"
    with pytest.raises(Refused, match="not possible from phase 'withdrawn'"):
        withdraw(store, pid, when, reason, USER)
    r = report(store, as_of=when)
    if phase in ("screening", "sorafenib_6m"):
        assert r.withdrawn_before_decision == {reason: 1} and r.evaluable == 0
    else:
        assert r.evaluable == 1 and r.per_arm == {phase: 1}


def test_withdrawal_with_unknown_reason_is_refused(store: Store) -> None:
    enrol_started(store, "P-011")
    before = event_count(store, "P-011")
    with pytest.raises(Refused, match="unknown withdrawal reason 'toxic'; did you mean 'toxicity'"):
        withdraw(store, "P-011", DAY0 + dt.timedelta(days=3), "toxic", USER)
    assert event_count(store, "P-011") == before


def test_screen_failure_lists_the_unmet_criteria(store: Store) -> None:
    answers = {**ELIGIBLE, "prior_tki": "yes", "rai_refractory": "no"}
    e = enroll(store, "P-020", ENROLLED, answers, USER)
    assert not e.eligible and e.phase == "screen_failure"
    assert set(e.unmet) == {"prior_tki", "rai_refractory"}
    h = history(store, "P-020")
    assert [x.kind for x in h] == ["enrolled", "phase_changed"]
    assert "not eligible" in h[0].summary and "prior_tki" in h[0].summary
    assert h[1].reason is not None and "prior_tki" in h[1].reason
    with pytest.raises(Refused, match="not possible from phase 'screen_failure'"):
        start(store, "P-020", DAY0, USER)
    assert report(store, as_of=DAY0).screen_failures == 1


def test_enrolment_with_unanswered_or_unknown_criteria_is_refused(store: Store) -> None:
    answers = {k: v for k, v in ELIGIBLE.items() if k != "adult"} | {"adlt": "yes"}
    with pytest.raises(Refused) as err:
        enroll(store, "P-021", ENROLLED, answers, USER)
    assert "unknown eligibility criterion 'adlt'; did you mean 'adult'?" in err.value.problems
    assert "eligibility criterion 'adult' is not answered" in err.value.problems
    assert not store.exists("P-021")


def test_override_records_its_reason(store: Store) -> None:
    patient_at_decision(store, "P-030", tg_values=TG_RESPONSE, month6_mm=PR_MM)
    with pytest.raises(Refused, match="override needs a reason"):
        decide(store, "P-030", DECISION_DAY, INVESTIGATOR, override="off_study")
    with pytest.raises(Refused, match="did you mean 'off_study'"):
        decide(store, "P-030", DECISION_DAY, INVESTIGATOR, override="of_study", reason="x")
    why = "patient declines further Sorafenib after grade 3 hand-foot skin reaction"
    w = decide(store, "P-030", DECISION_DAY, INVESTIGATOR, override="off_study", reason=why)
    assert w.phase == "off_study" and "override" in w.message
    d = next(e for e in store.events("P-030") if e.kind == "decision")
    assert d.reason == why and d.user == INVESTIGATOR
    assert d.payload["override"] is True
    assert d.payload["recommended_phase"] == "continued_sorafenib" and d.payload["to"] == "off_study"
    assert d.payload["criteria"]["tg_slope"]["slope_per_week"] == pytest.approx(-0.053503, abs=5e-7)
    h = history(store, "P-030")
    assert any("OVERRIDE" in x.summary and x.reason == why for x in h)
    assert report(store, as_of=DECISION_DAY).patients[0]["override"] is True


def test_a_decision_cannot_be_applied_twice(store: Store) -> None:
    patient_at_decision(store, "P-031", tg_values=TG_RESPONSE, month6_mm=PR_MM)
    assert _decide(store, "P-031") == "continued_sorafenib"
    with pytest.raises(Refused, match="no decision is pending"):
        _decide(store, "P-031")
    assert sum(e.kind == "decision" for e in store.events("P-031")) == 1


def test_complete_phase_after_continued_sorafenib(store: Store) -> None:
    patient_at_decision(store, "P-032", tg_values=TG_RESPONSE, month6_mm=PR_MM)
    _decide(store, "P-032")
    with pytest.raises(Refused, match="before the patient entered continued_sorafenib"):
        complete_phase(store, "P-032", DECISION_DAY - dt.timedelta(days=1), USER)
    end = DECISION_DAY + dt.timedelta(days=100)
    with pytest.raises(Refused, match=r"runs 182 days.*82 days early"):
        complete_phase(store, "P-032", end, USER)
    w = complete_phase(store, "P-032", end, USER, early=True, reason="moved abroad, follow-up elsewhere")
    assert w.phase == "end_of_study"


def test_complete_refuses_the_decision_phase(store: Store) -> None:
    enrol_started(store, "P-033")
    with pytest.raises(Refused, match="use trialflow decide P-033"):
        complete_phase(store, "P-033", DAY0 + dt.timedelta(days=100), USER)


# -- corrections and the two clocks ---------------------------------------------------------------
def test_correction_is_in_history_and_used_by_evaluate(store: Store) -> None:
    values = list(TG_RESPONSE)
    values[1] = 950  # transcription error for 95
    patient_at_decision(store, "P-040", tg_values=values, month6_mm=PR_MM)
    wrong = next(
        e for e in store.events("P-040") if e.kind == "observation" and e.payload.get("value") == 950
    )
    time.sleep(0.01)
    before_correction = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    w = correct(
        store,
        "P-040",
        wrong.id,
        {**wrong.payload, "value": 95.0},
        "transcription error: 95 ug/L on the lab report",
        USER,
    )
    corr = w.events[0]
    h = {x.event: x for x in history(store, "P-040")}
    assert h[wrong.id].corrected_by == corr.id and "tg 950" in h[wrong.id].summary
    assert (
        h[corr.id].corrects == wrong.id
        and h[corr.id].reason == "transcription error: 95 ug/L on the lab report"
    )
    assert f"corrects event {wrong.id}: tg 95.0 ug/L" in h[corr.id].summary
    p = evaluate(store, "P-040", as_of=DECISION_DAY)
    assert p.criteria["tg_slope"]["slope_per_week"] == pytest.approx(-0.053503, abs=5e-7)
    assert [u["value"] for u in p.criteria["tg_slope"]["used"]][1] == 95.0
    # --known-at: the store as it stood before the correction (history and the value used).
    old = history(store, "P-040", known_at=before_correction)
    assert corr.id not in {x.event for x in old} and len(old) == len(h) - 1
    p_old = evaluate(store, "P-040", as_of=DECISION_DAY, known_at=before_correction)
    assert [u["value"] for u in p_old.criteria["tg_slope"]["used"]][1] == 950.0
    # A corrected event cannot be corrected again; correct the correction instead.
    with pytest.raises(Refused, match=f"already corrected by event {corr.id}"):
        correct(store, "P-040", wrong.id, {**wrong.payload, "value": 96.0}, "again", USER)
    with pytest.raises(Refused, match="keeps the kind"):
        correct(
            store, "P-040", corr.id, {"kind": "tgab", "date": "2026-02-09", "result": "negative"}, "x", USER
        )


def test_retraction_removes_the_value_but_keeps_history(store: Store) -> None:
    enrol_started(store, "P-041")
    w = record(store, "P-041", tg(DAY0 + dt.timedelta(days=28), 33.0), USER)
    correct(store, "P-041", w.events[0].id, None, "sample haemolysed", USER)
    assert store.state("P-041").of_kind("tg") == []  # type: ignore[union-attr]
    assert [x.kind for x in history(store, "P-041")][-2:] == ["observation", "correction"]


def test_as_of_cuts_observations_and_known_at_cuts_recording(store: Store) -> None:
    enrol_started(store, "P-042")
    record(store, "P-042", tg(DAY0, 120.0), USER)
    time.sleep(0.01)
    mid = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    record(store, "P-042", tg(DAY0 + dt.timedelta(days=28), 95.0), USER)
    assert len(history(store, "P-042", known_at=mid)) == len(history(store, "P-042")) - 1
    # a Tg visit is done with its TgAb (the protocol measures TgAb with every sample)
    assert "tg_w4" in [a.visit for a in next_actions(store, "P-042", as_of=DAY0 + dt.timedelta(days=29))]
    record(store, "P-042", {"kind": "tgab", "date": iso(DAY0 + dt.timedelta(days=28)), "result": "negative"}, USER)
    # as_of before the week-4 sample: tg_w4 is still due, not done.
    due = [a.visit for a in next_actions(store, "P-042", as_of=DAY0 + dt.timedelta(days=27))]
    assert "tg_w4" in due
    assert "tg_w4" not in [a.visit for a in next_actions(store, "P-042", as_of=DAY0 + dt.timedelta(days=29))]
    # known_at before the week-4 sample was recorded: the visit is open again even on a later date.
    assert "tg_w4" in [
        a.visit for a in next_actions(store, "P-042", as_of=DAY0 + dt.timedelta(days=29), known_at=mid)
    ]
    with pytest.raises(Refused, match="unknown patient 'P-042' at"):
        history(store, "P-042", known_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))


# -- refusals write nothing -----------------------------------------------------------------------
def test_observation_in_the_future_is_refused(store: Store, db_url: str) -> None:
    enrol_started(store, "P-050")
    before = snapshot(db_url)
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    with pytest.raises(Refused, match=f"dated {tomorrow} is in the future"):
        record(store, "P-050", tg(tomorrow, 20.0), USER)
    assert snapshot(db_url) == before


def test_observation_before_day0_outside_baseline_windows_is_refused(store: Store, db_url: str) -> None:
    enrol_started(store, "P-051")
    before = snapshot(db_url)
    with pytest.raises(Refused, match=r"before day 0 \(2026-01-12\) and outside every baseline window"):
        record(store, "P-051", tg(DAY0 - dt.timedelta(days=10), 20.0), USER)
    # Tg week 0 may be drawn up to 7 days before day 0; a baseline CT within its window is fine too.
    record(store, "P-051", tg(DAY0 - dt.timedelta(days=7), 20.0), USER)
    assert len(snapshot(db_url)[0]) == len(before[0]) + 1


def test_observation_for_unknown_patient_is_refused(store: Store, db_url: str) -> None:
    enrol_started(store, "P-052")
    before = snapshot(db_url)
    with pytest.raises(Refused, match="unknown patient 'P-999'"):
        record(store, "P-999", tg(DAY0, 20.0), USER)
    # One bad item in a batch refuses the whole batch.
    with pytest.raises(Refused):
        from trialflow.engine import record_many

        record_many(store, [("P-052", tg(DAY0, 20.0)), ("P-999", tg(DAY0, 20.0))], USER)
    assert snapshot(db_url) == before


@pytest.mark.parametrize(
    ("pid", "what"),
    [
        ("JanJansen", "looks like a name"),
        ("de-Vries-7", "may be a name"),
        ("P-19610314", "date of birth"),
        ("14-03-1961", "date of birth"),
        ("111222333", "BSN"),
        ("123-45-6789", "social security"),
        ("P 001", "must be 2-32 letters"),
    ],
)
def test_pseudonym_rules_refuse_identifying_ids(store: Store, pid: str, what: str) -> None:
    with pytest.raises(Refused, match=what):
        enroll(store, pid, ENROLLED, ELIGIBLE, USER)
    assert store.patient_ids() == []


@pytest.mark.parametrize("pid", ["P-001", "NL-LUMC-0042", "DTC_17", "SOR-2009-031"])
def test_pseudonym_rules_accept_study_ids(store: Store, pid: str) -> None:
    assert enroll(store, pid, ENROLLED, ELIGIBLE, USER).eligible


# -- imports --------------------------------------------------------------------------------------
def test_case_file_import_is_idempotent(store: Store) -> None:
    enroll(store, "P-001", ENROLLED, ELIGIBLE, USER)
    start(store, "P-001", DAY0, USER)
    first = import_file(store, CASES / "P-001.yaml", USER)
    assert len(first) == 1 and len(first[0].events) == 14
    n = event_count(store, "P-001")
    again = import_file(store, CASES / "P-001.yaml", USER)
    assert again[0].events == () and "0 recorded, 14 already recorded (skipped)" in again[0].message
    assert event_count(store, "P-001") == n
    p = evaluate(store, "P-001", as_of=DECISION_DAY)
    assert p.outcomes == {"rai_uptake": "not_reinduced", "tg_slope": "response", "recist": "PR"}


def test_case_file_with_another_day0_is_refused(store: Store) -> None:
    enroll(store, "P-001", ENROLLED, ELIGIBLE, USER)
    start(store, "P-001", DAY0 + dt.timedelta(days=1), USER)
    n = event_count(store)
    with pytest.raises(Refused, match="the file says day 0 is 2026-01-12, the store says 2026-01-13"):
        import_file(store, CASES / "P-001.yaml", USER)
    assert event_count(store) == n


def _lab_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("patient,kind,date,value,unit,loq,result\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_lab_csv_import_twice_records_nothing_new(store: Store, tmp_path: Path) -> None:
    for pid in ("P-061", "P-062"):
        enrol_started(store, pid)
    rows = [
        f"{pid},tg,{(DAY0 + dt.timedelta(weeks=4 * i)).isoformat()},{v},ug/L,0.2,"
        for pid, series in (("P-061", TG_RESPONSE), ("P-062", TG_STABLE))
        for i, v in enumerate(series[:4])
    ]
    rows += [f"P-061,tgab,{DAY0.isoformat()},,,,negative", "P-062,tg,2026-02-10,<0.2,ug/L,,"]
    f = _lab_csv(tmp_path / "lab-2026-04.csv", rows)
    out = import_file(store, f, USER)
    assert {w.patient: len(w.events) for w in out} == {"P-061": 5, "P-062": 5}
    n = event_count(store)
    again = import_file(store, f, USER)
    assert all(w.events == () and "already recorded" in w.message for w in again)
    assert event_count(store) == n
    below = [r for r in store.state("P-062").of_kind("tg") if r.below_loq]  # type: ignore[union-attr]
    assert len(below) == 1 and below[0].loq == 0.2


def test_lab_csv_with_one_bad_row_writes_nothing(store: Store, db_url: str, tmp_path: Path) -> None:
    enrol_started(store, "P-063")
    good = [
        f"P-063,tg,{(DAY0 + dt.timedelta(weeks=4 * i)).isoformat()},{v},ug/L,0.2,"
        for i, v in enumerate(TG_STABLE[:5])
    ]
    before = snapshot(db_url)
    bad_value = _lab_csv(
        tmp_path / "bad-value.csv", [*good[:3], "P-063,tg,2026-03-09,4l.5,ug/L,0.2,", *good[3:]]
    )
    with pytest.raises(DocumentError) as err:
        import_file(store, bad_value, USER)
    assert [(p.line, p.path) for p in err.value.problems] == [(5, "$.value")]
    bad_date = _lab_csv(tmp_path / "bad-date.csv", [*good, "P-063,tg,09/03/2026,41.5,ug/L,0.2,"])
    with pytest.raises(DocumentError, match="expected a date as YYYY-MM-DD"):
        import_file(store, bad_date, USER)
    unknown = _lab_csv(tmp_path / "unknown.csv", [*good, "P-404,tg,2026-03-09,41.5,ug/L,0.2,"])
    with pytest.raises(DocumentError, match=r"unknown.csv:7:1: \$.patient: unknown patient 'P-404'"):
        import_file(store, unknown, USER)
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    late = _lab_csv(tmp_path / "future.csv", [*good, f"P-063,tg,{future},41.5,ug/L,0.2,"])
    with pytest.raises(Refused, match="in the future"):
        import_file(store, late, USER)
    assert snapshot(db_url) == before


# -- the worklist ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (dt.date(2026, 1, 20), "upcoming"),  # window opens 2026-02-06
        (dt.date(2026, 2, 6), "due"),  # first day of the window
        (dt.date(2026, 2, 9), "due"),  # the target day (day 28)
        (dt.date(2026, 2, 10), "overdue"),  # target passed, window open until 2026-02-12
        (dt.date(2026, 2, 12), "overdue"),
        (dt.date(2026, 2, 13), "missed"),
    ],
)
def test_worklist_status_of_tg_week4(store: Store, as_of: dt.date, expected: str) -> None:
    enrol_started(store, "P-070")
    record(store, "P-070", tg(DAY0, 120.0), USER)
    item = next(a for a in next_actions(store, as_of=as_of) if a.visit == "tg_w4")
    assert (item.patient, item.action, item.status) == ("P-070", "visit", expected)
    assert (item.target_date, item.window_start, item.window_end) == (
        dt.date(2026, 2, 9),
        dt.date(2026, 2, 6),
        dt.date(2026, 2, 12),
    )
    assert "tg_w4" in item.reason and "day 28 from study day 0" in item.reason


def test_worklist_is_anchored_on_day0_not_on_a_late_visit(store: Store) -> None:
    enrol_started(store, "P-071")
    record(store, "P-071", tg(DAY0, 120.0), USER)
    record(store, "P-071", tg(dt.date(2026, 2, 12), 95.0), USER)  # week 4 on the last day of its window
    record(store, "P-071", {"kind": "tgab", "date": "2026-02-12", "result": "negative"}, USER)
    item = next(a for a in next_actions(store, "P-071", as_of=dt.date(2026, 3, 1)) if a.visit == "tg_w8")
    assert (item.target_date, item.window_start, item.window_end, item.status) == (
        dt.date(2026, 3, 9),
        dt.date(2026, 3, 6),
        dt.date(2026, 3, 12),
        "upcoming",
    )
    visits = {a.visit for a in next_actions(store, "P-071", as_of=dt.date(2026, 3, 1))}
    assert "tg_w4" not in visits


def test_worklist_is_sorted_by_urgency_and_covers_baseline_and_start(store: Store) -> None:
    enroll(store, "P-072", dt.date(2026, 3, 2), ELIGIBLE, USER)
    enrol_started(store, "P-073", day0=None)
    acts = next_actions(store, as_of=dt.date(2026, 3, 10))
    order = {"overdue": 0, "due": 1, "missed": 2, "upcoming": 3}
    assert [order[a.status] for a in acts] == sorted(order[a.status] for a in acts)
    p72 = {a.visit: a for a in acts if a.patient == "P-072"}
    assert p72["baseline_ct"].status == "due" and p72["baseline_ct"].target_date == dt.date(2026, 3, 16)
    start_item = next(a for a in acts if a.patient == "P-073" and a.action == "start_treatment")
    # Baseline complete on 2026-01-08: day 0 is due from then until the screening windows close (day 28
    # after enrolment, 2026-01-26); on 2026-03-10 it is overdue.
    assert (start_item.window_start, start_item.target_date) == (dt.date(2026, 1, 8), dt.date(2026, 1, 26))
    assert start_item.status == "overdue"
    assert next(a for a in next_actions(store, "P-073", as_of=dt.date(2026, 1, 20))
                if a.action == "start_treatment").status == "due"


def test_worklist_lists_dispensing_at_the_current_dose(store: Store) -> None:
    enrol_started(store, "P-074")
    record(
        store,
        "P-074",
        {"kind": "dispense", "date": DAY0.isoformat(), "dose_mg_per_day": 800, "days_supply": 28},
        USER,
    )
    record(
        store,
        "P-074",
        {
            "kind": "adverse_event",
            "date": "2026-02-01",
            "term": "Palmar-plantar erythrodysesthesia syndrome",
            "grade": 3,
        },
        USER,
    )
    record(
        store,
        "P-074",
        {
            "kind": "dose_change",
            "date": "2026-02-02",
            "dose_mg_per_day": 600,
            "reason": "hand-foot skin reaction",
        },
        USER,
    )
    item = next(a for a in next_actions(store, "P-074", as_of=dt.date(2026, 2, 5)) if a.action == "dispense")
    assert item.detail == "dispense Sorafenib 600 mg/day"
    assert (item.target_date, item.window_start, item.status) == (
        dt.date(2026, 2, 9),
        dt.date(2026, 2, 2),
        "due",
    )


def test_worklist_today_uses_the_projection_and_matches_a_full_scan(store: Store) -> None:
    """Without --as-of the projection narrows the cohort; the answer must equal the unnarrowed one."""
    patient_at_decision(store, "P-080", tg_values=TG_RESPONSE, month6_mm=PR_MM)
    _decide(store, "P-080")
    enrol_started(store, "P-081", day0=None)
    patient_at_decision(store, "P-082", tg_values=TG_PROGRESSION, month6_mm=PD_MM)
    _decide(store, "P-082")
    today = dt.date.today()
    narrowed = next_actions(store)
    full = next_actions(store, known_at=dt.datetime.now(dt.UTC), as_of=today)
    assert narrowed == full


# -- report ---------------------------------------------------------------------------------------
def test_report_counts_and_clopper_pearson_against_statsmodels(store: Store) -> None:
    from statsmodels.stats.proportion import proportion_confint

    courses = [
        ("P-101", dict(tg_values=TG_RESPONSE, month6_mm=PR_MM)),
        ("P-102", dict(tg_values=TG_STABLE, month6_mm=SD_MM)),
        ("P-103", dict(tg_values=TG_PROGRESSION, month6_mm=PD_MM, new_lesions=["liver segment 6"])),
        ("P-104", dict(tg_values=TG_STABLE, month6_mm=PD_MM, avid=["lung-left-lower"])),
        ("P-105", dict(tg_values=TG_PROGRESSION, month6_mm=PD_MM)),
    ]
    for pid, course in courses:
        patient_at_decision(store, pid, **course)
        _decide(store, pid)
    enroll(store, "P-106", ENROLLED, {**ELIGIBLE, "adult": "no"}, USER)
    enrol_started(store, "P-107")
    withdraw(store, "P-107", DAY0 + dt.timedelta(days=30), "toxicity", USER)
    r = report(store, as_of=DECISION_DAY)
    assert (r.enrolled, r.screen_failures, r.started, r.evaluable, r.favourable) == (7, 1, 6, 5, 3)
    lo, hi = proportion_confint(3, 5, alpha=0.05, method="beta")
    assert r.ci95 == pytest.approx((lo, hi), abs=1e-12)
    assert r.ci95 == pytest.approx((0.146632, 0.947255), abs=1e-6)  # Clopper-Pearson 3/5, hand-checked
    assert r.per_arm == {"continued_sorafenib": 2, "off_study": 2, "rai_plus_sorafenib": 1}
    assert r.criteria["rai_uptake"] == {"favourable": 1, "not_reinduced": 4, "reinduced": 1}
    assert r.criteria["recist"]["PD"] == 3 and r.criteria["recist"]["favourable"] == 2
    assert r.withdrawn_before_decision == {"toxicity": 1}
    assert r.per_phase["screen_failure"] == 1 and r.per_phase["withdrawn"] == 1
    # as_of before any decision: nothing evaluable, no interval.
    early = report(store, as_of=MONTH6)
    assert early.evaluable == 0 and early.ci95 is None and early.proportion is None


@pytest.mark.parametrize(("k", "n"), [(0, 26), (1, 26), (19, 26), (26, 26), (8, 31), (0, 1), (1, 1)])
def test_clopper_pearson_against_statsmodels(k: int, n: int) -> None:
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(k, n, alpha=0.05, method="beta")
    assert clopper_pearson(k, n) == pytest.approx((lo, hi), abs=1e-12)


# -- protocol pinning and the audit fields ----------------------------------------------------------
def test_every_event_carries_who_when_and_the_protocol_version(store: Store) -> None:
    patient_at_decision(store, "P-110", tg_values=TG_RESPONSE, month6_mm=PR_MM)
    _decide(store, "P-110")
    evs = store.events("P-110")
    assert [e.seq for e in evs] == list(range(1, len(evs) + 1))
    assert evs[0].payload["protocol_hash"] == store.protocol()[1].content_hash
    assert {e.user for e in evs} == {USER, INVESTIGATOR}
    assert all(e.recorded_at.tzinfo is not None or e.recorded_at.year >= 2026 for e in evs)
    json.dumps([dict(e.payload) for e in evs])  # payloads are plain JSON
    st = status(store, "P-110", as_of=DECISION_DAY)[0]
    assert (st.protocol_version, st.day0, st.study_day) == ("1.0", DAY0, 203)


def test_baseline_ct_sum_is_the_recist_baseline(store: Store) -> None:
    patient_at_decision(store, "P-111", tg_values=TG_STABLE, month6_mm=SD_MM)
    rec = evaluate(store, "P-111", as_of=DECISION_DAY).criteria["recist"]
    assert rec["baseline_sum_mm"] == sum(BASELINE_MM)
    assert ct(MONTH6, SD_MM)["target"][2]["nodal"] is True
