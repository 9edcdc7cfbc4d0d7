"""Turning validated protocol data into the frozen :class:`Protocol` model."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from ._model import (
    Assessment,
    Branch,
    Condition,
    Criterion,
    Decision,
    EarlyTermination,
    Eligibility,
    EligibilityCriterion,
    EvidenceSelection,
    Phase,
    PhaseTreatment,
    PlausibleRange,
    Protocol,
    Study,
    Transition,
    Treatment,
    Triggers,
    Visit,
    VisitTreatment,
    Window,
    WithdrawalReason,
    frozen_mapping,
)
from ._rule_refs import RuleKinds, RuleParams

__all__ = ["build_protocol", "content_hash"]


def content_hash(data: Any) -> str:
    """sha256 of the canonical JSON of the protocol data: comments and layout do not change it."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _condition(d: dict[str, Any]) -> Condition:
    if "criterion" in d:
        return Condition("criterion", criterion=d["criterion"], outcomes=tuple(d["in"]))
    if "favourable" in d:
        return Condition("favourable", favourable=bool(d["favourable"]))
    if "not" in d:
        return Condition("not", children=(_condition(d["not"]),))
    kind: Literal["any", "all"] = "any" if "any" in d else "all"
    return Condition(kind, children=tuple(_condition(c) for c in d[kind]))


def _visit(d: dict[str, Any], phase: str) -> Visit:
    t = d.get("treatment")
    return Visit(
        id=d["id"], name=d["name"], phase=phase, day=d["day"],
        window=Window(d["window"]["before"], d["window"]["after"]),
        assessments=tuple(d.get("assessments", [])),
        treatment=VisitTreatment(t["id"], t.get("activity_mbq"), t.get("dose_mg_per_day")) if t else None,
        source=d["source"], note=d.get("note"),
    )


def _phase(d: dict[str, Any]) -> Phase:
    t = d.get("treatment")
    return Phase(
        id=d["id"], name=d["name"], kind=d["kind"], anchor=d.get("anchor"),
        duration_days=d.get("duration_days"),
        treatment=PhaseTreatment(t["id"], t.get("dose_mg_per_day")) if t else None,
        visits=tuple(_visit(v, d["id"]) for v in d.get("visits", [])),
        source=d["source"], note=d.get("note"),
    )


def _criterion(d: dict[str, Any]) -> Criterion:
    # the rule's defaults and kinds are read from the registry when first used (see _rule_refs): a command
    # that only reads the schedule never loads a rule plug-in
    ev = d.get("evidence", {})
    days = ev.get("study_days", {})
    evidence = EvidenceSelection(
        kinds=tuple(ev["kinds"]) if ev.get("kinds") else RuleKinds(d["rule"]),
        from_day=days.get("from"), to_day=days.get("to"),
        # without an evidence block: the criterion's visit windows only, the reading stored protocol
        # versions were decided under (docs/DOMAIN.md, "What each criterion judges")
        final_visit=ev.get("final_visit"), unscheduled=ev.get("unscheduled", "include" if ev else "exclude"),
        source=ev.get("source"),
        note=ev.get("note"),
    )
    return Criterion(
        id=d["id"], name=d["name"], rule=d["rule"], visits=tuple(d["visits"]),
        params=RuleParams(d["rule"], d.get("params", {})),
        favourable=tuple(d["favourable"]), source=d["source"], note=d.get("note"), evidence=evidence,
    )


def build_protocol(data: dict[str, Any], source_file: str) -> Protocol:
    """The frozen model of schema- and semantically-valid data."""
    s, dec, et = data["study"], data["decision"], data["early_termination"]
    migration = s.get("migration", {})
    return Protocol(
        study=Study(
            id=s["id"], title=s["title"], version=s["version"], enrolment_target=s["enrolment_target"],
            design=s.get("design"), objective=s.get("objective"),
            migration_default=migration.get("default", "stay"),
            migration_stay_from_phase=migration.get("stay_from_phase"), source=s["source"],
        ),
        day0_event=data["day0"]["event"],
        treatments=tuple(
            Treatment(
                id=t["id"], name=t["name"], dose_mg_per_day=t.get("dose_mg_per_day"),
                regimen=t.get("regimen"),
                dose_levels_mg_per_day=tuple(t.get("dose_levels_mg_per_day", ())),
                activity_mbq=t.get("activity_mbq"), source=t["source"], note=t.get("note"),
            )
            for t in data["treatments"]
        ),
        eligibility=Eligibility(
            inclusion=tuple(EligibilityCriterion(c["id"], c["question"], c["source"], c.get("note"))
                            for c in data["eligibility"]["inclusion"]),
            exclusion=tuple(EligibilityCriterion(c["id"], c["question"], c["source"], c.get("note"))
                            for c in data["eligibility"]["exclusion"]),
        ),
        assessments=tuple(
            Assessment(a["id"], a["name"], tuple(a["observation_kinds"]), a["source"], a.get("note"))
            for a in data["assessments"]
        ),
        phases=tuple(_phase(p) for p in data["phases"]),
        transitions=tuple(
            Transition(t["trigger"], t["source"], t["dest"], t.get("description"))
            for t in data["transitions"]
        ),
        early_termination=EarlyTermination(
            dest=et["dest"], from_phases=tuple(et["from"]),
            reasons=tuple(WithdrawalReason(r["id"], r.get("description")) for r in et["reasons"]),
            source=et["source"],
        ),
        decision=Decision(
            id=dec["id"], name=dec["name"], phase=dec["phase"],
            criteria=tuple(_criterion(c) for c in dec["criteria"]),
            min_criteria=dec["favourable_response"]["min_criteria"],
            favourable_description=dec["favourable_response"].get("description"),
            branches=tuple(
                Branch(
                    id=b["id"], to=b["to"], when=_condition(b["when"]) if "when" in b else None,
                    default=bool(b.get("default", False)), description=b.get("description"),
                    source=b["source"],
                )
                for b in dec["branches"]
            ),
            source=dec["source"],
        ),
        content_hash=content_hash(data),
        source_file=source_file,
        data=frozen_mapping(data),
        triggers=Triggers(**data.get("triggers", {})),
        plausibility=tuple(
            PlausibleRange(r["kind"], r["field"], r.get("min"), r.get("max"), r.get("unit"), r["source"],
                           r.get("note"))
            for r in data.get("plausibility", ())
        ),
    )
