"""The Leiden sorafenib cohort as a check of the model (Schneider et al., Eur J Endocrinol 2012;167:643-650).

Published: 31 patients; 26 evaluable by RECIST 1.0, partial response 8 and stable disease 11; no
meaningful re-induction of RaI uptake (0 of 31). The bundled scenario ``leiden-2012`` must reproduce
these: its pooled simulated proportions lie inside the published exact 95 % intervals, and the published
counts inside the central 95 % of the binomial distribution a trial of that size has under the model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scipy.stats import binom

from trialflow.engine.design import clopper_pearson
from trialflow.engine.simulation import load_scenario, simulate

PATIENTS, EVALUABLE, PR, SD, REINDUCED = 31, 26, 8, 11, 0


@pytest.fixture(scope="module")
def leiden():
    return simulate(PATIENTS, seed=2012, runs=400, scenario="leiden-2012")


def _recist(r):
    got = r.criteria["recist"]
    evaluable = sum(got.get(k, 0) for k in ("CR", "PR", "SD", "PD"))
    return got, evaluable


@pytest.mark.parametrize(
    ("name", "published", "of"),
    [
        ("PR", PR, EVALUABLE),
        ("SD", SD, EVALUABLE),
        ("evaluable", EVALUABLE, PATIENTS),
        ("reinduced", REINDUCED, PATIENTS),
    ],
)
def test_schneider_2012_leiden_cohort_within_the_published_95_percent_intervals(leiden, name, published, of):
    got, evaluable = _recist(leiden)
    simulated = {
        "PR": (got.get("PR", 0) + got.get("CR", 0)) / evaluable,
        "SD": got.get("SD", 0) / evaluable,
        "evaluable": evaluable / leiden.pathways,
        "reinduced": leiden.criteria["rai_uptake"].get("reinduced", 0) / leiden.pathways,
    }[name]
    lo, hi = clopper_pearson(published, of)
    assert lo <= simulated <= hi, f"{name}: simulated {simulated:.3f}, published {published}/{of} [{lo:.3f}, {hi:.3f}]"
    # and the published count is a plausible outcome of one trial of that size under the model
    assert binom.ppf(0.025, of, simulated) <= published <= binom.ppf(0.975, of, simulated)


def test_the_leiden_scenario_is_bundled_and_cites_its_source():
    sc = load_scenario("leiden-2012")
    assert sc.rai_reinduction_probability == 0
    text = Path(sc.source_file).read_text(encoding="utf-8")
    assert "Schneider" in text and "22918300" in text
