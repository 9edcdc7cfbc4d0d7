"""``trialflow export sdtm-dv``: the SDTM DV (Protocol Deviations) domain from the store's deviation events.

DV is an events-class domain (SDTMIG v3.4, section 6.2 "Protocol Deviations"): one row per deviation a
site recorded (``trialflow deviation ID VISIT --kind KIND --reason ...``). Variables:

* STUDYID, DOMAIN ("DV"), USUBJID (the study id and the patient id, ``<STUDYID>-<patient>``), DVSEQ (the
  deviation's number within the subject, in the order they were recorded);
* DVTERM, the deviation as the site described it (the visit, what happened, the reason given);
* DVDECOD, its coded term: the deviation kind in the sponsor's terminology (SDTM publishes no controlled
  terminology for DVDECOD): MISSED VISIT, VISIT OUT OF WINDOW, VISIT ASSESSMENT NOT DONE, OTHER;
* VISITNUM and VISIT of the planned visit, numbered as the TV domain of ``export sdtm-design`` numbers them;
* DVSTDTC, the date of the deviation (the date it was recorded for), ISO 8601.

A visit skipped on purpose (``trialflow skip``) is not a deviation and has no row. The rows are those of
the patients the actor may read, as every export; the files hold patient data and are written mode 0600.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialflow.engine import Store, fold

from ._access import readable_events
from ._output import output_folder
from ._sdtm import visit_numbers, write_dataset

__all__ = ["DV_DECOD", "DV_VARIABLES", "SdtmDeviations", "deviation_rows", "export_sdtm_dv"]

DEVIATION = "deviation"  # the engine's event kind (trialflow.engine._state.DEVIATION)

#: the deviation kinds the engine records → DVDECOD
DV_DECOD = {"missed": "MISSED VISIT", "out_of_window": "VISIT OUT OF WINDOW", "not_done": "VISIT ASSESSMENT NOT DONE",
            "other": "OTHER"}
_WHAT = {"missed": "missed", "out_of_window": "out of window", "not_done": "not done", "other": "deviation"}

DV_VARIABLES: tuple[str, list[tuple[str, str, str]]] = ("Protocol Deviations", [
    ("STUDYID", "Study Identifier", "string"), ("DOMAIN", "Domain Abbreviation", "string"),
    ("USUBJID", "Unique Subject Identifier", "string"), ("DVSEQ", "Sequence Number", "integer"),
    ("DVTERM", "Protocol Deviation Term", "string"), ("DVDECOD", "Protocol Deviation Coded Term", "string"),
    ("VISITNUM", "Visit Number", "integer"), ("VISIT", "Visit Name", "string"),
    ("DVSTDTC", "Start Date/Time of Deviation", "string"),
])


@dataclass(frozen=True, slots=True)
class SdtmDeviations:
    """What was written."""

    study: str
    format: str
    file: str
    rows: int
    subjects: int


def deviation_rows(store: Store, actor: Any = None) -> list[dict[str, Any]]:
    """The DV rows of every patient ``actor`` may read, by subject and then in recorded order."""
    rows: list[dict[str, Any]] = []
    protocols: dict[str, Any] = {}
    for patient, events in sorted(readable_events(store, actor).items()):
        deviations = [e for e in sorted(events, key=lambda e: e.seq) if e.kind == DEVIATION]
        if not deviations:
            continue
        content_hash = fold(events).protocol_hash
        if content_hash not in protocols:
            protocols[content_hash] = store.protocol(content_hash)[0]
        protocol = protocols[content_hash]
        study, numbers = protocol.study.id, visit_numbers(protocol)
        for n, e in enumerate(deviations, start=1):
            visit, kind = str(e.payload["visit"]), str(e.payload["kind"])
            number, name = numbers.get(visit, (None, visit))
            reason = e.payload.get("reason") or e.reason
            term = f"{name} {_WHAT.get(kind, kind)}" + (f": {reason}" if reason else "")
            rows.append({"STUDYID": study, "DOMAIN": "DV", "USUBJID": f"{study}-{patient}", "DVSEQ": n,
                         "DVTERM": term[:200], "DVDECOD": DV_DECOD.get(kind, kind.upper()), "VISITNUM": number,
                         "VISIT": name, "DVSTDTC": e.effective_date.isoformat()})
    return rows


def export_sdtm_dv(store: Store, out: str | Path, fmt: str = "json", *, actor: Any = None) -> SdtmDeviations:
    """Write ``dv.json`` (Dataset-JSON 1.1) or ``dv.csv`` into the folder ``out``."""
    rows = deviation_rows(store, actor)
    folder = output_folder(out, private=True)
    protocol = store.protocol()[0]
    path = write_dataset(folder, "DV", rows, protocol, fmt, DV_VARIABLES, private=True)
    return SdtmDeviations(protocol.study.id, fmt, str(path), len(rows), len({r["USUBJID"] for r in rows}))
