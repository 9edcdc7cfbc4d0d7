"""The bundled Sorafenib protocol reads back as the synopsis and DOMAIN.md describe it."""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any

import pytest
from protocol_helpers import edit

from trialflow.engine import machine_for
from trialflow.protocol import (
    Protocol,
    bundled_protocol_path,
    load_bundled_protocol,
    load_protocol,
    parse_protocol,
)


@pytest.fixture(scope="module")
def proto() -> Protocol:
    return load_bundled_protocol()


def test_bundled_protocol_validates(proto: Protocol) -> None:
    assert proto.study.id == "sorafenib-dtc"
    assert proto.study.enrolment_target == 30
    assert proto.initial_phase.id == "screening"
    assert load_protocol(bundled_protocol_path()) == proto


def test_tg_is_sampled_at_weeks_0_to_28_every_4_weeks(proto: Protocol) -> None:
    tg = [v for v in proto.visits_observing("tg") if v.phase == "sorafenib_6m"]
    assert [v.id for v in sorted(tg, key=lambda v: v.day)] == [f"tg_w{w}" for w in range(0, 29, 4)]
    assert sorted(v.day for v in tg) == [0, 28, 56, 84, 112, 140, 168, 196]
    assert proto.phase("sorafenib_6m").anchor == "day0"
    # the Tg criterion reads exactly those eight visits
    assert proto.decision.criterion("tg_slope").visits == tuple(f"tg_w{w}" for w in range(0, 29, 4))


def test_scintigraphy_and_ct_at_baseline_and_after_6_months(proto: Protocol) -> None:
    assert [v.id for v in proto.visits_observing("rai_scan") if v.phase in ("screening", "sorafenib_6m")] == [
        "baseline_rai_scan",
        "month6_rai_scan",
    ]
    assert [v.id for v in proto.visits_observing("ct") if v.phase in ("screening", "sorafenib_6m")] == [
        "baseline_ct",
        "month6_ct",
    ]
    assert proto.decision.criterion("rai_uptake").visits == ("baseline_rai_scan", "month6_rai_scan")
    assert proto.decision.criterion("recist").visits == ("baseline_ct", "month6_ct")


def test_6000_mbq_radioiodine(proto: Protocol) -> None:
    assert proto.treatment("rai_6000").activity_mbq == 6000
    given = proto.visit("rai_therapy")
    assert given.phase == "rai_plus_sorafenib"
    assert given.treatment is not None
    assert (given.treatment.id, given.treatment.activity_mbq) == ("rai_6000", 6000)


def test_sorafenib_800_mg_per_day(proto: Protocol) -> None:
    sorafenib = proto.treatment("sorafenib")
    assert sorafenib.dose_mg_per_day == 800
    assert sorafenib.dose_levels_mg_per_day == (800, 600, 400, 200)
    for phase_id in ("sorafenib_6m", "rai_plus_sorafenib", "continued_sorafenib"):
        t = proto.phase(phase_id).treatment
        assert t is not None
        assert (t.id, t.dose_mg_per_day) == ("sorafenib", 800)


def test_three_branches_in_order_default_last(proto: Protocol) -> None:
    branches = proto.decision.branches
    assert [b.to for b in branches] == ["rai_plus_sorafenib", "continued_sorafenib", "off_study"]
    assert [b.default for b in branches] == [False, False, True]
    assert branches[-1].when is None
    assert all(b.when is not None for b in branches[:-1])
    assert proto.decision.phase == "decision_6m"
    assert proto.decision.min_criteria == 1


def test_decision_criteria_name_their_rules_and_parameters(proto: Protocol) -> None:
    dec = proto.decision
    assert [(c.id, c.rule) for c in dec.criteria] == [
        ("rai_uptake", "rai_uptake"),
        ("tg_slope", "tg_slope"),
        ("recist", "recist"),
    ]
    tg = dec.criterion("tg_slope").params
    assert (tg["alpha"], tg["test"], tg["min_values"]) == (0.05, "two_sided", 4)
    assert dec.criterion("recist").params["version"] == "1.0"
    assert dec.criterion("rai_uptake").params["min_new_avid_lesions"] == 1
    assert proto.criterion_params("tg_slope") == dict(tg)


def test_every_active_phase_can_be_left_early(proto: Protocol) -> None:
    et = proto.early_termination
    active = [p.id for p in proto.phases if not p.terminal]
    assert active == ["screening", "sorafenib_6m", "decision_6m", "rai_plus_sorafenib", "continued_sorafenib"]
    assert set(et.from_phases) == set(active)
    assert proto.phase(et.dest).terminal
    assert set(et.reason_ids) >= {
        "consent",
        "toxicity",
        "death",
        "lost_to_follow_up",
        "progression",
        "investigator",
    }
    machine = machine_for(proto)
    for phase_id in active:
        assert machine.fire("SDTC-001", phase_id, "withdraw") == et.dest


# The decision of DOMAIN.md, written out by hand, not derived from the protocol:
#   re-induced → RaI arm; otherwise any favourable criterion (Tg response/stable, RECIST CR/PR/SD)
#   → continued Sorafenib; otherwise off study.
# Rows: Tg outcome; columns: RECIST outcome; cell: where a patient *without* re-induction goes
# (C = continued_sorafenib, O = off_study). With re-induction every cell is the RaI arm.
_RECIST = ("CR", "PR", "SD", "PD", "NE")
# fmt: off
_WITHOUT_REINDUCTION = {
    #                 CR   PR   SD   PD   NE
    "response":      ("C", "C", "C", "C", "C"),
    "stable":        ("C", "C", "C", "C", "C"),
    "progression":   ("C", "C", "C", "O", "O"),
    "not_evaluable": ("C", "C", "C", "O", "O"),
}
# fmt: on
_PHASE = {"C": "continued_sorafenib", "O": "off_study", "R": "rai_plus_sorafenib"}


