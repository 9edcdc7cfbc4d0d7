"""The forms a coordinator fills in at a visit, each one call of the library the CLI's ``record`` makes.

A form's fields are turned into the CLI's options and then into a record by the CLI's own parsing
(``record_fields``), so the web and the terminal accept and refuse the same input. A field left blank is
not a missing flag: the record goes without it and the engine says what is missing. The write is the
library's ``record_many`` (Tg and its TgAb in one transaction); a refusal changes nothing and comes back
beside the field it concerns in the engine's words, without the CLI's advice. A value outside a plausible
range the protocol declares is refused until the form's "confirm the unusual value" reason is given, which
``record_many`` stores with the record exactly as ``trialflow record --confirm-unusual REASON`` does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from trialflow.rules.observations import AE_ACTIONS, AE_RELATEDNESS

from ._auth import Actor, NotFound, store_of
from ._render import page
from ._security import check_csrf

__all__ = ["CONFIRM", "FORMS", "FieldSpec", "FormSpec", "router"]

router = APIRouter()


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    label: str
    kind: str = "text"  # text, number, date, select, checkbox, textarea
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""
    required: bool = False
    step: str = "any"


@dataclass(frozen=True, slots=True)
class FormSpec:
    kind: str
    title: str
    fields: tuple[FieldSpec, ...]
    button: str = ""  # the patient page's link to the form
    targets: int = 0  # rows of target lesions (CT)
    non_targets: int = 0


DATE = FieldSpec("date", "Date", "date", required=True, help="the date the sample was drawn or the scan made")
_TG = FormSpec("tg", "Thyroglobulin and TgAb", (
    DATE,
    FieldSpec("value", "Tg value", required=True, help="ug/L (= ng/mL), or below the LoQ as '<0.2'"),
    FieldSpec("unit", "Unit", "select", (("ug/L", "ug/L"), ("ng/mL", "ng/mL"))),
    FieldSpec("loq", "Limit of quantitation", "number", help="ug/L; optional"),
    FieldSpec("stimulated", "Drawn after rhTSH or withdrawal (stimulated)", "checkbox"),
    FieldSpec("tgab", "TgAb (anti-thyroglobulin antibodies)", "select",
              (("", "not measured"), ("negative", "negative"), ("positive", "positive")),
              help="a Tg visit is complete with its TgAb"),
))
_CT = FormSpec("ct", "CT (RECIST)", (
    DATE,
    FieldSpec("slice_thickness", "Slice thickness (mm)", "number"),
    FieldSpec("new_lesion", "New lesions", help="sites, separated by commas; empty if none"),
    FieldSpec("not_evaluated", "The scan could not be assessed (NE)", "checkbox"),
), targets=5, non_targets=3)
_SCAN = FormSpec("rai_scan", "131I scintigraphy", (
    DATE,
    FieldSpec("modalities", "Images acquired", "select",
              (("planar,spect", "planar and SPECT"), ("planar", "planar only"), ("spect", "SPECT only")),
              required=True),
    FieldSpec("avid", "RaI-avid lesions", help="lesion ids or sites, separated by commas; empty if none"),
))
_AE = FormSpec("adverse_event", "Adverse event", (
    FieldSpec("date", "Onset date", "date", required=True, help="the day the adverse event began"),
    FieldSpec("term", "CTCAE term", required=True, help="CTCAE v5, e.g. Palmar-plantar erythrodysesthesia syndrome"),
    FieldSpec("grade", "CTCAE grade", "select", tuple((str(g), str(g)) for g in range(1, 6)), required=True),
    FieldSpec("resolved", "Resolution date", "date", help="empty while it is ongoing"),
    FieldSpec("serious", "Serious adverse event (SAE)", "checkbox"),
    FieldSpec("relatedness", "Relatedness to Sorafenib (the study drug)", "select",
              (("", "not assessed"), *((r, r.replace("_", " ")) for r in AE_RELATEDNESS))),
    FieldSpec("action", "Action taken with Sorafenib", "select", tuple((a, a.replace("_", " ")) for a in AE_ACTIONS),
              help="a dose reduction makes the next dispensing the next lower dose"),
))
_DISPENSE = FormSpec("dispense", "Sorafenib dispensing", (
    DATE,
    FieldSpec("dose", "Daily dose (mg/day)", "number", required=True),
    FieldSpec("days", "Days of supply", "number", help="default 28", step="1"),
))
_DOSE = FormSpec("dose_change", "Dose change", (
    DATE,
    FieldSpec("dose", "New daily dose (mg/day)", "number", required=True, help="0 = interrupted"),
    FieldSpec("reason", "Reason", required=True),
))
_BUTTONS = {"tg": "Tg + TgAb", "ct": "CT (RECIST)", "rai_scan": "131I scan", "adverse_event": "Adverse event",
            "dispense": "Dispensing", "dose_change": "Dose change"}
FORMS: dict[str, FormSpec] = {f.kind: dataclasses.replace(f, button=_BUTTONS[f.kind])
                              for f in (_TG, _CT, _SCAN, _AE, _DISPENSE, _DOSE)}
#: offered when the engine refuses a value outside a plausible range the protocol declares; the reason is
#: the CLI's --confirm-unusual REASON, stored with the record ("unusual value confirmed: REASON")
CONFIRM = FieldSpec("confirm_unusual", "Confirm the unusual value: why it is right", "textarea",
                    help="if the value is right (re-measured, checked with the lab), say why and record it again; "
                         "the reason is stored with it")
#: the hidden field beside it: which values the reason was given for (confirm_digest), so a reason left in the
#: field after a refusal does not confirm a value changed since
CONFIRM_FOR = "confirm_for"


def confirm_digest(values: dict[str, str]) -> str:
    """The form's values other than the confirmation itself (and the CSRF token), as one short digest."""
    import hashlib
    import json

    kept = {k: v for k, v in values.items() if k not in (CONFIRM.name, CONFIRM_FOR, "csrf_token")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:32]


