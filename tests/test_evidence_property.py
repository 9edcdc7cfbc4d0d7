"""Property (issue 9): when every record of a case file lies inside its criterion's declared ranges, the
decision's criterion outcomes equal ``trialflow rules eval`` on the same file.

Random patients on the bundled protocol: a baseline CT and scan between d-14 and d0 (inside the baseline
window and at most 28 days before day 0), 0-2 interim CTs and scans in d1-d174, the 6-month CT and scan
in their window d175-d196, 4-8 Tg samples with TgAb on distinct days d0-d196 and now and then an extra
TgAb. Diameters have up to two decimals, lesions come and go, RaI-avid lesions are tagged or not. One
store holds every example (a new patient each), so the property stays cheap.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from evidence_helpers import DECISION_DAY, day, decision, patient, rules_eval
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from workflow_helpers import new_db_url, new_store

from trialflow.engine import Store

_IDS = itertools.count(1)

diameter = st.one_of(
    st.integers(5, 60).map(float), st.decimals(5, 60, places=2, allow_nan=False, allow_infinity=False).map(float)
)
site = st.sampled_from(["neck", "lung-left-lower", "mediastinum"])
avid = st.lists(
    st.one_of(site, st.fixed_dictionaries({"id": site, "modality": st.sampled_from(["planar", "spect"])})), max_size=2
)
modalities = st.sampled_from([["planar", "spect"], ["planar"], ["spect"]])


@st.composite
def course(draw: st.DrawFn) -> list[dict[str, Any]]:
    ntarget = draw(st.integers(1, 3))

    def ct(n: int) -> dict[str, Any]:
        return {
            "kind": "ct",
            "date": day(n).isoformat(),
            "slice_thickness_mm": 5,
            "target": [{"id": f"T{i + 1}", "organ": "lung", "diameter_mm": draw(diameter)} for i in range(ntarget)],
            "non_target": [
                {
                    "id": "N1",
                    "organ": "bone",
                    "status": draw(st.sampled_from(["present", "present", "absent", "unequivocal_progression"])),
                }
            ],
            "new_lesions": draw(st.lists(st.just("liver"), max_size=1)),
        }

    def scan(n: int) -> dict[str, Any]:
        return {
            "kind": "rai_scan",
            "date": day(n).isoformat(),
            "modalities": draw(modalities),
            "avid_lesions": draw(avid),
        }

    base = draw(st.integers(-14, 0))
    interim = draw(st.lists(st.integers(1, 174), max_size=2, unique=True))
    final = draw(st.integers(175, 196))
    records = [ct(base), scan(base)]
    records[0]["non_target"][0]["status"] = "present"
    for n in sorted(interim):
        records.append(ct(n))
        if draw(st.booleans()):
            records.append(scan(n))
    records += [ct(final), scan(final)]
    tg_days = draw(st.lists(st.integers(0, 196), min_size=4, max_size=8, unique=True))
    for n in sorted(tg_days):
        records.append(
            {
                "kind": "tg",
                "date": day(n).isoformat(),
                "value": draw(st.floats(1, 500).map(lambda v: round(v, 1))),
                "unit": "ug/L",
                "loq": 0.2,
            }
        )
        records.append(
            {
                "kind": "tgab",
                "date": day(n).isoformat(),
                "result": draw(st.sampled_from(["negative"] * 9 + ["positive"])),
            }
        )
    extra = draw(st.lists(st.integers(1, 196).filter(lambda n: n not in tg_days), max_size=1))
    records += [{"kind": "tgab", "date": day(n).isoformat(), "result": "positive"} for n in extra]
    return records


def test_inside_the_declared_ranges_the_decision_says_what_rules_eval_says(tmp_path: Path) -> None:
    store: Store = new_store(next(new_db_url("sqlite", tmp_path)))

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(records=course())
    def check(records: list[dict[str, Any]]) -> None:
        pid = f"P-{next(_IDS) + 2000}"
        patient(store, pid, records)
        preview = decision(store, pid)
        assert preview.ready and preview.as_of == DECISION_DAY
        for cid, rule in (("rai_uptake", "rai_uptake"), ("tg_slope", "tg_slope"), ("recist", "recist")):
            cli = rules_eval(tmp_path, rule, pid, records)
            res = preview.criteria[cid]
            assert res["outcome"] == cli["outcome"], (cid, res["reason"], cli["reason"])
            assert res["reason"] == cli["reason"]
            assert not res["differs_from_rules_eval"]
            assert all(r["used"] for r in res["evidence"]["records"])

    try:
        check()
    finally:
        store.close()
