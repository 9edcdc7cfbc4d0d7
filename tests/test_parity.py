"""Parity: 2,000 simulated patients per protocol, replayed through the engine, get the simulator's decision.

Nine protocols: the bundled one and amendments that add an unscheduled CT, make visits missable, change
RECIST to 1.1, change alpha, add a Tg visit, shorten a window, rename the triggers, and use the example
plug-in rule in a branch condition. For every patient the engine must be ready on the simulator's decision
date and not the day before the simulator found it ready, give every criterion the simulator's outcome
and recommend the simulator's branch; for a patient who left first, the decision must not have been ready
in time. Every patient is replayed through the engine's fold and decision preview; a sample of each
protocol's patients also goes through a SQLite store as a user would (enrol, start, import the case file
that ``simulate --cases`` writes, evaluate).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import json
from pathlib import Path

import pytest
from parity_helpers import AMENDMENTS, Amendment, answers, example_plugin, replay_in_memory

from trialflow.engine import enroll, evaluate, import_file, init_store, start, withdraw
from trialflow.engine.simulation import parse_scenario, patient_pathway, simulate
from trialflow.engine.simulation._cases import write_cases
from trialflow.protocol import parse_protocol

PATIENTS = 2000
STORE_SAMPLE = 30  # per protocol, through the SQLite store (every branch and withdrawal among them)
USER = "parity.check"


def _simulate(amendment: Amendment, tmp_path: Path):  # type: ignore[no-untyped-def]
    text = amendment.text()
    proto = parse_protocol(text, f"{amendment.name}.yaml")
    scenario = parse_scenario(amendment.scenario, f"{amendment.name}-scenario.yaml")
    result = simulate(PATIENTS, seed=11, protocol=proto, scenario=scenario)
    assert result.sample is not None and result.sample.size == PATIENTS
    return text, proto, scenario, result.sample


@pytest.mark.slow
@pytest.mark.parametrize("amendment", AMENDMENTS, ids=[a.name for a in AMENDMENTS])
def test_simulated_patients_get_the_same_decision_from_the_engine(amendment: Amendment, tmp_path: Path) -> None:
    with example_plugin() if amendment.plugin else contextlib.nullcontext():
        text, proto, scenario, sample = _simulate(amendment, tmp_path)
        pathways = [patient_pathway(sample, i) for i in range(PATIENTS)]
        branches: collections.Counter[str | None] = collections.Counter()
        disagree = []
        for p in pathways:
            if p.day0 is None:
                continue
            got = replay_in_memory(proto, p, scenario.decision_delay_days)
            branches[p.branch] += 1
            if p.decision_date is not None:
                same = (got.ready_on_decision_date and not got.ready_the_day_before_ready
                        and got.outcomes == p.outcomes and got.branch == p.branch)
            else:
                same = not got.ready_on_decision_date
            if not same:
                disagree.append((p.patient, p.branch, p.outcomes, got))
        assert not disagree, f"{len(disagree)} of {PATIENTS} disagree, e.g. {disagree[:3]}"
        # the protocol's branches all occur, and so do withdrawals before the decision
        assert set(branches) >= {b.id for b in proto.decision.branches} | {None}, branches

        # a sample through the SQLite store, from the case files `simulate --cases` writes
        cases = tmp_path / "cases"
        write_cases(sample, cases, limit=PATIENTS)
        summary = [json.loads(line) for line in (cases / "patients.jsonl").read_text().splitlines()]
        picked = _sample(summary)
        path = tmp_path / f"{amendment.name}.yaml"
        path.write_text(text, encoding="utf-8")
        store, _ = init_store(str(tmp_path / "parity.db"), path, USER)
        try:
            for s in picked:
                enroll(store, s["patient"], dt.date.fromisoformat(s["enrolled"]), answers(proto), USER)
                start(store, s["patient"], dt.date.fromisoformat(s["day0"]), USER)
                import_file(store, cases / f"{s['patient']}.json", USER)
                if s["branch"] is None:  # left before the decision
                    withdraw(store, s["patient"], dt.date.fromisoformat(s["withdrawn"]["date"]),
                             s["withdrawn"]["reason"], USER)
                preview = evaluate(store, s["patient"])
                if s["branch"] is None:
                    assert not preview.applicable, s
                else:
                    assert preview.ready, s
                    assert (preview.outcomes, preview.recommended_branch) == (s["outcomes"], s["branch"]), s
        finally:
            store.close()


def _sample(summary: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    by_branch: dict[str | None, list[dict]] = collections.defaultdict(list)  # type: ignore[type-arg]
    for s in summary:
        if s["day0"]:
            by_branch[s["branch"]].append(s)
    picked = [s for group in by_branch.values() for s in group[:8]]
    rest = [s for s in summary if s["day0"] and s not in picked]
    return picked + rest[: max(0, STORE_SAMPLE - len(picked))]
