"""The ODM form table: every record a coordinator can store survives ItemData values and comes back equal."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from trialflow.engine import record_from_dict
from trialflow.engine._records import RECORD_TYPES
from trialflow.exchange._forms import EXTRA_ITEM, decode, flatten, forms_for, unflatten
from trialflow.protocol import load_bundled_protocol

PROTOCOL = load_bundled_protocol()
FORMS = {f.kind: f for f in forms_for(PROTOCOL)}


def _through_odm(payload: dict[str, Any], kind: str | None = None) -> dict[str, Any]:
    """flatten → the Value strings ODM carries → decode → unflatten, as export and import do."""
    form = FORMS.get(kind or payload["kind"]) or FORMS["*record"]
    rows = flatten(form, payload)
    items = {i.oid: (g, i) for g in form.groups for i in g.items}
    decoded: dict[str, list[dict[str, Any]]] = {}
    for group_oid, group_rows in rows.items():
        for row in group_rows:
            out = {}
            for oid, text in row.items():
                _, item = items[oid]
                out[EXTRA_ITEM if oid.endswith(EXTRA_ITEM) else item.key] = decode(item, text)
            decoded.setdefault(group_oid, []).append(out)
    return unflatten(form, decoded)


SAMPLES: dict[str, dict[str, Any]] = {
    "tg": {"kind": "tg", "date": "2026-02-09", "value": 95.5, "loq": 0.2, "stimulated": True},
    "tgab": {"kind": "tgab", "date": "2026-02-09", "result": "positive"},
    "ct": {"kind": "ct", "date": "2026-07-13", "slice_thickness_mm": 5,
           "target": [{"id": "T1", "organ": "lung", "diameter_mm": 0}, {"id": "T2", "organ": "lymph_node",
                                                                        "diameter_mm": 12, "nodal": True},
                      {"id": "T3", "organ": "liver", "diameter_mm": None, "too_small": True},
                      {"id": "T4", "organ": "lung", "diameter_mm": 14, "fragments_mm": [8, 6]}],
           "non_target": [{"id": "N1", "organ": "bone", "status": "unequivocal_progression"}],
           "new_lesions": ["liver segment 4"]},
    "rai_scan": {"kind": "rai_scan", "date": "2026-07-13", "modalities": ["planar"],
                 "avid_lesions": ["T1", {"id": "N1", "modality": "planar"}]},
    "adverse_event": {"kind": "adverse_event", "date": "2026-02-20", "term": "Hypertension", "grade": 3},
    "dose_change": {"kind": "dose_change", "date": "2026-03-01", "dose_mg_per_day": 400, "reason": "grade 3 HFSR"},
    "dispense": {"kind": "dispense", "date": "2026-01-12", "dose_mg_per_day": 800, "days_supply": 28},
    "rai_therapy": {"kind": "rai_therapy", "date": "2026-08-17", "activity_mbq": 6000},
}


def test_every_record_kind_has_a_form_and_comes_back_equal() -> None:
    assert set(RECORD_TYPES) <= set(SAMPLES)  # a new record kind needs its sample here (and its form)
    for kind, sample in SAMPLES.items():
        stored = record_from_dict(sample).to_dict()
        assert record_from_dict(_through_odm(stored)).to_dict() == stored, kind


def test_a_record_kind_without_a_form_travels_whole_through_the_generic_form() -> None:
    payload = {"kind": "deviation", "date": "2026-03-03", "category": "visit out of window", "visit": "tg_w8"}
    assert _through_odm(payload) == payload


def test_event_payloads_with_nulls_and_nested_answers_come_back_equal() -> None:
    enrolled = {"protocol_hash": "ab" * 32, "protocol_version": "1.0", "phase": "screening", "eligible": False,
                "unmet": ["prior_tki"], "eligibility": {c.id: "yes" for c in PROTOCOL.eligibility.inclusion}}
    assert _through_odm(enrolled, "enrolled") == enrolled
    withdrawn = {"reason": "toxicity", "note": None}
    assert _through_odm(withdrawn, "withdrawn") == withdrawn
    decision = {"decision": "month6", "outcomes": {"rai_uptake": "not_reinduced", "tg_slope": "stable", "recist": "PD"},
                "favourable": True, "favourable_criteria": ["tg_slope"], "ready": True, "missing": [],
                "recommended_branch": "favourable_without_uptake", "recommended_phase": "continued_sorafenib",
                "branch": "no_response", "to": "off_study", "override": True, "flags": ["discordant: ..."],
                "criteria": {"tg_slope": {"outcome": "stable", "slope": 0.0014, "p_value": 0.745, "n": 8}}}
    assert _through_odm(decision, "decision") == decision


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.none(), st.floats(min_value=0.01, max_value=1e5, allow_nan=False)),
       loq=st.one_of(st.none(), st.floats(min_value=0.01, max_value=10, allow_nan=False)),
       stimulated=st.booleans(), day=st.integers(min_value=0, max_value=400))
def test_any_tg_result_survives_the_odm_values(value: float | None, loq: float | None, stimulated: bool,
                                                day: int) -> None:
    """Values as Python floats print and parse back exactly (repr round-trips), below-LoQ results included."""
    date = (dt.date(2026, 1, 12) + dt.timedelta(days=day)).isoformat()
    data: dict[str, Any] = {"kind": "tg", "date": date, "stimulated": stimulated}
    if value is None:
        if loq is None:
            return
        data.update(value=f"<{loq!r}")
    else:
        data.update(value=value, loq=loq)
    stored = record_from_dict(data).to_dict()
    assert record_from_dict(_through_odm(stored)).to_dict() == stored


@settings(max_examples=100, deadline=None)
@given(diameters=st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=300_000).map(lambda n: n / 1000)),
                          min_size=1, max_size=5),  # diameters as read: to 0.001 mm at most
       statuses=st.lists(st.sampled_from(["present", "absent", "unequivocal_progression", "not_evaluated"]),
                         max_size=3),
       new=st.lists(st.text(alphabet="abcdefghij ", min_size=1, max_size=12), max_size=2))
def test_any_ct_read_survives_the_odm_values(diameters: list[float | None], statuses: list[str],
                                              new: list[str]) -> None:
    data = {"kind": "ct", "date": "2026-07-13",
            "target": [{"id": f"T{i}", "organ": "lung", "diameter_mm": d} for i, d in enumerate(diameters)],
            "non_target": [{"id": f"N{i}", "organ": "bone", "status": s} for i, s in enumerate(statuses)],
            "new_lesions": new}
    stored = record_from_dict(data).to_dict()
    assert record_from_dict(_through_odm(stored)).to_dict() == stored
