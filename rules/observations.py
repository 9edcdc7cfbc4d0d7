"""What a patient's record holds: one frozen dataclass per kind of observation, and the ``Case``.

These classes are shared with the engine, which stores them as JSON through ``to_dict`` /
``from_dict``. The dict form is the case-file record form (``{"kind": "tg", "date": "2026-01-12",
...}``), so a stored observation and a case-file line look alike. ``from_dict`` builds a record that
its kind's JSON Schema (:mod:`trialflow.rules.kinds`) has already accepted, and checks only what a
schema cannot say (a '<LoQ' that disagrees with the LoQ, a resolution before the onset, a non-finite
number, a diameter finer than 0.001 mm), raising ``ValueError`` with a one-line message;
:mod:`trialflow.rules.casefile` turns those into located problems, beside the schema's.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from fractions import Fraction
from functools import lru_cache
from typing import Any, ClassVar, Literal, TypeAlias

from trialflow.documents._frozen import frozen

__all__ = [
    "AE_ACTIONS",
    "AE_RELATEDNESS",
    "OBSERVATION_TYPES",
    "TG_UNITS",
    "AdverseEvent",
    "AvidLesion",
    "Case",
    "CtAssessment",
    "DoseChange",
    "Lesion",
    "NonTargetLesion",
    "Observation",
    "RaiScan",
    "TgAbResult",
    "TgSample",
    "observation_from_dict",
]

#: Units accepted for serum thyroglobulin; all mean the same quantity (1 ug/L = 1 ng/mL).
TG_UNITS = ("ug/L", "µg/L", "μg/L", "ng/mL", "ng/ml")
_BELOW = re.compile(r"^\s*<\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*$")

NonTargetStatus: TypeAlias = Literal["present", "absent", "unequivocal_progression", "not_evaluated"]
NON_TARGET_STATUSES = ("present", "absent", "unequivocal_progression", "not_evaluated")


def _date(value: Any, field: str = "date") -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{field} must be an ISO date (YYYY-MM-DD), got {value!r}")


#: the largest value each quantity takes in any patient: beyond it is a typing error (1e308), not data.
#: Tg in ug/L (metastatic DTC reaches 10^5), diameters and slice thickness in mm, doses in mg/day, 131I
#: activity in MBq (therapeutic activities stay below 11,100). Clinical plausibility is a narrower check.
UPPER_LIMITS: dict[str, float] = {"value": 1e6, "loq": 1e3, "diameter_mm": 1000.0, "fragments_mm": 1000.0,
                                  "slice_thickness_mm": 50.0, "dose_mg_per_day": 2000.0, "activity_mbq": 20000.0}


def _opt_float(value: Any, field: str, *, minimum: float | None = None, positive: bool = False,
               maximum: float | None = None) -> float | None:
    """A finite number (or None) within its range; NaN and infinity are never data."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{field} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{field} must be > 0, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{field} must be >= {minimum:g}, got {value!r}")
    upper = maximum if maximum is not None else UPPER_LIMITS.get(field.rsplit(" ", 1)[-1])
    if upper is not None and value > upper:
        raise ValueError(f"{field} must be at most {upper:g}, got {value!r}")
    return float(value)


MAX_DIAMETER_DECIMALS = 3  # RECIST compares diameters exactly as entered, to 0.001 mm at most


@lru_cache(maxsize=8192)
def _denominator(mm: float) -> int:
    """The denominator of the decimal ``mm`` as written (35.96 → 25), once per value (diameters repeat)."""
    return Fraction(str(mm)).denominator


def _diameter(value: Any, field: str) -> float | None:
    """A diameter in mm (>= 0), refused when written finer than 0.001 mm rather than rounded."""
    mm = _opt_float(value, field, minimum=0)
    if mm is not None and 10**MAX_DIAMETER_DECIMALS % _denominator(mm):
        raise ValueError(f"{field} {value!r} has more than {MAX_DIAMETER_DECIMALS} decimals: diameters are compared "
                         "exactly as entered, to 0.001 mm at most; enter the diameter as read (e.g. 35.96)")
    return mm


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """Drop keys whose value is the default, so stored records stay short."""
    return {k: v for k, v in d.items() if v is not None and v is not False}


