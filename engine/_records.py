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
from trialflow.rules.kinds import KINDS, load_record, read_record
from trialflow.rules.observations import Observation

__all__ = ["RECORD_TYPES", "RaiTherapy", "Record", "SorafenibDispense", "record_from_dict", "stored_record"]


Record: TypeAlias = Observation | RaiTherapy | SorafenibDispense
RECORD_TYPES: dict[str, type[Any]] = {k.name: k.record for k in KINDS.values()}  # the registry's classes


def record_from_dict(d: Mapping[str, Any]) -> Record:
    """The record a dict from outside stands for, checked against its kind's schema; ``ValueError`` with one
    line if unusable (:func:`trialflow.rules.kinds.read_record`)."""
    try:
        rec: Record = read_record(d)
    except KeyError as err:
        raise ValueError(f"{err.args[0]} is missing") from None
    return rec


def stored_record(d: Mapping[str, Any]) -> Record:
    """A record as the store holds it (checked when it was written): built, not checked again."""
    rec: Record = load_record(d)
    return rec
