"""Protocol amendments against a cohort at mixed stages: diff, impact per patient, migration, --known-at.

Every amendment is a realistic edit of the bundled protocol (the issue's list): RECIST 1.0 → 1.1,
a different α, a Tg visit at week 32, a shorter window, a new exclusion criterion, and removing the
continued-Sorafenib branch. The cohort (on 2025-12-01):

- P-101 decided 2025-07-25: Tg rising, no uptake, one small lesion 20 → 24 mm. RECIST 1.0: +20 % is PD, so
  off study. RECIST 1.1 also needs +5 mm: +4 mm is SD, a favourable response (the issue's flip).
- P-102 decided 2025-07-25: Tg response, RECIST PR, continued Sorafenib.
- P-103 day 0 2025-09-01, on Sorafenib (study day 91); Tg slope p = 0.078 so far.
- P-104 enrolled 2025-11-20, in screening.
- P-105 day 0 2025-03-03, all 6-month data in, decision not yet taken; Tg slope p = 0.078 (8 values).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from trialflow.engine import (
    Refused,
    Store,
    amend,
    decide,
    enroll,
    evaluate,
    history,
    migrate,
    record_many,
    start,
)
from trialflow.protocol import bundled_protocol_path, diff_protocols, load_bundled_protocol, load_protocol

AS_OF = dt.date(2025, 12, 1)
USER = "coordinator.test"


def _answers() -> dict[str, str]:
    p = load_bundled_protocol()
    return {**{c.id: "yes" for c in p.eligibility.inclusion}, **{c.id: "no" for c in p.eligibility.exclusion}}


def _ct(date: dt.date, mm: float) -> dict[str, object]:
    return {"kind": "ct", "date": date.isoformat(), "slice_thickness_mm": 5,
            "target": [{"id": "T1", "organ": "lung", "diameter_mm": mm}], "non_target": [], "new_lesions": []}


def _scan(date: dt.date) -> dict[str, object]:
    return {"kind": "rai_scan", "date": date.isoformat(), "modalities": ["planar", "spect"], "avid_lesions": []}


def _tg_series(pid: str, day0: dt.date, values: list[float]) -> list[tuple[str, dict[str, object]]]:
    out: list[tuple[str, dict[str, object]]] = []
    for i, v in enumerate(values):
        d = (day0 + dt.timedelta(days=28 * i)).isoformat()
        out += [(pid, {"kind": "tg", "date": d, "value": round(v, 3)}),
                (pid, {"kind": "tgab", "date": d, "result": "negative"})]
    return out


def _through_decision(store: Store, pid: str, day0: dt.date, tg: list[float], ct_mm: tuple[float, float]) -> None:
    enroll(store, pid, day0 - dt.timedelta(days=14), _answers(), USER)
    record_many(store, [(pid, _ct(day0 - dt.timedelta(days=7), ct_mm[0])), (pid, _scan(day0 - dt.timedelta(days=8)))],
                USER)
    start(store, pid, day0, USER)
    m6 = day0 + dt.timedelta(days=182)
    record_many(store, [*_tg_series(pid, day0, tg), (pid, _ct(m6, ct_mm[1])), (pid, _scan(m6))], USER)
    decide(store, pid, day0 + dt.timedelta(days=200), "investigator.test")


@pytest.fixture
def cohort(store: Store) -> Store:
    day0 = dt.date(2025, 1, 6)
    rising = [10.0 * math.exp(0.058 * 4 * i) for i in range(8)]  # DOMAIN.md: progression, p = 1.5e-8
    falling = [120, 95, 70, 61, 48, 42, 30, 27]  # DOMAIN.md: response
    _through_decision(store, "P-101", day0, rising, (20.0, 24.0))
    _through_decision(store, "P-102", day0, falling, (30.0, 19.0))
    d3 = dt.date(2025, 9, 1)
    enroll(store, "P-103", d3 - dt.timedelta(days=12), _answers(), USER)
    record_many(store, [("P-103", _ct(d3 - dt.timedelta(days=5), 25.0)), ("P-103", _scan(d3 - dt.timedelta(days=6)))],
                USER)
    start(store, "P-103", d3, USER)
    noise = [0.05, -0.08, 0.1, -0.02]
    record_many(store, _tg_series("P-103", d3, [40 * math.exp(0.007 * 4 * i + noise[i]) for i in range(4)]), USER)
    enroll(store, "P-104", dt.date(2025, 11, 20), _answers(), USER)
    d5 = dt.date(2025, 3, 3)
    enroll(store, "P-105", d5 - dt.timedelta(days=10), _answers(), USER)
    record_many(store, [("P-105", _ct(d5 - dt.timedelta(days=4), 30.0)), ("P-105", _scan(d5 - dt.timedelta(days=4)))],
                USER)
    start(store, "P-105", d5, USER)
    noise = [0.05, -0.08, 0.1, -0.02, -0.09, 0.07, -0.06, 0.03]
    m6 = d5 + dt.timedelta(days=182)
    record_many(store, [*_tg_series("P-105", d5, [40 * math.exp(0.007 * 4 * i + noise[i]) for i in range(8)]),
                        ("P-105", _ct(m6, 31.0)), ("P-105", _scan(m6))], USER)
    return store


def _edit(tmp_path: Path, name: str, *edits: tuple[str, str]) -> Path:
    text = bundled_protocol_path().read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, f"edit target not unique: {old!r}"
        text = text.replace(old, new)
    out = tmp_path / name
    out.write_text(text, encoding="utf-8")
    load_protocol(out)  # every amended version must itself be valid
    return out


STUDY_VERSION = ('  version: "1.0"\n  design:', '  version: "{v}"\n  design:')


def _version(v: str) -> tuple[str, str]:
    return STUDY_VERSION[0], STUDY_VERSION[1].format(v=v)


def _impact(report, pid: str):  # type: ignore[no-untyped-def]
    return next(p for p in report.patients if p.patient == pid)


def test_recist_11_flips_the_small_lesion_progression(cohort: Store, tmp_path: Path) -> None:
    new = _edit(tmp_path, "v1.1.yaml", _version("1.1"),
                ('params: {version: "1.0", pr_threshold_pct', 'params: {version: "1.1", pr_threshold_pct'))
    report = amend(cohort, new, "RECIST 1.1 per the working group", USER, as_of=AS_OF)
    assert not report.applied and [v.version for v in cohort.versions()] == ["1.0"]
    assert [(c.text, c.substantial) for c in report.changes if c.area == "criteria"] == [
        ("criterion recist: version '1.0' → '1.1'", True)]
    p101 = _impact(report, "P-101")
    assert p101.decision_changed is not None
    assert "continued_sorafenib instead of off_study" in p101.decision_changed
    assert "recist PD → SD" in p101.decision_changed
    assert _impact(report, "P-102").decision_changed is None  # PR under both versions
    assert not _impact(report, "P-103").affected and not _impact(report, "P-104").affected
    # shown, never changed: the recorded decision stands
    assert next(h.summary for h in history(cohort, "P-101") if h.kind == "decision").endswith("→ off_study")


def test_alpha_010_turns_a_borderline_slope_into_progression(cohort: Store, tmp_path: Path) -> None:
    new = _edit(tmp_path, "alpha.yaml", _version("1.1"),
                ("{alpha: 0.05, test: two_sided", "{alpha: 0.10, test: two_sided"))
    changes = diff_protocols(load_bundled_protocol(), load_protocol(new))
    assert [c.text for c in changes if c.area == "criteria"] == ["criterion tg_slope: alpha 0.05 → 0.1"]
    amend(cohort, new, "alpha 0.10", USER, apply=True, as_of=AS_OF)
    before = evaluate(cohort, "P-105", as_of=AS_OF).criteria["tg_slope"]
    assert before["outcome"] == "stable" and 0.05 < before["p_value"] < 0.10
    migrate(cohort, ["P-105"], "1.1", "adopt amendment 1", USER)
    assert evaluate(cohort, "P-105", as_of=AS_OF).criteria["tg_slope"]["outcome"] == "progression"
    migrate(cohort, ["P-105"], "1.0", "undo: migrated by mistake", USER)
    assert evaluate(cohort, "P-105", as_of=AS_OF).criteria["tg_slope"]["outcome"] == "stable"
    kinds = [(h.kind, h.summary) for h in history(cohort, "P-105") if h.kind == "migrated"]
    assert kinds == [("migrated", "migrated v1.0 → v1.1"), ("migrated", "migrated v1.1 → v1.0")]


def test_tg_week_32_appears_only_for_patients_before_it(cohort: Store, tmp_path: Path) -> None:
    new = _edit(tmp_path, "w32.yaml", _version("1.2"),
                ("      - {id: tg_w28, name: Tg week 28, day: 196, window: {before: 3, after: 3}, assessments: [tg], "
                 "source: synopsis}\n",
                 "      - {id: tg_w28, name: Tg week 28, day: 196, window: {before: 3, after: 3}, assessments: [tg], "
                 "source: synopsis}\n      - {id: tg_w32, name: Tg week 32, day: 224, window: {before: 3, after: 3}, "
                 "assessments: [tg], source: assumption}\n"),
                ("    duration_days: 196\n", "    duration_days: 224\n"))
    report = amend(cohort, new, "Tg at week 32", USER, as_of=AS_OF)
    assert _impact(report, "P-103").visits_added == ("tg_w32 on 2026-04-13 (upcoming)",)
    assert _impact(report, "P-101").visits_added == ()  # past the decision
    assert _impact(report, "P-104").visits_added == ()  # no day 0 yet: nothing scheduled
    added = [c for c in report.changes if c.area == "visits"]
    assert [(c.kind, c.item, c.substantial) for c in added] == [("added", "tg_w32", True)]


def test_shorter_window_moves_pending_visits(cohort: Store, tmp_path: Path) -> None:
    new = _edit(tmp_path, "window.yaml", _version("1.3"),
                ("{id: tg_w16, name: Tg week 16, day: 112, window: {before: 3, after: 3}",
                 "{id: tg_w16, name: Tg week 16, day: 112, window: {before: 1, after: 1}"))
    report = amend(cohort, new, "tighter Tg windows", USER, as_of=AS_OF)
    change = next(c for c in report.changes if c.area == "visits")
    assert (change.text, change.substantial) == ("visit tg_w16 window -3/+3 → -1/+1", False)
    assert _impact(report, "P-103").visits_moved == (
        "tg_w16: 2025-12-22 [2025-12-19 – 2025-12-25] → 2025-12-22 [2025-12-21 – 2025-12-23]",)


def test_new_exclusion_criterion_asks_for_rescreening(cohort: Store, tmp_path: Path) -> None:
    new = _edit(tmp_path, "excl.yaml", _version("1.4"),
                ("    - id: pregnancy_or_lactation\n",
                 "    - id: severe_hepatic_impairment\n      question: Child-Pugh C hepatic impairment?\n"
                 "      source: assumption\n    - id: pregnancy_or_lactation\n"))
    report = amend(cohort, new, "hepatic safety", USER, as_of=AS_OF)
    for pid in ("P-101", "P-102", "P-103", "P-104", "P-105"):
        assert _impact(report, pid).eligibility == (
            "eligibility criterion 'severe_hepatic_impairment' is not answered (re-screen under v1.4)",)
    assert [(c.area, c.kind, c.substantial) for c in report.changes if c.area == "eligibility"] == [
        ("eligibility", "added", True)]


def test_removing_continued_sorafenib(cohort: Store, tmp_path: Path) -> None:
    text = bundled_protocol_path().read_text(encoding="utf-8")
    start_at = text.index("  - id: continued_sorafenib\n")
    end_at = text.index("  - id: off_study\n")
    text = text[:start_at] + text[end_at:]
    for old, new in [
        _version("2.0"),
        ("  - {trigger: complete, source: continued_sorafenib, dest: end_of_study,\n"
         '     description: "6 months of continued Sorafenib, then treatment continues off study (assumption)"}\n', ""),
        ("rai_plus_sorafenib, continued_sorafenib]", "rai_plus_sorafenib]"),
    ]:
        assert text.count(old) == 1
        text = text.replace(old, new)
    b_start = text.index("    - id: favourable_without_uptake\n")
    b_end = text.index("    - id: no_response\n")
    text = text[:b_start] + text[b_end:]
    path = tmp_path / "v2.yaml"
    path.write_text(text, encoding="utf-8")
    report = amend(cohort, path, "drop continued Sorafenib", USER, as_of=AS_OF, apply=True)
    assert _impact(report, "P-102").blocking == ("phase 'continued_sorafenib' does not exist in v2.0",)
    assert _impact(report, "P-101").decision_changed is None  # off study either way
    removed = {(c.area, c.item) for c in report.changes if c.kind == "removed"}
    assert {("phases", "continued_sorafenib"), ("branches", "favourable_without_uptake")} <= removed
    with pytest.raises(Refused, match="continued_sorafenib"):
        migrate(cohort, ["P-102"], "2.0", "try", USER)
    moved = migrate(cohort, ["P-103"], "2.0", "adopt", USER)
    assert moved[0].message == "P-103: v1.0 → v2.0"


def test_migration_policy_moves_patients_before_the_decision(cohort: Store, tmp_path: Path) -> None:
    new = _edit(tmp_path, "policy.yaml", _version("1.5"),
                ("  enrolment_target: 30\n", "  enrolment_target: 30\n  migration: {default: stay, stay_from_phase: "
                                              "decision_6m}\n"))
    report = amend(cohort, new, "policy", USER, apply=True, as_of=AS_OF)
    assert {p.patient: p.would_migrate for p in report.patients} == {
        "P-101": False, "P-102": False, "P-103": True, "P-104": True, "P-105": True}
    result = {w.patient: w.message for w in migrate(cohort, None, "1.5", "adopt", USER)}
    assert result["P-103"] == "P-103: v1.0 → v1.5" and result["P-104"] == "P-104: v1.0 → v1.5"
    assert "stays on its version" in result["P-101"]
    counts = {v.version: v.patients for v in cohort.versions()}
    assert counts == {"1.0": 2, "1.5": 3}


def test_a_decision_reaching_the_same_arm_by_other_outcomes_is_not_called_a_change_of_arm(cohort: Store,
                                                                                          tmp_path: Path) -> None:
    """P-102 (30 → 19 mm, -37 %, with a Tg response) is a RECIST PR; with PR at -50 % it is SD, still favourable:
    the same arm, so the report says the arm stands and names the criterion whose outcome moved."""
    new = _edit(tmp_path, "pr50.yaml", _version("1.6"), ("pr_threshold_pct: 30", "pr_threshold_pct: 50"))
    p102 = _impact(amend(cohort, new, "stricter PR", USER, as_of=AS_OF), "P-102")
    assert p102.decision_changed is not None
    assert "would still recommend continued_sorafenib" in p102.decision_changed
    assert "recist PR → SD" in p102.decision_changed and "instead of" not in p102.decision_changed


def test_patients_who_left_the_study_stay_on_their_version_under_a_move_all_policy(cohort: Store,
                                                                                   tmp_path: Path) -> None:
    from trialflow.engine import withdraw

    withdraw(cohort, "P-104", AS_OF, "consent", USER)
    new = _edit(tmp_path, "moveall.yaml", _version("1.7"),
                ("  enrolment_target: 30\n", "  enrolment_target: 30\n  migration: {default: move}\n"))
    report = amend(cohort, new, "move everyone", USER, apply=True, as_of=AS_OF)
    assert {p.patient: p.would_migrate for p in report.patients}["P-104"] is False
    result = {w.patient: w.message for w in migrate(cohort, None, "1.7", "adopt", USER)}
    assert "stays on its version (policy: patients who have left the study stay)" in result["P-104"]
    assert result["P-103"] == "P-103: v1.0 → v1.7"
    assert migrate(cohort, ["P-104"], "1.7", "named on purpose", USER)[0].message == "P-104: v1.0 → v1.7"


def test_amend_refuses_what_it_cannot_register(cohort: Store, tmp_path: Path) -> None:
    with pytest.raises(Refused, match="identical"):
        amend(cohort, bundled_protocol_path(), "nothing", USER)
    same_version = _edit(tmp_path, "samever.yaml", ("  enrolment_target: 30\n", "  enrolment_target: 32\n"))
    with pytest.raises(Refused, match="already registered with other content"):
        amend(cohort, same_version, "more patients", USER)
    with pytest.raises(Refused, match="needs a reason"):
        amend(cohort, same_version, "  ", USER)


def test_known_at_replays_what_the_investigator_knew(cohort: Store) -> None:
    from trialflow.engine import correct

    first = history(cohort, "P-105")
    cut = max(h.recorded_at for h in first)
    tg_w4 = next(h for h in first if h.kind == "observation" and h.payload["kind"] == "tg"
                 and h.payload["date"] == "2025-03-31")
    correct(cohort, "P-105", tg_w4.event, {**tg_w4.payload, "value": 80.0}, "transcription error", USER)
    now = evaluate(cohort, "P-105", as_of=AS_OF).criteria["tg_slope"]
    then = evaluate(cohort, "P-105", as_of=AS_OF, known_at=cut).criteria["tg_slope"]
    assert then["outcome"] == "stable" and now["slope_per_week"] != then["slope_per_week"]
    assert len(history(cohort, "P-105", known_at=cut)) == len(first)
    assert len(history(cohort, "P-105")) == len(first) + 1
    # --as-of is the clinical date: before week 4 the corrected value does not count at all
    early = evaluate(cohort, "P-105", as_of=dt.date(2025, 3, 10))
    assert early.criteria["tg_slope"]["n"] == 1 and not early.ready


def test_migrate_takes_a_patient_named_twice_once_and_says_what_a_short_hash_needs(cohort: Store,
                                                                                  tmp_path: Path) -> None:
    new = _edit(tmp_path, "v18.yaml", _version("1.8"), ("  enrolment_target: 30\n", "  enrolment_target: 32\n"))
    report = amend(cohort, new, "more patients", USER, apply=True, as_of=AS_OF)
    moved = migrate(cohort, ["P-103", "P-103"], "1.8", "adopt", USER)
    assert [w.message for w in moved] == ["P-103: v1.0 → v1.8"]
    with pytest.raises(Refused, match="a hash prefix needs at least 6 characters"):
        migrate(cohort, ["P-104"], report.content_hash[:4], "adopt", USER)
    assert migrate(cohort, ["P-104"], report.content_hash[:6], "adopt", USER)[0].message == "P-104: v1.0 → v1.8"


def test_a_version_numbered_below_the_registered_ones_is_pointed_out(cohort: Store, tmp_path: Path) -> None:
    low = _edit(tmp_path, "low.yaml", _version("0.9"), ("  enrolment_target: 30\n", "  enrolment_target: 32\n"))
    notes = amend(cohort, low, "fewer", USER, as_of=AS_OF).notes
    assert any("version 0.9 numbers below the registered 1.0" in n for n in notes)
    up = _edit(tmp_path, "up.yaml", _version("1.10"), ("  enrolment_target: 30\n", "  enrolment_target: 32\n"))
    assert not any("numbers below" in n for n in amend(cohort, up, "more", USER, as_of=AS_OF).notes)


HEPATIC = ("    - id: pregnancy_or_lactation\n",
           "    - id: severe_hepatic_impairment\n      question: Child-Pugh C hepatic impairment?\n"
           "      source: assumption\n    - id: pregnancy_or_lactation\n")


def test_a_screening_patient_moves_to_a_version_with_a_new_criterion_once_its_site_has_answered_it(
        cohort: Store, tmp_path: Path) -> None:
    """v1.9 adds an exclusion criterion. P-104 (in screening) cannot move unanswered; an answer that excludes it
    is refused (a screen failure is the way); once answered it moves, the answer is part of its eligibility, and
    it starts. P-103 (on treatment) moves without one: eligibility was the gate to the treatment it is on."""
    from trialflow.engine import rescreen, status

    new = _edit(tmp_path, "v19.yaml", _version("1.9"), HEPATIC)
    amend(cohort, new, "hepatic safety", USER, apply=True, as_of=AS_OF)
    events = len(history(cohort, "P-104"))
    with pytest.raises(Refused) as err:
        migrate(cohort, ["P-104"], "1.9", "adopt", USER, as_of=AS_OF)
    assert "P-104 is in screening and v1.9 asks: eligibility criterion 'severe_hepatic_impairment' is not answered" \
        in err.value.problems
    assert any("trialflow rescreen P-104 --eligibility FILE --version 1.9" in p for p in err.value.problems)
    with pytest.raises(Refused) as err:
        rescreen(cohort, "P-104", {"severe_hepatic_impairment": "yes"}, USER, version="1.9")
    assert any("would not meet eligibility criterion 'severe_hepatic_impairment'" in p for p in err.value.problems)
    assert any("screen-fail P-104" in p for p in err.value.problems)
    with pytest.raises(Refused, match="unknown eligibility criterion 'hepatic'"):
        rescreen(cohort, "P-104", {"hepatic": "no"}, USER, version="1.9")
    with pytest.raises(Refused, match="past screening"):
        rescreen(cohort, "P-103", {"severe_hepatic_impairment": "no"}, USER, version="1.9")
    assert len(history(cohort, "P-104")) == events  # nothing written by the refusals

    answered = rescreen(cohort, "P-104", {"severe_hepatic_impairment": "no"}, USER, version="1.9")
    assert answered.message == "P-104: eligibility answered under v1.9 (severe_hepatic_impairment)"
    assert history(cohort, "P-104")[-1].kind == "eligibility_answered"
    again = rescreen(cohort, "P-104", {"severe_hepatic_impairment": "no"}, USER, version="1.9")
    assert again.events == () and "already recorded" in again.message
    assert migrate(cohort, ["P-104"], "1.9", "adopt", USER, as_of=AS_OF)[0].message == "P-104: v1.0 → v1.9"
    assert migrate(cohort, ["P-103"], "1.9", "adopt", USER, as_of=AS_OF)[0].message == "P-103: v1.0 → v1.9"
    record_many(cohort, [("P-104", _ct(AS_OF, 25.0)), ("P-104", _scan(AS_OF))], USER)
    start(cohort, "P-104", AS_OF + dt.timedelta(days=1), USER)
    assert {r.patient: r.phase for r in status(cohort)}["P-104"] == "sorafenib_6m"


def test_start_refuses_a_patient_without_an_answer_its_version_asks(cohort: Store, tmp_path: Path) -> None:
    """A screening patient moved without its answer (by an earlier trialflow, which did not ask for one) is not
    started: the guard names the criterion and the way to answer it, which then lets it start."""
    from trialflow.engine import rescreen
    from trialflow.engine._projection import projection
    from trialflow.engine._state import MIGRATED
    from trialflow.engine._store import NewEvent

    new = _edit(tmp_path, "v19.yaml", _version("1.9"), HEPATIC)
    registered = amend(cohort, new, "hepatic safety", USER, apply=True, as_of=AS_OF).registered
    assert registered is not None
    target = cohort.protocol(registered.content_hash)[0]

    def old_style(tx):  # type: ignore[no-untyped-def]
        state = tx.state("P-104")
        moved = {"from_hash": state.protocol_hash, "to_hash": registered.content_hash, "from_version": "1.0",
                 "to_version": "1.9"}
        return tx.append("P-104", state, [NewEvent(MIGRATED, AS_OF, moved, "adopt")],
                         projection(target, registered.id))

    cohort.write(USER, old_style)
    record_many(cohort, [("P-104", _ct(AS_OF, 25.0)), ("P-104", _scan(AS_OF))], USER)
    with pytest.raises(Refused) as err:
        start(cohort, "P-104", AS_OF + dt.timedelta(days=1), USER)
    assert "P-104 has no answer to eligibility criterion 'severe_hepatic_impairment' of v1.9" in err.value.problems
    assert any("trialflow rescreen P-104 --eligibility FILE" in p for p in err.value.problems)
    rescreen(cohort, "P-104", {"severe_hepatic_impairment": "no"}, USER)  # under its own version, 1.9
    start(cohort, "P-104", AS_OF + dt.timedelta(days=1), USER)


def test_the_answers_are_the_patients_as_they_were_known_at_a_time(cohort: Store, tmp_path: Path) -> None:
    from trialflow.engine import rescreen
    from trialflow.engine._state import fold

    new = _edit(tmp_path, "v19.yaml", _version("1.9"), HEPATIC)
    amend(cohort, new, "hepatic safety", USER, apply=True, as_of=AS_OF)
    before = cohort.events("P-104")
    rescreen(cohort, "P-104", {"severe_hepatic_impairment": "no"}, USER, version="1.9")
    after = cohort.events("P-104")
    assert "severe_hepatic_impairment" not in fold(after, known_at=before[-1].recorded_at).eligibility
    assert fold(after).eligibility == {**fold(before).eligibility, "severe_hepatic_impairment": "no"}


def test_the_dry_run_says_a_screening_patient_without_the_answer_stays_as_migrate_leaves_it(cohort: Store,
                                                                                            tmp_path: Path) -> None:
    new = _edit(tmp_path, "v21.yaml", _version("2.1"), HEPATIC,
                ("  enrolment_target: 30\n", "  enrolment_target: 30\n  migration: {default: move}\n"))
    impact = _impact(amend(cohort, new, "hepatic safety", USER, as_of=AS_OF), "P-104")
    assert not impact.would_migrate and "without the answers the version asks stays" in impact.policy
    assert _impact(amend(cohort, new, "hepatic safety", USER, as_of=AS_OF), "P-103").would_migrate


def test_rescreen_takes_the_answers_from_a_file_and_names_a_bad_one_at_its_line(cohort: Store,
                                                                               tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from trialflow.cli import app

    new = _edit(tmp_path, "v19.yaml", _version("1.9"), HEPATIC)
    amend(cohort, new, "hepatic safety", USER, apply=True, as_of=AS_OF)
    answers = tmp_path / "p104.yaml"
    answers.write_text("# P-104, re-screened\nsevere_hepatic_impairment: maybe\n", encoding="utf-8")
    db = ["--db", str(cohort.engine.url.render_as_string(hide_password=False)), "--user", USER]
    args = ["rescreen", "P-104", "--eligibility", str(answers), "--version", "1.9", *db]
    bad = CliRunner().invoke(app, args)
    assert bad.exit_code == 1 and f"{answers}:2:" in bad.stderr and "expected yes or no, got 'maybe'" in bad.stderr, \
        bad.stderr
    answers.write_text("severe_hepatic_impairment: no\n", encoding="utf-8")
    good = CliRunner().invoke(app, args)
    assert good.exit_code == 0 and "P-104: eligibility answered under v1.9" in good.stdout, good.stderr
    moved = CliRunner().invoke(app, ["protocol", "migrate", "P-104", "--to", "1.9", "--reason", "adopt", *db])
    assert moved.exit_code == 0 and "P-104: v1.0 → v1.9" in moved.stdout, moved.stderr


def test_a_move_all_policy_leaves_a_screening_patient_without_the_answer_on_its_version(cohort: Store,
                                                                                       tmp_path: Path) -> None:
    new = _edit(tmp_path, "v20.yaml", _version("2.0"), HEPATIC,
                ("  enrolment_target: 30\n", "  enrolment_target: 30\n  migration: {default: move}\n"))
    amend(cohort, new, "hepatic safety", USER, apply=True, as_of=AS_OF)
    result = {w.patient: w.message for w in migrate(cohort, None, "2.0", "adopt", USER, as_of=AS_OF)}
    assert result["P-104"] == ("P-104: stays on its version (in screening: eligibility criterion "
                               "'severe_hepatic_impairment' is not answered; its site answers with trialflow "
                               "rescreen P-104 --eligibility FILE --version 2.0)")
    assert result["P-103"] == "P-103: v1.0 → v2.0"