@frozen
class TgSample:
    """Serum thyroglobulin in ug/L (= ng/mL). ``value`` is None when the sample is below the LoQ."""

    kind: ClassVar[str] = "tg"
    date: dt.date
    value: float | None
    loq: float | None = None
    below_loq: bool = False
    stimulated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _clean(
            {
                "kind": self.kind,
                "date": self.date.isoformat(),
                "value": self.value,
                "unit": "ug/L",
                "loq": self.loq,
                "below_loq": self.below_loq,
                "stimulated": self.stimulated,
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TgSample:
        unit = d.get("unit", "ug/L")
        if unit not in TG_UNITS:
            raise ValueError(
                f"unit {unit!r} is not accepted for Tg: give the value in ug/L (ng/mL is the same); "
                "convert other units before importing"
            )
        loq = _opt_float(d.get("loq"), "loq")
        below = bool(d.get("below_loq", False))
        raw = d.get("value")
        value: float | None
        if isinstance(raw, str):
            m = _BELOW.match(raw)
            stated = float(m.group(1)) if m else math.nan  # the schema admits only '<LoQ' text
            if loq is not None and loq != stated:
                raise ValueError(f"value {raw!r} disagrees with loq {loq}")
            loq, below, value = stated, True, None
        else:
            value = _opt_float(raw, "value")
            if below and value is not None:
                raise ValueError("below_loq is true but a measured value is given; keep one of them")
        if value is None and not below:
            raise ValueError("value is missing: give a number, '<LoQ', or below_loq: true")
        if below and (loq is None or loq <= 0):
            raise ValueError("a result below the LoQ needs the LoQ: write value '<0.2' or give loq")
        return cls(_date(d["date"]), value, loq, below, bool(d.get("stimulated", False)))


@frozen
class TgAbResult:
    """Anti-thyroglobulin antibodies: ``positive`` makes immunometric Tg unreliable."""

    kind: ClassVar[str] = "tgab"
    date: dt.date
    result: Literal["positive", "negative"]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "date": self.date.isoformat(), "result": self.result}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TgAbResult:
        return cls(_date(d["date"]), d["result"])


@frozen
class Lesion:
    """A target lesion at one CT. ``diameter_mm`` is the longest diameter (short axis for a node in
    RECIST 1.1); 0 when it has disappeared, None when it was not measured. ``too_small`` means present
    but too small to measure; ``fragments_mm`` the diameters of a lesion that has split."""

    id: str
    organ: str
    diameter_mm: float | None
    nodal: bool = False
    too_small: bool = False
    fragments_mm: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return _clean(
            {
                "id": self.id,
                "organ": self.organ,
                "diameter_mm": self.diameter_mm,
                "nodal": self.nodal,
                "too_small": self.too_small,
                "fragments_mm": list(self.fragments_mm) if self.fragments_mm is not None else None,
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Lesion:
        frags = d.get("fragments_mm")
        lesion = str(d["id"])
        return cls(
            lesion,
            str(d.get("organ", "unknown")),
            _diameter(d.get("diameter_mm"), f"lesion {lesion} diameter_mm"),
            bool(d.get("nodal", False)),
            bool(d.get("too_small", False)),
            tuple(_diameter(f, f"lesion {lesion} fragments_mm") or 0.0 for f in frags)
            if frags is not None else None,
        )


@frozen
class NonTargetLesion:
    """A non-target lesion's status at one CT."""

    id: str
    organ: str
    status: NonTargetStatus
    nodal: bool = False

    def to_dict(self) -> dict[str, Any]:
        return _clean({"id": self.id, "organ": self.organ, "status": self.status, "nodal": self.nodal})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NonTargetLesion:
        return cls(str(d["id"]), str(d.get("organ", "unknown")), d["status"], bool(d.get("nodal", False)))


@frozen
class CtAssessment:
    """One CT read: target measurements, non-target statuses, new lesions (ids or sites).

    ``not_evaluated`` records a scheduled assessment that could not be read (RECIST: NE).
    """

    kind: ClassVar[str] = "ct"
    date: dt.date
    target: tuple[Lesion, ...] = ()
    non_target: tuple[NonTargetLesion, ...] = ()
    new_lesions: tuple[str, ...] = ()
    slice_thickness_mm: float | None = None
    not_evaluated: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "date": self.date.isoformat(),
            "target": [t.to_dict() for t in self.target],
            "non_target": [n.to_dict() for n in self.non_target],
            "new_lesions": list(self.new_lesions),
        }
        if self.slice_thickness_mm is not None:
            out["slice_thickness_mm"] = self.slice_thickness_mm
        if self.not_evaluated:
            out["not_evaluated"] = True
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CtAssessment:
        target = tuple(Lesion.from_dict(t) for t in d.get("target") or ())
        non_target = tuple(NonTargetLesion.from_dict(n) for n in d.get("non_target") or ())
        ids = [x.id for x in target] + [x.id for x in non_target]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"lesion id {repeated[0]!r} appears twice in this assessment")
        return cls(
            _date(d["date"]),
            target,
            non_target,
            tuple(str(x) for x in d.get("new_lesions") or ()),
            _opt_float(d.get("slice_thickness_mm"), "slice_thickness_mm"),
            bool(d.get("not_evaluated", False)),
        )


@frozen
class AvidLesion:
    """A lesion (id or site) that accumulates radioiodine; ``modality`` None = on the scan as a whole."""

    id: str
    modality: Literal["planar", "spect"] | None = None

    def to_dict(self) -> dict[str, Any] | str:
        return self.id if self.modality is None else {"id": self.id, "modality": self.modality}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | str) -> AvidLesion:
        if isinstance(d, str):
            return cls(d)
        return cls(str(d["id"]), d.get("modality"))


