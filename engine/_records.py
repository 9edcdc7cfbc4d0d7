"""What a coordinator records: the rules' observations plus the treatment records the engine needs.

Observations (Tg, TgAb, CT, RaI scan, adverse events, dose changes) are the rules' own classes
(:mod:`trialflow.rules.observations`). Administering 131I and dispensing Sorafenib are recorded too,
so the worklist knows when a treatment visit is done and when the next supply is due. Every kind is
declared once, in :mod:`trialflow.rules.kinds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

from trialflow.rules._treatments import RaiTherapy, SorafenibDispense
from trialflow.rules.kinds import KINDS
from trialflow.rules.observations import Observation

__all__ = ["RECORD_TYPES", "RaiTherapy", "Record", "SorafenibDispense", "record_from_dict"]


Record: TypeAlias = Observation | RaiTherapy | SorafenibDispense
RECORD_TYPES: dict[str, type[Any]] = {k.name: k.record for k in KINDS.values()}  # the registry's classes


def record_from_dict(d: Mapping[str, Any]) -> Record:
    """The record a stored or imported dict stands for; ``ValueError`` with one line if unusable."""
    kind = d.get("kind")
    cls = RECORD_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown kind {kind!r} (known: {', '.join(RECORD_TYPES)})")
    if "date" not in d:
        raise ValueError("date is missing")
    try:
        rec: Record = cls.from_dict(d)
    except KeyError as err:
        raise ValueError(f"{err.args[0]} is missing") from None
    return rec