_FLOATS = {"loq", "slice_thickness", "dose"}
_INTS = {"grade", "days"}
#: words in a library message → the form field it is about
_ALIASES = {"dose_mg_per_day": "dose", "days_supply": "days", "slice_thickness_mm": "slice_thickness",
            "diameter_mm": "target", "lesion": "target", "non_target": "non_target", "modality": "modalities",
            "avid_lesions": "avid", "new_lesions": "new_lesion", "result": "tgab", "dated": "date",
            "future": "date", "window": "date"}


@dataclass
class FormState:
    """What the user typed and what was wrong with it, per field ('' = the form as a whole)."""

    values: dict[str, str]
    errors: dict[str, list[str]] = field(default_factory=dict)
    unusual: bool = False  # the engine refused a value as implausible: the form offers to confirm it

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


def _spec(kind: str) -> FormSpec:
    spec = FORMS.get(kind)
    if spec is None:
        raise NotFound(f"there is no form for {kind!r} (forms: {', '.join(FORMS)})")
    return spec


def _visible(request: Request, actor: Any, patient: str) -> None:
    from trialflow.engine import Refused, status

    try:
        status(store_of(request), patient, actor=actor)
    except Refused:
        raise NotFound(f"no patient {patient!r} you may see") from None


def _options(spec: FormSpec, values: dict[str, str], state: FormState) -> dict[str, Any]:
    """The CLI's option values from the form (the conversions typer makes, with click's words)."""
    opts: dict[str, Any] = {}
    for f in spec.fields:
        raw = values.get(f.name, "").strip()
        if f.name in ("date", "tgab"):
            continue
        if f.kind == "checkbox":
            opts[f.name] = raw in ("on", "true", "1", "yes")
        elif not raw:
            opts[f.name] = None
        elif f.name in _FLOATS:
            try:
                opts[f.name] = float(raw)
            except ValueError:
                state.error(f.name, f"expected a number, got {raw!r}")
        elif f.name in _INTS:
            try:
                opts[f.name] = int(raw)
            except ValueError:
                state.error(f.name, f"expected a whole number, got {raw!r}")
        else:
            opts[f.name] = raw
    if spec.kind == "ct":
        opts["new_lesion"] = [s.strip() for s in (opts.get("new_lesion") or "").split(",") if s.strip()]
        targets = []
        for i in range(1, spec.targets + 1):
            lid, organ, mm = (values.get(f"t{i}_{k}", "").strip() for k in ("id", "organ", "mm"))
            if lid or organ or mm:
                nodal = ":nodal" if values.get(f"t{i}_nodal") in ("on", "true") else ""
                targets.append(f"{lid}:{organ or 'unknown'}:{mm}{nodal}")
        opts["target"] = targets
        non_targets = []
        for i in range(1, spec.non_targets + 1):
            lid, organ, status = (values.get(f"n{i}_{k}", "").strip() for k in ("id", "organ", "status"))
            if lid or organ:
                non_targets.append(f"{lid}:{organ or 'unknown'}:{status or 'present'}")
        opts["non_target"] = non_targets
    if spec.kind == "rai_scan":
        opts["avid"] = [s.strip() for s in (opts.get("avid") or "").split(",") if s.strip()]
    return opts


