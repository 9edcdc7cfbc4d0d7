"""The simulator's short cuts give each patient what the whole-cohort path gives: a phase few patients
enter (a rare branch) has its visits placed for those patients only, and the criteria are evaluated on a
copy of the decided patients only (``criteria_inputs(cohort, idx)``).

Every patient here has a random stream of its own (blocks of one patient), so a patient simulated in a
cohort gets the numbers it gets simulated alone, and a cohort can be made of any patients of a pool. The
reference for each patient is that patient simulated alone, a cohort of one: there its visits are placed
and its criteria evaluated as for the whole cohort (it is all of it). Checked: cohorts with no and with
one decided patient, with no and with one patient on the rare branch (RAI re-induction: 2 % of patients
in the default scenario), and with many of both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from trialflow.engine.simulation import parse_scenario, pathway_of
from trialflow.engine.simulation._evaluate import criteria_inputs, evaluate_criteria
from trialflow.engine.simulation._generate import Cohort, Streams, simulate_chunk, subset
from trialflow.protocol import load_bundled_protocol

POOL = range(40)  # the patients' stream numbers (spawn keys of the seed)
SEED = 5
RARE = "rai_reinduced"
PATHWAY = pathway_of(load_bundled_protocol())


def _scenario(death_per_month: float, reinduction: float) -> Any:
    return parse_scenario(
        f"""study_start: "2001-01-01"
accrual_per_month: 400
death_per_month: {death_per_month}
rai_reinduction_probability: {reinduction}
""",
        "s.yaml",
    )


def _cohort(scenario: Any, patients: list[int]) -> Cohort:
    """``patients`` (numbers of the pool) simulated as one cohort, each from its own stream, enrolled on
    day ``number``."""
    gens = [np.random.default_rng(np.random.SeedSequence(SEED, spawn_key=(p,))) for p in patients]
    n = len(patients)
    return simulate_chunk(
        PATHWAY, scenario, Streams(gens, [1] * n), np.zeros(n, np.int64), np.array(patients, dtype=float)
    )


def _assert_same_patient(got: Cohort, alone: Cohort, who: int) -> None:
    """Every per-patient value of the one-patient cohorts ``got`` and ``alone`` is the same."""
    for name in Cohort.__dataclass_fields__:
        if name in ("pathway", "scenario", "memo", "_before"):
            continue
        a, b = getattr(got, name), getattr(alone, name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg=f"patient {who}: {name}")
        elif isinstance(a, dict):
            assert a.keys() == b.keys(), (who, name)
            for k in a:
                if isinstance(a[k], np.ndarray):
                    np.testing.assert_array_equal(a[k], b[k], err_msg=f"patient {who}: {name}[{k}]")
                else:
                    assert a[k] == b[k], (who, name, k)
        elif isinstance(a, list):
            assert len(a) == len(b), (who, name)
            for s, t in zip(a, b, strict=True):
                assert (s.treatment, s.level) == (t.treatment, t.level), (who, name)
                for f in ("start", "stop", "dose_mg_per_day"):
                    np.testing.assert_array_equal(getattr(s, f), getattr(t, f), err_msg=f"patient {who}: {f}")
        else:
            assert a == b, (who, name)


def _check(scenario: Any, patients: list[int], decided: int | None, on_rare: int | None) -> None:
    """The cohort of ``patients`` has ``decided`` decided patients and ``on_rare`` on the rare branch (None:
    not checked), and each patient's every value is the one it gets simulated alone; the criteria of
    the decided patients are those of the criteria evaluated over the whole cohort."""
    c = _cohort(scenario, patients)
    rare = [b.id for b in PATHWAY.branches].index(RARE)
    if decided is not None:
        assert int(c.decided.sum()) == decided
    if on_rare is not None:
        assert int((c.branch == rare).sum()) == on_rare
        assert 4 * on_rare < c.size  # few enough for the rare-branch placement
    whole = evaluate_criteria(criteria_inputs(c))
    for cid, (codes, labels) in whole.items():
        assert c.labels[cid] == labels
        np.testing.assert_array_equal(c.codes[cid][c.decided], codes[c.decided], err_msg=cid)
    for j, p in enumerate(patients):
        _assert_same_patient(subset(c, np.array([j])), _cohort(scenario, [p]), p)


@pytest.fixture(scope="module")
def pool() -> dict[str, Cohort]:
    """The pool with many deaths (only a few patients live to the decision) and the usual rates, each with
    every patient re-induced (so every decided patient with RAI uptake takes the rare branch)."""
    return {
        "deaths": _cohort(_scenario(0.4, 1.0), list(POOL)),
        "usual": _cohort(_scenario(0.005, 1.0), list(POOL)),
    }


def test_no_patient_decided_none_on_the_rare_branch(pool: dict[str, Cohort]) -> None:
    undecided = [p for p in POOL if not pool["deaths"].decided[p]]
    _check(_scenario(0.4, 1.0), undecided, decided=0, on_rare=0)


@pytest.mark.parametrize("reinduction", [0.0, 1.0])
def test_one_patient_decided_on_the_rare_branch_or_not(pool: dict[str, Cohort], reinduction: float) -> None:
    c = pool["deaths"]
    rare = [b.id for b in PATHWAY.branches].index(RARE)
    on_rare = [p for p in POOL if c.branch[p] == rare]
    assert on_rare  # a decided patient of the pool takes the rare branch when re-induced
    patients = [p for p in POOL if not c.decided[p]] + on_rare[:1]
    _check(_scenario(0.4, reinduction), sorted(patients), decided=1, on_rare=int(reinduction == 1.0))


@pytest.mark.parametrize("on_rare", [0, 1])
def test_many_decided_none_or_one_on_the_rare_branch(pool: dict[str, Cohort], on_rare: int) -> None:
    c = pool["usual"]
    rare = [b.id for b in PATHWAY.branches].index(RARE)
    off = [p for p in POOL if c.branch[p] != rare]
    on = [p for p in POOL if c.branch[p] == rare][:on_rare]
    decided = [p for p in off if c.decided[p]]
    assert 1 < len(decided) < len(off)  # decided and undecided patients: the criteria on a copy
    _check(_scenario(0.005, 1.0), sorted(off + on), decided=None, on_rare=on_rare)


def test_many_decided_many_on_the_rare_branch(pool: dict[str, Cohort]) -> None:
    """The whole-cohort placement (most patients on the branch) checked the same way."""
    c = pool["usual"]
    rare = [b.id for b in PATHWAY.branches].index(RARE)
    assert 4 * int((c.branch == rare).sum()) >= c.size
    _check(_scenario(0.005, 1.0), list(POOL), decided=None, on_rare=None)
