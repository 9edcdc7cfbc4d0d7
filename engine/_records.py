"""What a coordinator records: the rules' observations plus the treatment records the engine needs.

Observations (Tg, TgAb, CT, RaI scan, adverse events, dose changes) are the rules' own classes
(:mod:`trialflow.rules.observations`). Administering 131I and dispensing Sorafenib are recorded too,
so the worklist knows when a treatment visit is done and when the next supply is due.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from trialflow.rules.observations import OBSERVATION_TYPES, UPPER_LIMITS, Observation

__all__ = ["RECORD_TYPES", "RaiTherapy", "Record", "SorafenibDispense", "record_from_dict"]


def _positive(d: Mapping[str, Any], key: str) -> float:
    """A finite number > 0 and within the quantity's upper limit (NaN, infinity and 1e308 are not data)."""
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{key} must be a finite number > 0, got {v!r}")
    if key in UPPER_LIMITS and v > UPPER_LIMITS[key]:
        raise ValueError(f"{key} must be at most {UPPER_LIMITS[key]:g}, got {v!r}")
    return float(v)


@dataclass(frozen=True, slots=True)
class RaiTherapy:
    """A therapeutic 131I administration."""

    kind: ClassVar[str] = "rai_therapy"
    date: dt.date
    activity_mbq: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "date": self.date.isoformat(), "activity_mbq": self.activity_mbq}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RaiTherapy:
        return cls(dt.date.fromisoformat(str(d["date"])), _positive(d, "activity_mbq"))


@dataclass(frozen=True, slots=True)
class SorafenibDispense:
    """Tablets handed out: a daily dose for a number of days."""

    kind: ClassVar[str] = "dispense"
    date: dt.date
    dose_mg_per_day: float
    days_supply: int = 28

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "date": self.date.isoformat(), "dose_mg_per_day": self.dose_mg_per_day,
                "days_supply": self.days_supply}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SorafenibDispense:
        days = d.get("days_supply", 28)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
            raise ValueError(f"days_supply must be a whole number of days 1-365, got {days!r}")
        return cls(dt.date.fromisoformat(str(d["date"])), _positive(d, "dose_mg_per_day"), days)


Record: TypeAlias = Observation | RaiTherapy | SorafenibDispense
RECORD_TYPES: dict[str, type[Any]] = {**OBSERVATION_TYPES, RaiTherapy.kind: RaiTherapy,
                                      SorafenibDispense.kind: SorafenibDispense}


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