def _field_of(message: str, names: set[str]) -> str:
    """The form field a message is about: the first record field it names (else the form as a whole)."""
    words = re.findall(r"[a-z_]+", message.split(": ", 2)[-1] if message.count(": ") >= 2 else message)
    for w in words:
        name = _ALIASES.get(w, w)
        if name in names:
            return name
    return ""


def _records(spec: FormSpec, values: dict[str, str], state: FormState) -> list[dict[str, Any]]:
    import typer

    from trialflow.cli._record_options import record_fields

    raw_date = values.get("date", "").strip()
    try:
        when = dt.date.fromisoformat(raw_date)
    except ValueError:
        state.error("date", f"expected a date as YYYY-MM-DD, got {raw_date!r}")
        when = None
    opts = _options(spec, values, state)
    if state.errors:
        return []
    full = {k: None for k in ("value", "unit", "loq", "stimulated", "result", "target", "non_target", "new_lesion",
                              "slice_thickness", "not_evaluated", "modalities", "avid", "term", "grade", "dose",
                              "days", "activity", "reason", "resolved", "serious", "relatedness", "action")}
    full.update(opts)
    names = {f.name for f in spec.fields} | {"target", "non_target"}
    out = []
    try:
        out.append(record_fields(spec.kind, when, full))
        tgab = values.get("tgab", "").strip()
        if spec.kind == "tg" and tgab:
            out.append(record_fields("tgab", when, {**dict.fromkeys(full), "result": tgab}))
    except typer.BadParameter as err:
        hint = str(err.param_hint or "").lstrip("-").replace("-", "_")
        state.error(hint if hint in names else _field_of(err.message, names), err.message)
    return out


def _render(request: Request, patient: str, spec: FormSpec, state: FormState, status_code: int = 200) -> HTMLResponse:
    return page(request, "form.html", {"patient": patient, "spec": spec, "state": state, "confirm": CONFIRM,
                                       "confirm_for": (CONFIRM_FOR, confirm_digest(state.values))},
                status_code=status_code)


@router.get("/patients/{patient}/record/{kind}", response_class=HTMLResponse, include_in_schema=False)
def record_form(request: Request, patient: str, kind: str, actor: Actor) -> HTMLResponse:
    spec = _spec(kind)
    _visible(request, actor, patient)
    defaults = {"date": dt.date.today().isoformat(), "unit": "ug/L", "modalities": "planar,spect"}
    return _render(request, patient, spec, FormState(defaults))


@router.post("/patients/{patient}/record/{kind}", include_in_schema=False, dependencies=[Depends(check_csrf)])
async def record_submit(request: Request, patient: str, kind: str) -> Response:
    from starlette.concurrency import run_in_threadpool

    from ._auth import current_actor

    actor = await run_in_threadpool(current_actor, request)
    spec = _spec(kind)
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    return await run_in_threadpool(_submit, request, actor, patient, spec, values)


def _submit(request: Request, actor: Any, patient: str, spec: FormSpec, values: dict[str, str]) -> Response:
    from trialflow.engine import PermissionDenied, Refused, record_many

    _visible(request, actor, patient)
    state = FormState(values)
    records = _records(spec, values, state)
    if state.errors:
        return _render(request, patient, spec, state, 422)
    names = {f.name for f in spec.fields} | {"target", "non_target"}
    confirm = values.get(CONFIRM.name, "").strip() or None
    bound = values.get(CONFIRM_FOR)
    if confirm is not None and bound is not None and bound != confirm_digest(values):
        # the reason was given for other values (the user changed one after a refusal): it confirms nothing
        # here, and the field comes back empty if the engine asks again
        confirm = None
        state.values.pop(CONFIRM.name, None)
    try:
        written = record_many(store_of(request), [(patient, r) for r in records], actor, confirm_unusual=confirm)
    except PermissionDenied as err:
        for p in err.plain:
            state.error("", p)
        return _render(request, patient, spec, state, 403)
    except Refused as err:
        for p in err.plain:  # the engine's words, without the CLI's advice (--confirm-unusual REASON)
            state.error(_field_of(p, names), p)
        state.unusual = bool(err.unusual)
        return _render(request, patient, spec, state, 422)
    request.session["flash"] = "; ".join(w.message for w in written)
    return RedirectResponse(f"/patients/{quote(patient)}", status_code=303)
