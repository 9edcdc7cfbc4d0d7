"""The protocol model as JSON data (``protocol show --json``)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._model import Phase, Protocol

__all__ = ["protocol_to_dict"]


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if hasattr(obj, "to_dict") and type(obj).__name__ == "Condition":
            return obj.to_dict()
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [_plain(v) for v in obj]
    if hasattr(obj, "items"):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def _phase(p: Phase) -> dict[str, Any]:
    d = _plain(p)
    d["terminal"] = p.terminal
    return d


def protocol_to_dict(proto: Protocol) -> dict[str, Any]:
    return {
        "study": _plain(proto.study),
        "content_hash": proto.content_hash,
        "source_file": proto.source_file,
        "day0": proto.day0_event,
        "treatments": _plain(proto.treatments),
        "eligibility": _plain(proto.eligibility),
        "assessments": _plain(proto.assessments),
        "initial_phase": proto.initial_phase.id,
        "phases": {p.id: _phase(p) for p in proto.phases},
        "transitions": _plain(proto.transitions),
        "triggers": proto.triggers.as_dict(),
        "early_termination": _plain(proto.early_termination),
        "decision": _plain(proto.decision),
    }
