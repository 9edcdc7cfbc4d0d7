"""The Study element of an ODM 1.3.2 export: GlobalVariables, BasicDefinitions and one MetaDataVersion
per registered protocol version, built with odmlib from the frozen protocol model."""

from __future__ import annotations

from collections.abc import Sequence

from trialflow.protocol import Protocol

from ._forms import GENERIC_EVENT, FormSpec, forms_for
from ._odm_model import ODM, MetaDataVersion, StudyEventDef

__all__ = [
    "DECISION_EVENT",
    "STUDY_EVENT",
    "UNITS",
    "UNSCHEDULED_EVENT",
    "build_study",
    "mdv_oid",
    "study_oid",
    "visit_event_oid",
]

STUDY_EVENT = "SE.STUDY"  # enrolment, phase changes, withdrawal, migrations
DECISION_EVENT = "SE.DECISION"
UNSCHEDULED_EVENT = "SE.UNSCHEDULED"  # records outside every visit window: adverse events, dose changes...

#: MeasurementUnit OID → symbol
UNITS = {"MU.UG_L": "ug/L", "MU.MM": "mm", "MU.MBQ": "MBq", "MU.MG": "mg", "MU.MG_D": "mg/day"}

_CTCAE = {1: "Mild", 2: "Moderate", 3: "Severe or medically significant", 4: "Life-threatening", 5: "Death"}
_OUTCOME_WORDS = {
    "CR": "Complete response", "PR": "Partial response", "SD": "Stable disease", "PD": "Progressive disease",
    "NE": "Not evaluable", "response": "Response (slope significantly below 0)",
    "stable": "Stable (slope not significantly different from 0)",
    "progression": "Progression (slope significantly above 0)", "not_evaluable": "Not evaluable",
    "reinduced": "RaI uptake re-induced", "not_reinduced": "RaI uptake not re-induced",
}


def study_oid(protocol: Protocol) -> str:
    return f"ST.{protocol.study.id}"


def mdv_oid(protocol: Protocol) -> str:
    return f"MDV.{protocol.study.id}.v{protocol.version}"


def visit_event_oid(visit_id: str) -> str:
    return f"SE.{visit_id}"


def _text(text: str) -> list[ODM.TranslatedText]:
    return [ODM.TranslatedText(_content=text, lang="en")]


def _description(text: str) -> ODM.Description:
    return ODM.Description(TranslatedText=_text(text))


def _codelist(oid: str, name: str, data_type: str, items: Sequence[tuple[object, str]]) -> ODM.CodeList:
    cl = ODM.CodeList(OID=oid, Name=name, DataType=data_type)
    for n, (value, decode) in enumerate(items, start=1):
        cl.CodeListItem.append(ODM.CodeListItem(CodedValue=str(value), OrderNumber=n,
                                                Decode=ODM.Decode(TranslatedText=_text(decode))))
    return cl


def _codelists(protocol: Protocol) -> list[ODM.CodeList]:
    from trialflow.rules import get_rule

    dec = protocol.decision
    lists = [
        _codelist("CL.YES_NO", "Yes or no", "text", [("yes", "Yes"), ("no", "No")]),
        _codelist("CL.TGAB", "Anti-thyroglobulin antibodies", "text",
                  [("positive", "Positive (immunometric Tg unreliable)"), ("negative", "Negative")]),
        _codelist("CL.NONTARGET", "RECIST non-target lesion status", "text",
                  [("present", "Present (non-CR/non-PD)"), ("absent", "Absent (complete response)"),
                   ("unequivocal_progression", "Unequivocal progression"), ("not_evaluated", "Not evaluated")]),
        _codelist("CL.MODALITY", "Scintigraphy modality", "text", [("planar", "Planar images"), ("spect", "SPECT")]),
        _codelist("CL.CTCAE_GRADE", "CTCAE grade", "integer", list(_CTCAE.items())),
        _codelist("CL.PHASE", "Protocol phases", "text", [(p.id, p.name) for p in protocol.phases]),
        _codelist("CL.BRANCH", f"Branches of decision {dec.id}", "text",
                  [(b.id, f"{b.description or b.id} → {b.to}") for b in dec.branches]),
        _codelist("CL.WITHDRAWAL", "Early termination reasons", "text",
                  [(r.id, r.description or r.id) for r in protocol.early_termination.reasons]),
    ]
    for rule in dict.fromkeys(c.rule for c in dec.criteria):
        outcomes = get_rule(rule).outcomes
        lists.append(_codelist(f"CL.OUTCOME_{rule.upper()}", f"Outcomes of rule {rule}", "text",
                               [(o, _OUTCOME_WORDS.get(o, o)) for o in outcomes]))
    return lists


def _form_defs(mdv: MetaDataVersion, forms: Sequence[FormSpec]) -> None:
    for form in forms:
        fd = ODM.FormDef(OID=form.oid, Name=form.name, Repeating="Yes")
        for n, group in enumerate(form.groups, start=1):
            fd.ItemGroupRef.append(ODM.ItemGroupRef(ItemGroupOID=group.oid, OrderNumber=n,
                                                    Mandatory="Yes" if n == 1 else "No"))
            igd = ODM.ItemGroupDef(OID=group.oid, Name=group.name, Repeating="Yes" if group.repeating else "No")
            for m, item in enumerate(group.items, start=1):
                igd.ItemRef.append(ODM.ItemRef(ItemOID=item.oid, OrderNumber=m,
                                               Mandatory="Yes" if item.data_type == "date" and n == 1 else "No"))
                idef = ODM.ItemDef(OID=item.oid, Name=item.oid, DataType=item.data_type,
                                   Question=ODM.Question(TranslatedText=_text(item.label)))
                if item.sdtm:
                    idef.SDSVarName = item.sdtm
                if item.data_type == "text":
                    idef.Length = 4000 if item.codec == "json" else 200
                if item.unit:
                    idef.MeasurementUnitRef.append(ODM.MeasurementUnitRef(MeasurementUnitOID=item.unit))
                if item.codelist:
                    idef.CodeListRef = ODM.CodeListRef(CodeListOID=item.codelist)
                mdv.ItemDef.append(idef)
            mdv.ItemGroupDef.append(igd)
        mdv.FormDef.append(fd)


