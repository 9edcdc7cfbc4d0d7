"""The treatment records the engine needs beside the rules' observations: a therapeutic 131I
administration and a Sorafenib dispensing (no rule reads them; the worklist and the visit ledger do)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, ClassVar

from trialflow.documents._frozen import frozen

from .observations import UPPER_LIMITS

__all__ = ["RaiTherapy", "SorafenibDispense"]


def _positive(d: Mapping[str, Any], key: str) -> float:
    """The number (> 0 by the kind's schema), finite and within the quantity's upper limit (NaN, infinity and
    1e308 are not data, which a schema cannot say)."""
    v = d[key]
    if not math.isfinite(v):
        raise ValueError(f"{key} must be a finite number, got {v!r}")
    if key in UPPER_LIMITS and v > UPPER_LIMITS[key]:
        raise ValueError(f"{key} must be at most {UPPER_LIMITS[key]:g}, got {v!r}")
    return float(v)


@frozen
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


@frozen
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
        days = int(d.get("days_supply", 28))
        return cls(dt.date.fromisoformat(str(d["date"])), _positive(d, "dose_mg_per_day"), days)