@frozen
class RaiScan:
    """A diagnostic 131I scintigraphy: the modalities acquired and the RaI-avid lesions seen."""

    kind: ClassVar[str] = "rai_scan"
    date: dt.date
    modalities: tuple[str, ...] = ("planar", "spect")
    avid_lesions: tuple[AvidLesion, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "date": self.date.isoformat(),
            "modalities": list(self.modalities),
            "avid_lesions": [a.to_dict() for a in self.avid_lesions],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RaiScan:
        mods = tuple(d.get("modalities") or ("planar", "spect"))
        return cls(
            _date(d["date"]), mods, tuple(AvidLesion.from_dict(a) for a in d.get("avid_lesions") or ())
        )


AE_RELATEDNESS = ("not_related", "unlikely", "possible", "probable", "definite")
AE_ACTIONS = ("none", "dose_reduced", "interrupted", "stopped")


@frozen
class AdverseEvent:
    """An adverse event as CTCAE v5 grades it: term and grade (1-5), onset (``date``) and resolution,
    seriousness (SAE), relatedness to the study drug and the action taken with it."""

    kind: ClassVar[str] = "adverse_event"
    date: dt.date  # onset
    term: str
    grade: int
    resolved: dt.date | None = None
    serious: bool = False
    relatedness: str | None = None  # not_related, unlikely, possible, probable, definite
    action: str = "none"  # none, dose_reduced, interrupted, stopped

    @property
    def onset(self) -> dt.date:
        return self.date

    @property
    def related(self) -> bool:
        """Possibly, probably or definitely related (the usual 'related' grouping of a safety table)."""
        return self.relatedness in ("possible", "probable", "definite")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "date": self.date.isoformat(), "term": self.term,
                               "grade": self.grade}
        # optional fields only when given, so an AE recorded before they existed keeps its identity
        if self.resolved is not None:
            out["resolved"] = self.resolved.isoformat()
        if self.serious:
            out["serious"] = True
        if self.relatedness is not None:
            out["relatedness"] = self.relatedness
        if self.action != "none":
            out["action"] = self.action
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AdverseEvent:
        grade = int(d["grade"])
        term = str(d["term"]).strip()
        if not term:
            raise ValueError("term must be a CTCAE v5 term, got an empty text")
        onset = _date(d["date"])
        resolved = _date(d["resolved"], "resolved") if d.get("resolved") is not None else None
        if resolved is not None and resolved < onset:
            raise ValueError(f"resolved ({resolved}) is before the onset ({onset})")
        serious = bool(d.get("serious", False))
        if grade >= 4 and not serious and "serious" in d:
            raise ValueError(f"a grade {grade} adverse event is life-threatening or fatal: serious cannot be false")
        return cls(onset, term, grade, resolved, serious, d.get("relatedness"), d.get("action") or "none")


@frozen
class DoseChange:
    """A change of the daily Sorafenib dose (0 = interrupted)."""

    kind: ClassVar[str] = "dose_change"
    date: dt.date
    dose_mg_per_day: float
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "date": self.date.isoformat(),
            "dose_mg_per_day": self.dose_mg_per_day,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DoseChange:
        dose = _opt_float(d["dose_mg_per_day"], "dose_mg_per_day")
        return cls(_date(d["date"]), dose or 0.0, str(d.get("reason", "")))


Observation: TypeAlias = TgSample | TgAbResult | CtAssessment | RaiScan | AdverseEvent | DoseChange

OBSERVATION_TYPES: dict[str, type[Observation]] = {
    c.kind: c for c in (TgSample, TgAbResult, CtAssessment, RaiScan, AdverseEvent, DoseChange)
}


def observation_from_dict(d: Mapping[str, Any]) -> Observation:
    """The observation a record stands for, chosen by its ``kind``."""
    kind = d.get("kind")
    cls = OBSERVATION_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown observation kind {kind!r} (known: {', '.join(OBSERVATION_TYPES)})")
    return cls.from_dict(d)


@frozen
class Case:
    """One patient's observations. ``day0`` is the first Sorafenib dose (None if not yet given)."""

    patient: str
    day0: dt.date | None
    observations: tuple[Observation, ...] = ()

    def of_kind(self, kind: str, *, as_of: dt.date | None = None) -> list[Any]:
        """Observations of ``kind`` in date order (stable for equal dates), those after ``as_of`` left out."""
        found = [o for o in self.observations if o.kind == kind and (as_of is None or o.date <= as_of)]
        return sorted(found, key=lambda o: o.date)

    def with_observations(self, more: Iterable[Observation]) -> Case:
        return Case(self.patient, self.day0, (*self.observations, *more))

    def to_dict(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "day0": self.day0.isoformat() if self.day0 else None,
            "observations": [o.to_dict() for o in self.observations],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Case:
        day0 = d.get("day0")
        return cls(
            str(d["patient"]),
            _date(day0, "day0") if day0 is not None else None,
            tuple(observation_from_dict(o) for o in d.get("observations") or ()),
        )