def _study_events(mdv: MetaDataVersion, protocol: Protocol, forms: Sequence[FormSpec]) -> None:
    from trialflow.engine._schedule import defining_kinds

    by_kind = {f.kind: f.oid for f in forms}
    records = [f.oid for f in forms if f.role == "record"]
    protocol_element = mdv.Protocol
    assert protocol_element is not None  # set by build_metadata_version before the events
    order = 0

    def add(sed: StudyEventDef, mandatory: bool) -> None:
        nonlocal order
        order += 1
        protocol_element.StudyEventRef.append(ODM.StudyEventRef(StudyEventOID=sed.OID, OrderNumber=order,
                                                            Mandatory="Yes" if mandatory else "No"))
        mdv.StudyEventDef.append(sed)

    study = StudyEventDef(OID=STUDY_EVENT, Name="Study course", Repeating="No", Type="Common",
                          Description=_description("Enrolment with the eligibility answers, every phase change, "
                                                   "early termination and protocol-version migrations"))
    for n, kind in enumerate(("enrolled", "phase_changed", "withdrawn", "migrated", GENERIC_EVENT), start=1):
        study.FormRef.append(ODM.FormRef(FormOID=by_kind[kind], OrderNumber=n, Mandatory="Yes" if n == 1 else "No"))
    add(study, True)
    for phase in protocol.phases:
        for visit in phase.visits:
            sed = StudyEventDef(OID=visit_event_oid(visit.id), Name=visit.name, Repeating="No", Type="Scheduled",
                                Category=phase.name, Phase=phase.id, Anchor=phase.anchor or "phase_entry",
                                StudyDay=visit.day, WindowBefore=visit.window.before, WindowAfter=visit.window.after,
                                Description=_description(
                                    f"{phase.id}: day {visit.day} from "
                                    f"{'study day 0 (first dose)' if phase.anchor == 'day0' else phase.anchor}, "
                                    f"window -{visit.window.before}/+{visit.window.after} days"))
            kinds = list(dict.fromkeys(defining_kinds(protocol, visit)))
            for n, kind in enumerate(kinds, start=1):
                sed.FormRef.append(ODM.FormRef(FormOID=by_kind[kind], OrderNumber=n, Mandatory="Yes"))
            add(sed, True)
        if phase.id == protocol.decision.phase:
            dec = StudyEventDef(OID=DECISION_EVENT, Name=protocol.decision.name, Repeating="No", Type="Scheduled",
                                Category=phase.name, Phase=phase.id, Anchor="phase_entry", StudyDay=0,
                                WindowBefore=0, WindowAfter=0,
                                Description=_description("The investigator's decision with every criterion's "
                                                         "outcome and evidence; signed"))
            dec.FormRef.append(ODM.FormRef(FormOID=by_kind["decision"], OrderNumber=1, Mandatory="Yes"))
            add(dec, False)
    unscheduled = StudyEventDef(OID=UNSCHEDULED_EVENT, Name="Unscheduled records", Repeating="Yes", Type="Common",
                                Description=_description("Records outside every visit window: adverse events, "
                                                         "dose changes, extra samples and scans"))
    for n, oid in enumerate(records, start=1):
        unscheduled.FormRef.append(ODM.FormRef(FormOID=oid, OrderNumber=n, Mandatory="No"))
    add(unscheduled, False)


def build_metadata_version(protocol: Protocol) -> MetaDataVersion:
    forms = forms_for(protocol)
    mdv = MetaDataVersion(OID=mdv_oid(protocol), Name=f"{protocol.study.id} v{protocol.version}",
                          Description=f"Protocol {protocol.study.id} version {protocol.version} "
                                      f"(sha256 {protocol.content_hash[:12]})",
                          ProtocolVersion=protocol.version, ContentHash=protocol.content_hash)
    mdv.Protocol = ODM.Protocol(Description=_description(protocol.study.title))
    _study_events(mdv, protocol, forms)
    _form_defs(mdv, forms)
    mdv.CodeList.extend(_codelists(protocol))
    return mdv


def build_study(protocols: Sequence[Protocol]) -> ODM.Study:
    """The Study with one MetaDataVersion per protocol version (oldest first)."""
    latest = protocols[-1]
    gv = ODM.GlobalVariables(StudyName=ODM.StudyName(_content=latest.study.id),
                             StudyDescription=ODM.StudyDescription(_content=latest.study.title),
                             ProtocolName=ODM.ProtocolName(_content=latest.study.id))
    basic = ODM.BasicDefinitions()
    for oid, symbol in UNITS.items():
        basic.MeasurementUnit.append(ODM.MeasurementUnit(OID=oid, Name=symbol, Symbol=ODM.Symbol(
            TranslatedText=_text(symbol))))
    return ODM.Study(OID=study_oid(latest), GlobalVariables=gv, BasicDefinitions=basic,
                     MetaDataVersion=[build_metadata_version(p) for p in protocols])
