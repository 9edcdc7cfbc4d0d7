"""Cross-check: simulated patients replayed one by one through the workflow engine decide alike."""

from __future__ import annotations

import datetime as dt

from trialflow.engine import Refused, decide, enroll, init_store, record_many, start, withdraw
from trialflow.engine.simulation import parse_scenario, patient_pathway, simulate
from trialflow.protocol import load_bundled_protocol

USER = "sim.crosscheck"


def _answers() -> dict[str, str]:
    proto = load_bundled_protocol()
    return {
        **{c.id: "yes" for c in proto.eligibility.inclusion},
        **{c.id: "no" for c in proto.eligibility.exclusion},
    }


def test_replayed_patients_get_the_simulators_decisions(tmp_path):
    # re-induction made common so that all three branches are in the sample
    scenario = parse_scenario("rai_reinduction_probability: 0.2\n", "crosscheck.yaml")
    result = simulate(60, seed=7, runs=1, scenario=scenario)
    sample = result.sample
    assert sample is not None
    # a past origin so that every simulated date (enrolment to decision) is before today
    span = max(p for p in sample.end_day.tolist())
    origin = dt.date.today() - dt.timedelta(days=int(span) + 30)
    store, _ = init_store(str(tmp_path / "replay.db"), None, USER)
    picked = [patient_pathway(sample, i, origin) for i in range(60)]
    # 20 patients: every branch and some withdrawals where the sample has them
    chosen = []
    for want in ("rai_reinduced", "no_response", None, "favourable_without_uptake"):
        chosen += [p for p in picked if p.branch == want][:5]
    chosen += [p for p in picked if p not in chosen][: 20 - len(chosen)]
    assert len(chosen) == 20
    seen_branches = set()
    for p in chosen:
        enroll(store, p.patient, p.enrolled, _answers(), USER)
        base = [r for r in p.records_until(p.day0)]
        if base:
            record_many(store, [(p.patient, r) for r in base], USER)
        start(store, p.patient, p.day0, USER)
        if p.decision_date is not None:
            later = p.records_until(p.decision_date, after=p.day0)
            if later:
                record_many(store, [(p.patient, r) for r in later], USER)
            written = decide(store, p.patient, p.decision_date, USER)
            payload = next(e.payload for e in written.events if e.kind == "decision")
            assert payload["outcomes"] == p.outcomes, p.patient
            assert payload["favourable"] == p.favourable, p.patient
            assert payload["branch"] == p.branch, p.patient
            assert (
                written.phase
                == load_bundled_protocol()
                .decision.branches[[b.id for b in load_bundled_protocol().decision.branches].index(p.branch)]
                .to
            )
            seen_branches.add(p.branch)
        else:
            assert p.withdrawal is not None
            when, reason = p.withdrawal
            # the simulator decides decision_delay_days after the decision is ready, so a patient who left
            # first had it not ready on the day before they left minus that delay
            asked = max(when - dt.timedelta(days=1 + scenario.decision_delay_days), p.day0)
            later = p.records_until(asked, after=p.day0)
            if later:
                record_many(store, [(p.patient, r) for r in later], USER)
            try:  # the decision is not ready then
                decide(store, p.patient, asked, USER)
                raise AssertionError(f"{p.patient}: decided although the simulator withdrew them first")
            except Refused:
                pass
            assert withdraw(store, p.patient, when, reason, USER).phase == "withdrawn"
    assert seen_branches == {"rai_reinduced", "favourable_without_uptake", "no_response"}
    assert any(p.withdrawal for p in chosen)
    store.close()