def _expected(rai: str, tg: str, recist: str) -> str:
    if rai == "reinduced":
        return _PHASE["R"]
    return _PHASE[_WITHOUT_REINDUCTION[tg][_RECIST.index(recist)]]


@pytest.mark.parametrize("rai", ["reinduced", "not_reinduced", "not_evaluable"])
def test_decision_matches_the_hand_written_truth_table(proto: Protocol, rai: str) -> None:
    for tg, recist in itertools.product(_WITHOUT_REINDUCTION, _RECIST):
        outcomes = {"rai_uptake": rai, "tg_slope": tg, "recist": recist}
        assert proto.decision.choose(outcomes).to == _expected(rai, tg, recist), outcomes


def test_decision_covers_every_outcome_the_rules_can_give(proto: Protocol) -> None:
    from trialflow.rules import get_rule

    assert set(get_rule("tg_slope").outcomes) == set(_WITHOUT_REINDUCTION)
    assert set(get_rule("recist").outcomes) == set(_RECIST)
    assert set(get_rule("rai_uptake").outcomes) == {"reinduced", "not_reinduced", "not_evaluable"}


def test_discordant_pd_with_stable_tg_continues_as_written(proto: Protocol) -> None:
    outcomes = {"rai_uptake": "not_reinduced", "tg_slope": "stable", "recist": "PD"}
    assert proto.decision.is_favourable(outcomes)
    assert proto.decision.favourable_criteria(outcomes) == ("tg_slope",)
    assert proto.decision.choose(outcomes).id == "favourable_without_uptake"


def test_missing_outcomes_are_not_favourable(proto: Protocol) -> None:
    assert proto.decision.choose({}).to == "off_study"
    assert proto.decision.choose({"recist": "SD"}).to == "continued_sorafenib"


# --- content hash ---------------------------------------------------------------------------------------


def test_content_hash_ignores_comments_and_layout(bundled_protocol_text: str, proto: Protocol) -> None:
    text = edit(bundled_protocol_text, "  source: synopsis\n\nday0:", "  source: synopsis\nday0:")
    text = "# amended layout, same content\n" + text.replace("\n\n", "\n\n# a comment\n\n")
    text = edit(
        text,
        "    dose_levels_mg_per_day: [800, 600, 400, 200]\n",
        "    dose_levels_mg_per_day:    # trailing comment\n"
        "      - 800\n      - 600\n      - 400\n      - 200\n",
    )
    text = edit(text, '  version: "1.0"\n', "  version:   '1.0'   \n")
    reordered = edit(
        edit(text, "  id: sorafenib-dtc\n", ""),
        "  enrolment_target: 30\n",
        "  enrolment_target: 30\n  id: sorafenib-dtc\n",
    )
    for variant in (text, reordered):
        amended = parse_protocol(variant, "amended.yaml")
        assert amended.content_hash == proto.content_hash
        assert amended == dataclasses.replace(proto, source_file="amended.yaml")


def test_content_hash_changes_with_a_value(bundled_protocol_text: str, proto: Protocol) -> None:
    text = edit(bundled_protocol_text, "  enrolment_target: 30\n", "  enrolment_target: 31\n")
    assert parse_protocol(text).content_hash != proto.content_hash
    text = edit(bundled_protocol_text, "params: {alpha: 0.05,", "params: {alpha: 0.01,")
    assert parse_protocol(text).content_hash != proto.content_hash


def test_content_hash_is_a_sha256_hex_digest(proto: Protocol) -> None:
    assert len(proto.content_hash) == 64
    int(proto.content_hash, 16)


# --- JSON and immutability ---------------------------------------------------------------------------------


def test_to_dict_is_json_with_eligibility_ids_and_phases_by_id(proto: Protocol) -> None:
    d = json.loads(json.dumps(proto.to_dict(), allow_nan=False))
    inclusion = [c["id"] for c in d["eligibility"]["inclusion"]]
    exclusion = [c["id"] for c in d["eligibility"]["exclusion"]]
    assert {"dtc_histology", "recurrence_or_metastases", "rai_refractory"} <= set(inclusion)
    assert "medullary_or_anaplastic" in exclusion
    assert all(
        c["source"] in ("synopsis", "domain", "assumption")
        for c in d["eligibility"]["inclusion"] + d["eligibility"]["exclusion"]
    )
    assert list(d["phases"]) == [p.id for p in proto.phases]
    assert {"rai_plus_sorafenib", "continued_sorafenib", "off_study"} <= set(d["phases"])
    assert d["phases"]["sorafenib_6m"]["duration_days"] == 196
    assert d["phases"]["off_study"]["terminal"] is True
    assert [b["to"] for b in d["decision"]["branches"]] == [
        "rai_plus_sorafenib",
        "continued_sorafenib",
        "off_study",
    ]
    assert d["decision"]["branches"][0]["when"] == {"criterion": "rai_uptake", "in": ["reinduced"]}
    assert d["content_hash"] == proto.content_hash


def test_protocol_model_is_frozen(proto: Protocol) -> None:
    model: Any = proto  # assignments a type checker would refuse are the point of this test
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.study = proto.study
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.phases[0].id = "elsewhere"
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.decision.branches[0].to = "off_study"
    with pytest.raises(TypeError):
        model.decision.criteria[1].params["alpha"] = 0.5  # a read-only mapping
    with pytest.raises(TypeError):
        model.data["study"] = {}
    assert isinstance(proto.phases, tuple) and isinstance(proto.visits, tuple)
    assert hash(proto) == hash(load_protocol(bundled_protocol_path()))
