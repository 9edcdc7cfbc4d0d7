"""``trialflow export fhir``: HL7 FHIR R5 resources built with fhir.resources (each one validated by its model).

* ResearchStudy: the study, its arms (``comparisonGroup``, one per decision branch), the enrolment
  target, the primary objective, and ``protocol`` → the PlanDefinition;
* PlanDefinition: the protocol version; one action per phase, one sub-action per visit with
  ``relatedAction`` = *after-start* of its phase's anchor (``offsetDuration``: the target day) and
  ``timingRange``: the window, in days from the anchor;
* ResearchSubject per patient: ``progress`` holds each phase stay (``subjectState``: screening,
  on-study-intervention, on-study, off-study, withdrawn, ineligible, with start and end dates), the
  enrolment milestone, the decision milestone (branch and next phase) and the off-study reason;
  ``subject`` is a logical reference by study id only (the store holds pseudonyms, no Patient data);
* Observation for every Tg and TgAb value: Tg as LOINC 3013-0 in ug/L (below the LoQ: ``<`` LoQ),
  TgAb as LOINC 8098-6 with the positive/negative result and its interpretation;
* Bundle (type collection) of all of them; every resource also on its own line of
  ``<Type>.ndjson`` (the FHIR Bulk Data file layout).

LOINC codes, as laboratories report them (LOINC 2.78; e.g. Mayo Clinic Laboratories' HTG2 /
TGAB test definitions and ARUP 0050105):
  3013-0  Thyroglobulin [Mass/volume] in Serum or Plasma
  8098-6  Thyroglobulin Ab [Units/volume] in Serum
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialflow.engine import PatientState, Store, fold
from trialflow.protocol import Protocol
from trialflow.rules.observations import TgAbResult, TgSample

from ._access import readable_events
from ._output import output_folder, private_file

__all__ = ["LOINC_TG", "LOINC_TGAB", "FhirExport", "export_fhir", "fhir_resources"]

LOINC = "http://loinc.org"
LOINC_TG = ("3013-0", "Thyroglobulin [Mass/volume] in Serum or Plasma")
LOINC_TGAB = ("8098-6", "Thyroglobulin Ab [Units/volume] in Serum")
UCUM = "http://unitsofmeasure.org"
STATE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-subject-state"
PROGRESS_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-subject-progress"
MILESTONE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-subject-milestone"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
STUDY_EXTENSION = "http://hl7.org/fhir/StructureDefinition/workflow-researchStudy"
ID_SYSTEM = "https://trialflow.invalid/fhir/study-id"  # the study's own pseudonyms (reserved domain, RFC 2606)
_NS = uuid.UUID("6f0b8c1e-3c2d-4a5e-9b7f-2e1d0c9a8b7f")


@dataclass(frozen=True, slots=True)
class FhirExport:
    folder: str
    bundle: str
    counts: dict[str, int]


def _fhir_id(text: str) -> str:
    """A FHIR id ([A-Za-z0-9-.]{1,64}): protocol ids use underscores."""
    return text.replace("_", "-")[:64]


def _uuid(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, '/'.join(parts))}"


def _days(value: int) -> dict[str, Any]:
    return {"value": value, "unit": "days", "system": UCUM, "code": "d"}


def _state_of(protocol: Protocol, phase_id: str) -> str:
    phase = protocol.phase(phase_id)
    if phase.kind == "screening":
        return "screening"
    if phase.kind == "treatment":
        return "on-study-intervention"
    if phase.kind == "decision":
        return "on-study"
    if phase_id == protocol.early_termination.dest:
        return "withdrawn"
    if any(t.dest == phase_id and t.source == protocol.initial_phase.id for t in protocol.transitions):
        return "ineligible"  # the terminal phase reached from screening: screen failure
    return "off-study"


def _plan_definition(protocol: Protocol, study_ref: str) -> dict[str, Any]:
    actions = []
    for phase in protocol.phases:
        if phase.terminal:
            continue
        anchor = {"day0": "study day 0 (first dose)", "enrolment": "enrolment"}.get(phase.anchor or "",
                                                                                  "entry into the phase")
        sub = []
        for v in phase.visits:
            what = ", ".join([*(protocol.assessment(a).name for a in v.assessments),
                              *([protocol.treatment(v.treatment.id).name] if v.treatment else [])])
            sub.append({
                "id": _fhir_id(v.id), "title": v.name, "description": f"{what}: day {v.day} from {anchor}, window "
                                                            f"-{v.window.before}/+{v.window.after} days",
                "relatedAction": [{"targetId": _fhir_id(phase.id), "relationship": "after-start",
                                   "offsetDuration": _days(v.day)}],
                "timingRange": {"low": _days(v.first_day), "high": _days(v.last_day)},
            })
        action: dict[str, Any] = {"id": _fhir_id(phase.id), "title": phase.name, "description": f"{phase.kind} phase; "
                                  f"visits counted from {anchor}"}
        if phase.duration_days:
            action["timingDuration"] = _days(phase.duration_days)
        if sub:
            action["action"] = sub
        actions.append(action)
    return {
        "resourceType": "PlanDefinition", "id": f"{protocol.study.id}-v{protocol.version}",
        "url": f"https://trialflow.invalid/fhir/PlanDefinition/{protocol.study.id}-v{protocol.version}",
        "version": protocol.version, "name": protocol.study.id.replace("-", "_"), "title": protocol.study.title,
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/plan-definition-type",
                             "code": "clinical-protocol", "display": "Clinical Protocol"}]},
        "status": "active", "subjectCodeableConcept": {"text": "Research subject"},
        "description": f"Protocol {protocol.study.id} v{protocol.version} (sha256 {protocol.content_hash})",
        "extension": [{"url": STUDY_EXTENSION, "valueReference": {"reference": study_ref}}],
        "action": actions,
    }


def _research_study(protocol: Protocol, plan_ref: str) -> dict[str, Any]:
    dec = protocol.decision
    return {
        "resourceType": "ResearchStudy", "id": protocol.study.id,
        "identifier": [{"system": ID_SYSTEM, "value": protocol.study.id}],
        "title": protocol.study.title, "version": protocol.version, "status": "active",
        "protocol": [{"reference": plan_ref}],
        "primaryPurposeType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/research-study-prim-purp-type",
                                           "code": "treatment", "display": "Treatment"}]},
        "descriptionSummary": protocol.study.design or protocol.study.title,
        "description": protocol.study.objective,
        "recruitment": {"targetNumber": protocol.study.enrolment_target},
        "comparisonGroup": [{"linkId": _fhir_id(b.id), "name": b.id, "description": f"{b.description or b.id} → {b.to}"}
                            for b in dec.branches],
        "objective": [{"name": "primary", "type": {"coding": [{
            "system": "http://hl7.org/fhir/research-study-objective-type", "code": "primary"}]},
            "description": dec.favourable_description or dec.name}],
    }


def _subject_ref(patient: str) -> dict[str, Any]:
    return {"identifier": {"system": ID_SYSTEM, "value": patient}, "display": patient}


def _research_subject(protocol: Protocol, state: PatientState, study_ref: str) -> dict[str, Any]:
    progress: list[dict[str, Any]] = [{
        "type": {"coding": [{"system": PROGRESS_SYSTEM, "code": "milestone"}]},
        "milestone": {"coding": [{"system": MILESTONE_SYSTEM, "code": "SignedUp", "display": "Signed up"}]},
        "startDate": state.enrolled_on.isoformat(),
    }]
    for stint in state.stints:
        entry: dict[str, Any] = {
            "type": {"coding": [{"system": PROGRESS_SYSTEM, "code": "state"}]},
            "subjectState": {"coding": [{"system": STATE_SYSTEM, "code": _state_of(protocol, stint.phase)}],
                             "text": protocol.phase(stint.phase).name},
            "startDate": stint.entered.isoformat(),
        }
        if stint.left is not None:
            entry["endDate"] = stint.left.isoformat()
        phase = protocol.phase(stint.phase)
        if phase.terminal:
            why = (state.withdrawal.reason if state.withdrawal is not None and stint.phase ==
                   protocol.early_termination.dest else phase.name)
            entry["reason"] = {"text": why}
        progress.append(entry)
    for d in state.decisions:
        p = d.payload
        progress.append({
            "type": {"coding": [{"system": PROGRESS_SYSTEM, "code": "milestone"}]},
            "milestone": {"text": f"Decision {p['decision']}: branch {p['branch']} → {p['to']}"
                                  + (" (investigator override)" if p.get("override") else "")},
            "startDate": d.effective_date.isoformat(),
            "reason": {"text": ", ".join(f"{k} {v}" for k, v in p["outcomes"].items())
                               + f"; favourable: {'yes' if p['favourable'] else 'no'}"},
        })
    decided = state.decisions[-1].payload["branch"] if state.decisions else None
    out: dict[str, Any] = {
        "resourceType": "ResearchSubject", "id": state.patient,
        "identifier": [{"system": ID_SYSTEM, "value": state.patient}], "status": "active",
        "study": {"reference": study_ref}, "subject": _subject_ref(state.patient),
        "period": {"start": state.enrolled_on.isoformat()}, "progress": progress,
    }
    if protocol.phase(state.phase).terminal:
        out["period"]["end"] = state.phase_entered.isoformat()
    if decided:
        out["actualComparisonGroup"] = _fhir_id(decided)
    return out


def _observations(state: PatientState, study_ref: str) -> list[dict[str, Any]]:
    out = []
    for value in state.records:
        rec = value.record
        if not isinstance(rec, TgSample | TgAbResult):
            continue
        obs: dict[str, Any] = {
            "resourceType": "Observation", "id": f"{state.patient}-{rec.kind}-{rec.date.isoformat()}",
            "status": "corrected" if value.corrected else "final",
            "category": [{"coding": [{"system": CATEGORY, "code": "laboratory"}]}],
            "subject": _subject_ref(state.patient), "effectiveDateTime": rec.date.isoformat(),
            "issued": (value.recorded_at if value.recorded_at.tzinfo else value.recorded_at.replace(tzinfo=dt.UTC))
            .isoformat(),
            "performer": [{"display": value.user}],
            "extension": [{"url": STUDY_EXTENSION, "valueReference": {"reference": study_ref}}],
        }
        if isinstance(rec, TgSample):
            obs["code"] = {"coding": [{"system": LOINC, "code": LOINC_TG[0], "display": LOINC_TG[1]}],
                           "text": "Serum thyroglobulin"}
            if rec.below_loq:
                obs["valueQuantity"] = {"value": rec.loq, "comparator": "<", "unit": "ug/L", "system": UCUM,
                                        "code": "ug/L"}
            else:
                obs["valueQuantity"] = {"value": rec.value, "unit": "ug/L", "system": UCUM, "code": "ug/L"}
            notes = []
            if rec.loq is not None:
                notes.append(f"limit of quantification {rec.loq:g} ug/L")
            if rec.stimulated:
                notes.append("TSH-stimulated sample")
            if notes:
                obs["note"] = [{"text": "; ".join(notes)}]
        else:
            obs["code"] = {"coding": [{"system": LOINC, "code": LOINC_TGAB[0], "display": LOINC_TGAB[1]}],
                           "text": "Anti-thyroglobulin antibodies"}
            obs["valueCodeableConcept"] = {"text": rec.result}
            obs["interpretation"] = [{"coding": [{"system": INTERPRETATION, "code": "POS" if rec.result == "positive"
                                                  else "NEG"}]}]
        out.append(obs)
    return out


def fhir_resources(store: Store, actor: Any = None) -> list[Any]:
    """Every resource as a fhir.resources R5 model (constructing each validates it)."""
    from fhir.resources import get_fhir_model_class

    protocol = store.protocol()[0]
    study_ref = _uuid("ResearchStudy", protocol.study.id)
    raw: list[tuple[str, dict[str, Any]]] = []
    versions = [store.protocol(v.content_hash)[0] for v in store.versions()]
    plan_refs = {p.content_hash: _uuid("PlanDefinition", p.study.id, p.version) for p in versions}
    raw.append((study_ref, _research_study(protocol, plan_refs[protocol.content_hash])))
    for p in versions:
        raw.append((plan_refs[p.content_hash], _plan_definition(p, study_ref)))
    for patient, events in sorted(readable_events(store, actor).items()):
        state = fold(events)
        own = store.protocol(state.protocol_hash)[0]
        raw.append((_uuid("ResearchSubject", patient), _research_subject(own, state, study_ref)))
        for obs in _observations(state, study_ref):
            raw.append((_uuid("Observation", obs["id"]), obs))
    models = []
    for full_url, resource in raw:
        model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        models.append((full_url, model))
    return models


def export_fhir(store: Store, out: str | Path, *, actor: Any = None) -> FhirExport:
    """Write ``bundle.json`` and one ``<Type>.ndjson`` per resource type into the folder ``out``."""
    from fhir.resources.bundle import Bundle

    folder = output_folder(out, private=True)  # patient data: the owner's alone, as the ODM and DV exports
    models: Sequence[tuple[str, Any]] = fhir_resources(store, actor)
    by_type: dict[str, list[str]] = {}
    for _, model in models:
        by_type.setdefault(model.get_resource_type(), []).append(model.model_dump_json(exclude_none=True))
    for kind, lines in by_type.items():
        private_file(folder / f"{kind}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    bundle = Bundle.model_validate({
        "resourceType": "Bundle", "id": f"trialflow-{store.protocol()[0].study.id}", "type": "collection",
        "timestamp": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "entry": [{"fullUrl": url, "resource": json.loads(m.model_dump_json(exclude_none=True))} for url, m in models],
    })
    path = private_file(folder / "bundle.json")
    path.write_text(bundle.model_dump_json(exclude_none=True, indent=2), encoding="utf-8")
    return FhirExport(str(folder), str(path), {k: len(v) for k, v in by_type.items()})
