"""``trialflow export odm``: the store as one CDISC ODM 1.3.2 document, built with odmlib and checked
against the ODM 1.3.2 schema before it is handed out."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialflow.engine import Refused, Store

from ._access import readable_events
from ._odm_admin import build_admin, read_team
from ._odm_clinical import build_clinical
from ._odm_metadata import build_study
from ._odm_model import ODM, register_namespaces
from ._odm_schema import validate_odm_file

__all__ = ["OdmExport", "export_odm"]


@dataclass(frozen=True, slots=True)
class OdmExport:
    """What was written: the document's identity and what it holds."""

    file: str | None  # None: the text is in ``xml``
    file_oid: str
    metadata_versions: tuple[str, ...]
    patients: int
    events: int
    users: int
    schema: str  # what it was validated against
    xml: str | None = None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trialflow")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0"


def export_odm(store: Store, out: str | Path | None = None, *, metadata_only: bool = False,
               actor: Any = None) -> OdmExport:
    """Build, validate and write the ODM document (to ``out``, or return its text).

    Patient data is read as ``actor`` may read it (a store with users: an authenticated user, who sees the
    patients of their sites); the metadata alone needs no one."""
    register_namespaces()
    versions = store.versions()
    if not versions:
        raise Refused("the store has no protocol registered: run `trialflow init`")
    protocols = [store.protocol(v.content_hash)[0] for v in versions]
    by_hash = {p.content_hash: p for p in protocols}
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    latest = protocols[-1]
    file_oid = f"trialflow.{latest.study.id}.{now.strftime('%Y%m%dT%H%M%SZ')}"
    events = {} if metadata_only else readable_events(store, actor)
    users = sorted({e.user for evs in events.values() for e in evs})
    listed = 0
    odm = ODM.ODM(
        FileOID=file_oid, FileType="Snapshot" if metadata_only else "Transactional",
        Granularity="Metadata" if metadata_only else "All", CreationDateTime=now.isoformat(), ODMVersion="1.3.2",
        Originator="trialflow", SourceSystem="trialflow", SourceSystemVersion=_version(),
        Description=f"{latest.study.id}: {'protocol metadata' if metadata_only else 'metadata, audit trail and data'}",
        Study=[build_study(protocols)],
    )
    if not metadata_only:
        odm.AsOfDateTime = now.isoformat()
        team = read_team(store, events)
        odm.AdminData = [build_admin(protocols, users, team)]
        listed = len(odm.AdminData[0].User)
        odm.ClinicalData = build_clinical(events, by_hash, team.patient_sites)
    text = odm.to_xml_string(xml_declaration=True)
    try:
        fd, tmp = tempfile.mkstemp(suffix=".xml", prefix=".trialflow-odm-",
                                   dir=str(Path(out).resolve().parent) if out else None)
    except OSError as err:
        raise Refused(f"cannot write {out}: {err.strerror or err} (is its folder there?)") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        validate_odm_file(tmp)  # never hand out a document the schema refuses
        if out is not None:
            try:
                os.replace(tmp, out)
            except OSError as err:
                raise Refused(f"cannot write {out}: {err.strerror or err}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return OdmExport(
        file=str(out) if out else None, file_oid=file_oid,
        metadata_versions=tuple(f"{p.study.id} v{p.version}" for p in protocols), patients=len(events),
        events=sum(len(v) for v in events.values()), users=listed,
        schema="ODM 1.3.2 (odmlib's bundled XSD) with trialflow's extension", xml=None if out else text,
    )
