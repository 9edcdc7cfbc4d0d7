"""The ODM form of every event trialflow stores: one FormDef per kind, its item groups and items.

This table is the single mapping between trialflow's event payloads and ODM ItemOIDs. The export
flattens a payload through it, the import rebuilds the payload from the ItemData it finds, so both
directions read the same declaration. ItemOIDs are lower-case snake case on purpose: they are valid
REDCap variable names, so a REDCap project built from trialflow's metadata keeps them unchanged and
its ODM export maps straight back.

A payload key the table does not name (a field added by a newer trialflow, say) is not lost: it
travels as JSON in the form's ``extra_json`` item and comes back unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from trialflow.protocol import Protocol

__all__ = [
    "EVENT_KIND",
    "EVENT_PAYLOAD",
    "EXTRA_ITEM",
    "GENERIC_EVENT",
    "GENERIC_RECORD",
    "FormSpec",
    "GroupSpec",
    "ItemSpec",
    "decode",
    "encode",
    "flatten",
    "forms_for",
    "item_index",
    "unflatten",
]

DataType = Literal["text", "integer", "float", "date", "boolean"]

#: the item that carries payload keys the form does not declare (JSON text)
EXTRA_ITEM = "extra_json"
#: the kind of the forms that hold what the table has no form for
GENERIC_RECORD = "*record"
GENERIC_EVENT = "*"
#: the generic event form's items for the event kind and its whole payload
EVENT_KIND, EVENT_PAYLOAD = "event_kind", "event_payload"


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """One ItemDef: where its value sits in the payload and how it is written."""

    oid: str
    key: str
    label: str
    data_type: DataType
    unit: str | None = None  # MeasurementUnit OID
    codelist: str | None = None  # CodeList OID
    codec: Literal["plain", "csv", "json"] = "plain"  # csv: a list of words; json: any JSON value
    sdtm: str | None = None  # the SDTM variable the value would land in (SDSVarName)


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """One ItemGroupDef. ``key`` None: the record's own fields (a dotted item key such as
    ``outcomes.recist`` reaches into a mapping); otherwise the payload list the repeating group holds."""

    oid: str
    name: str
    items: tuple[ItemSpec, ...]
    key: str | None = None
    scalar: bool = False  # a list of plain values (each row one item)

    @property
    def repeating(self) -> bool:
        return self.key is not None


@dataclass(frozen=True, slots=True)
class FormSpec:
    """One FormDef, standing for one event kind (``event``) or record kind (``record``)."""

    oid: str
    name: str
    kind: str
    role: Literal["record", "event"]
    groups: tuple[GroupSpec, ...]

    @property
    def items(self) -> tuple[ItemSpec, ...]:
        return tuple(i for g in self.groups for i in g.items)

    @property
    def main(self) -> GroupSpec:
        return self.groups[0]


def _i(oid: str, key: str, label: str, data_type: DataType = "text", **kw: Any) -> ItemSpec:
    return ItemSpec(oid, key, label, data_type, **kw)


def _extra(prefix: str) -> ItemSpec:
    return _i(f"{prefix}_{EXTRA_ITEM}", "", "Further fields (JSON)", codec="json")


def _record_forms() -> list[FormSpec]:
    tg = FormSpec("F.TG", "Serum thyroglobulin", "tg", "record", (
        GroupSpec("IG.TG", "Thyroglobulin result", (
            _i("tg_date", "date", "Date of the Tg sample", "date", sdtm="LBDTC"),
            _i("tg_value", "value", "Serum Tg", "float", unit="MU.UG_L", sdtm="LBORRES"),
            _i("tg_unit", "unit", "Unit of the Tg value as reported", sdtm="LBORRESU"),
            _i("tg_loq", "loq", "Limit of quantification of the assay", "float", unit="MU.UG_L", sdtm="LBLLOQ"),
            _i("tg_below_loq", "below_loq", "Below the limit of quantification", "boolean"),
            _i("tg_stimulated", "stimulated", "TSH-stimulated sample", "boolean"),
            _extra("tg"),
        )),
    ))
    tgab = FormSpec("F.TGAB", "Anti-thyroglobulin antibodies", "tgab", "record", (
        GroupSpec("IG.TGAB", "TgAb result", (
            _i("tgab_date", "date", "Date of the TgAb sample", "date", sdtm="LBDTC"),
            _i("tgab_result", "result", "TgAb", codelist="CL.TGAB", sdtm="LBORRES"),
            _extra("tgab"),
        )),
    ))
    ct = FormSpec("F.CT", "CT for RECIST", "ct", "record", (
        GroupSpec("IG.CT", "CT assessment", (
            _i("ct_date", "date", "Date of the CT", "date", sdtm="TRDTC"),
            _i("ct_slice_thickness", "slice_thickness_mm", "Slice thickness", "float", unit="MU.MM"),
            _i("ct_not_evaluated", "not_evaluated", "The CT could not be assessed", "boolean"),
            _extra("ct"),
        )),
        GroupSpec("IG.CT_TARGET", "Target lesions", (
            _i("ct_target_id", "id", "Target lesion id", sdtm="TRLNKID"),
            _i("ct_target_organ", "organ", "Organ", sdtm="TULOC"),
            _i("ct_target_diameter", "diameter_mm", "Longest diameter (short axis for a node)", "float",
               unit="MU.MM", sdtm="TRORRES"),
            _i("ct_target_nodal", "nodal", "Lymph node", "boolean"),
            _i("ct_target_too_small", "too_small", "Present but too small to measure", "boolean"),
            _i("ct_target_fragments", "fragments_mm", "Diameters of the fragments of a split lesion (mm)",
               codec="json"),
        ), key="target"),
        GroupSpec("IG.CT_NONTARGET", "Non-target lesions", (
            _i("ct_nontarget_id", "id", "Non-target lesion id", sdtm="TRLNKID"),
            _i("ct_nontarget_organ", "organ", "Organ", sdtm="TULOC"),
            _i("ct_nontarget_status", "status", "Status", codelist="CL.NONTARGET", sdtm="TRORRES"),
            _i("ct_nontarget_nodal", "nodal", "Lymph node", "boolean"),
        ), key="non_target"),
        GroupSpec("IG.CT_NEW", "New lesions", (
            _i("ct_new_lesion", "", "New lesion (id or site)", sdtm="TRLNKID"),
        ), key="new_lesions", scalar=True),
    ))
    rai_scan = FormSpec("F.RAI_SCAN", "131I scintigraphy", "rai_scan", "record", (
        GroupSpec("IG.RAI_SCAN", "Scintigraphy", (
            _i("rai_scan_date", "date", "Date of the scintigraphy", "date"),
            _i("rai_scan_modalities", "modalities", "Modalities acquired (planar, spect)", codec="csv"),
            _extra("rai_scan"),
        )),
        GroupSpec("IG.RAI_SCAN_AVID", "RaI-avid lesions", (
            _i("rai_avid_id", "id", "RaI-avid lesion (id or site)"),
            _i("rai_avid_modality", "modality", "Seen on", codelist="CL.MODALITY"),
        ), key="avid_lesions"),
    ))
    ae = FormSpec("F.AE", "Adverse event", "adverse_event", "record", (
        GroupSpec("IG.AE", "Adverse event (CTCAE)", (
            _i("ae_date", "date", "Onset date", "date", sdtm="AESTDTC"),
            _i("ae_term", "term", "CTCAE term", sdtm="AETERM"),
            _i("ae_grade", "grade", "CTCAE grade", "integer", codelist="CL.CTCAE_GRADE", sdtm="AETOXGR"),
            _i("ae_serious", "serious", "Serious adverse event", "boolean", sdtm="AESER"),
            _extra("ae"),
        )),
    ))
    dose = FormSpec("F.DOSE_CHANGE", "Sorafenib dose change", "dose_change", "record", (
        GroupSpec("IG.DOSE_CHANGE", "Dose change", (
            _i("dose_date", "date", "Date of the change", "date", sdtm="EXSTDTC"),
            _i("dose_mg_per_day", "dose_mg_per_day", "New daily dose (0 = interrupted)", "float", unit="MU.MG_D",
               sdtm="EXDOSE"),
            _i("dose_reason", "reason", "Reason", sdtm="EXADJ"),
            _extra("dose"),
        )),
    ))
    dispense = FormSpec("F.DISPENSE", "Sorafenib dispensing", "dispense", "record", (
        GroupSpec("IG.DISPENSE", "Dispensing", (
            _i("dispense_date", "date", "Date dispensed", "date", sdtm="EXSTDTC"),
            _i("dispense_dose", "dose_mg_per_day", "Daily dose", "float", unit="MU.MG_D", sdtm="EXDOSE"),
            _i("dispense_days", "days_supply", "Days of supply", "integer"),
            _extra("dispense"),
        )),
    ))
    therapy = FormSpec("F.RAI_THERAPY", "131I therapy", "rai_therapy", "record", (
        GroupSpec("IG.RAI_THERAPY", "Radioiodine administered", (
            _i("rai_therapy_date", "date", "Date administered", "date", sdtm="EXSTDTC"),
            _i("rai_therapy_activity", "activity_mbq", "Activity", "float", unit="MU.MBQ", sdtm="EXDOSE"),
            _extra("rai_therapy"),
        )),
    ))
    # a record kind this table does not know yet (added by a newer trialflow): its kind and fields as JSON
    other = FormSpec("F.RECORD", "Other record", GENERIC_RECORD, "record", (
        GroupSpec("IG.RECORD", "Record", (
            _i("record_kind", "kind", "Record kind"),
            _i("record_date", "date", "Date", "date"),
            _extra("record"),
        )),
    ))
    return [tg, tgab, ct, rai_scan, ae, dose, dispense, therapy, other]


def _event_forms(protocol: Protocol) -> list[FormSpec]:
    answers = tuple(_i(f"elig_{c.id}", f"eligibility.{c.id}", c.question, codelist="CL.YES_NO", sdtm="IEORRES")
                    for c in (*protocol.eligibility.inclusion, *protocol.eligibility.exclusion))
    enrol = FormSpec("F.ENROLMENT", "Enrolment and eligibility", "enrolled", "event", (
        GroupSpec("IG.ENROLMENT", "Enrolment", (
            _i("enrol_date", "", "Date of enrolment", "date", sdtm="RFICDTC"),
            _i("enrol_protocol_version", "protocol_version", "Protocol version"),
            _i("enrol_protocol_hash", "protocol_hash", "Protocol content hash (sha256)"),
            _i("enrol_phase", "phase", "First phase", codelist="CL.PHASE"),
            _i("enrol_eligible", "eligible", "Eligible", "boolean"),
            _i("enrol_unmet", "unmet", "Criteria not met", codec="csv"),
            *answers,
            _extra("enrol"),
        )),
    ))
    phase = FormSpec("F.PHASE_CHANGE", "Phase change", "phase_changed", "event", (
        GroupSpec("IG.PHASE_CHANGE", "Phase change", (
            _i("phase_date", "", "Date of the change", "date", sdtm="SESTDTC"),
            _i("phase_from", "from", "From phase", codelist="CL.PHASE"),
            _i("phase_to", "to", "To phase", codelist="CL.PHASE", sdtm="EPOCH"),
            _i("phase_trigger", "trigger", "Trigger"),
            _i("phase_branch", "branch", "Decision branch taken", codelist="CL.BRANCH"),
            _extra("phase"),
        )),
    ))
    withdraw = FormSpec("F.WITHDRAWAL", "Early termination", "withdrawn", "event", (
        GroupSpec("IG.WITHDRAWAL", "Early termination", (
            _i("withdrawal_date", "", "Date of withdrawal", "date", sdtm="DSSTDTC"),
            _i("withdrawal_reason", "reason", "Reason", codelist="CL.WITHDRAWAL", sdtm="DSDECOD"),
            _i("withdrawal_note", "note", "Detail", sdtm="DSTERM"),
            _extra("withdrawal"),
        )),
    ))
    decision = FormSpec("F.DECISION", protocol.decision.name, "decision", "event", (
        GroupSpec("IG.DECISION", "Decision", (
            _i("decision_date", "", "Date of the decision", "date"),
            _i("decision_id", "decision", "Decision"),
            _i("decision_favourable", "favourable", "Favourable response", "boolean"),
            _i("decision_favourable_criteria", "favourable_criteria", "Favourable criteria", codec="csv"),
            _i("decision_recommended_branch", "recommended_branch", "Recommended branch", codelist="CL.BRANCH"),
            _i("decision_recommended_phase", "recommended_phase", "Recommended phase", codelist="CL.PHASE"),
            _i("decision_branch", "branch", "Branch taken", codelist="CL.BRANCH"),
            _i("decision_to", "to", "Next phase", codelist="CL.PHASE"),
            _i("decision_override", "override", "Investigator override of the recommendation", "boolean"),
            _i("decision_ready", "ready", "Every criterion's visits done or closed", "boolean"),
            *(_i(f"outcome_{c.id}", f"outcomes.{c.id}", f"Outcome: {c.name}", codelist=f"CL.OUTCOME_{c.rule.upper()}",
                 sdtm="RSORRES") for c in protocol.decision.criteria),
            _i("decision_evidence", "criteria", "Every criterion's evidence as the rules returned it", codec="json"),
            _extra("decision"),
        )),
    ))
    migrate = FormSpec("F.MIGRATION", "Protocol version migration", "migrated", "event", (
        GroupSpec("IG.MIGRATION", "Migration", (
            _i("migration_date", "", "Date of the migration", "date"),
            _i("migration_from_version", "from_version", "From version"),
            _i("migration_to_version", "to_version", "To version"),
            _i("migration_from_hash", "from_hash", "From protocol hash"),
            _i("migration_to_hash", "to_hash", "To protocol hash"),
            _extra("migration"),
        )),
    ))
    # every other event kind (deviation, skipped visit, screen failure, reversal, signature, data query, case-book
    # lock, ...): its kind, its payload whole (a payload may have a field of its own named "kind": a deviation's
    # missed / out_of_window / ...) and the event it points at, by its id in the exporting store (as in SourceID)
    other = FormSpec("F.EVENT", "Other recorded event", GENERIC_EVENT, "event", (
        GroupSpec("IG.EVENT", "Event", (
            _i("event_date", "", "Effective date", "date"),
            _i(EVENT_KIND, "kind", "Event kind"),
            _i(EVENT_PAYLOAD, "payload", "The event's fields (JSON)", codec="json"),
            _i("event_corrects", "corrects", "The event it points at (its id in the exporting store)", "integer"),
            _extra("event"),
        )),
    ))
    return [enrol, phase, withdraw, decision, migrate, other]


def forms_for(protocol: Protocol) -> tuple[FormSpec, ...]:
    """Every form, records first (their order is the order of the ODM FormDefs)."""
    return (*_record_forms(), *_event_forms(protocol))


def item_index(forms: Sequence[FormSpec]) -> dict[str, tuple[FormSpec, GroupSpec, ItemSpec]]:
    """ItemOID → (form, group, item)."""
    return {i.oid: (f, g, i) for f in forms for g in f.groups for i in g.items}


# -- values ---------------------------------------------------------------------------------------
def encode(item: ItemSpec, value: Any) -> str:
    """The ODM ItemData Value for a payload value."""
    if item.codec == "json":
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if item.codec == "csv":
        return ",".join(str(v) for v in value)
    if item.data_type == "boolean":
        return "1" if value else "0"
    if item.data_type == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
    return str(value)


_TRUE = {"1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n"}


def decode(item: ItemSpec, text: str) -> Any:
    """The payload value for an ODM ItemData Value; ``ValueError`` naming what was expected."""
    if item.codec == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"expected JSON text, got {text[:40]!r} ({err.msg})") from None
    if item.codec == "csv":
        return [w.strip() for w in text.split(",") if w.strip()]
    if item.data_type == "boolean":
        low = text.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"expected a boolean (1/0), got {text!r}")
    if item.data_type == "integer":
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None
    if item.data_type == "float":
        try:
            number = float(text.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
        return number
    return text


def _get(payload: Mapping[str, Any], key: str) -> Any:
    outer, _, inner = key.partition(".")
    value = payload.get(outer)
    if inner:
        return value.get(inner) if isinstance(value, Mapping) else None
    return value


def flatten(form: FormSpec, payload: Mapping[str, Any]) -> dict[str, list[dict[str, str]]]:
    """Group OID → rows of ItemOID → Value (the main group has one row)."""
    covered = {i.key.split(".")[0] for i in form.main.items if i.key} | {g.key for g in form.groups if g.key}
    if form.role == "record":
        covered.add("kind")
    main: dict[str, str] = {}
    for item in form.main.items:
        if item.oid.endswith(EXTRA_ITEM):
            # a key the form does not declare, or a declared one holding None (ODM has no null value)
            extra = {k: v for k, v in payload.items() if k not in covered or v is None}
            if extra:
                main[item.oid] = encode(item, extra)
        elif item.key:
            value = _get(payload, item.key)
            if value is not None:
                main[item.oid] = encode(item, value)
    out = {form.main.oid: [main]}
    for g in form.groups[1:]:
        assert g.key is not None  # every group after the main one holds a list or a mapping
        value = payload.get(g.key)
        if not value:
            continue
        rows: list[dict[str, str]] = []
        if g.scalar:
            rows = [{g.items[0].oid: encode(g.items[0], v)} for v in value]
        else:
            for element in value:
                element = {"id": element} if isinstance(element, str) else element
                rows.append({i.oid: encode(i, element[i.key]) for i in g.items
                             if element.get(i.key) is not None and element.get(i.key) is not False})
        out[g.oid] = rows
    return out


def unflatten(form: FormSpec, rows: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The payload from decoded rows (group OID → rows of payload key → value); the inverse of flatten."""
    payload: dict[str, Any] = {"kind": form.kind} if form.role == "record" else {}
    main_rows = rows.get(form.main.oid) or [{}]
    for key, value in main_rows[0].items():
        if key == EXTRA_ITEM:
            if not isinstance(value, dict):
                raise ValueError("extra_json must hold a JSON object")
            payload.update(value)
        elif "." in key:
            outer, inner = key.split(".", 1)
            payload.setdefault(outer, {})[inner] = value
        elif key:
            payload[key] = value
    for g in form.groups[1:]:
        assert g.key is not None
        got = rows.get(g.oid, [])
        if g.scalar:
            payload[g.key] = [r.get("") for r in got]
        else:
            payload[g.key] = [dict(r) for r in got]
    return payload
