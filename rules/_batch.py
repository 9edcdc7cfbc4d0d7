"""Many cases at once, as arrays: the form in which a rule's batch adapter reads a cohort.

The simulator hands a plug-in rule the records each criterion may judge (after the engine's evidence
selection) as a :class:`CaseArrays`: per observation kind, a P x S array of the records' study days (days
since day 0, nan where a patient has fewer records), in date order per patient, and the values of their
fields beside it. A rule that wants to be simulated provides ``evaluate_cases(cases, params)``, answering
each patient's outcome as an index into its ``outcomes``; :meth:`CaseArrays.case` gives the one-patient
:class:`~trialflow.rules.observations.Case` of any row, so the batch form can be tested equal to ``evaluate``.

Kinds and fields offered: ``tg`` (``value`` ug/L, nan when below the LoQ; ``below_loq``; ``loq``),
``tgab`` (``positive``), ``ct`` (``not_evaluated``; ``target_mm`` P x S x L, the diameter of target lesion
``T{l+1}``, nan where the record does not list it; ``nodal`` P x S x L; ``new_lesions``, whether the record
lists any; ``non_target`` P x S x N, the index in ``NON_TARGET_STATUSES`` of lesion ``N{n+1}``, -1 where it
is not listed) and ``rai_scan`` (``planar``, ``spect``: the modalities acquired; ``avid`` P x S x K, whether
lesion ``A{k+1}`` is RaI-avid, with no modality of its own). Lesions are identified by their column.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trialflow.documents._frozen import frozen

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .observations import Case

__all__ = ["BATCH_KINDS", "CaseArrays", "KindArrays", "at_column"]

BATCH_KINDS: Mapping[str, tuple[str, ...]] = {
    "tg": ("value", "below_loq", "loq"),
    "tgab": ("positive",),
    "ct": ("not_evaluated", "target_mm", "nodal", "new_lesions", "non_target"),
    "rai_scan": ("planar", "spect", "avid"),
}


@frozen
class KindArrays:
    """The records of one kind: ``days`` P x S (nan: no record) and each field's values, P x S."""

    days: NDArray[Any]
    fields: Mapping[str, NDArray[Any]]


@frozen
class CaseArrays:
    """P cases: for each kind, the records' study days and fields (see the module docstring)."""

    size: int
    kinds: Mapping[str, KindArrays]

    def of_kind(self, kind: str) -> KindArrays:
        """The records of ``kind`` (an empty P x 1 array when there are none)."""
        got = self.kinds.get(kind)
        if got is not None:
            return got
        import numpy as np

        empty = np.full((self.size, 1), np.nan)
        fields = {f: empty for f in BATCH_KINDS.get(kind, ())}
        for f in ("target_mm", "nodal", "non_target", "avid"):  # per lesion: P x S x 1
            if f in fields:
                fields[f] = np.full((self.size, 1, 1), -1 if f == "non_target" else np.nan)
        return KindArrays(empty, fields)

    def case(self, i: int, day0: dt.date, patient: str = "") -> Case:
        """Row ``i`` as the one-patient case the rule's ``evaluate`` reads (records dated from ``day0``)."""
        import math

        from .observations import (
            NON_TARGET_STATUSES,
            AvidLesion,
            Case,
            CtAssessment,
            Lesion,
            NonTargetLesion,
            RaiScan,
            TgAbResult,
            TgSample,
        )

        obs: list[Any] = []
        for kind, arrays in self.kinds.items():
            for j, d in enumerate(arrays.days[i].tolist()):
                if math.isnan(d):
                    continue
                when = day0 + dt.timedelta(days=int(d))
                f = {k: v[i, j] for k, v in arrays.fields.items()}
                if kind == "tg":
                    below = bool(f["below_loq"])
                    obs.append(TgSample(when, None if below else float(f["value"]), float(f["loq"]), below))
                elif kind == "tgab":
                    obs.append(TgAbResult(when, "positive" if f["positive"] else "negative"))
                elif kind == "ct":
                    nodal = f["nodal"].tolist()
                    target = tuple(Lesion(f"T{k + 1}", "lymph_node" if nodal[k] else "lung", mm, bool(nodal[k]))
                                   for k, mm in enumerate(f["target_mm"].tolist()) if not math.isnan(mm))
                    non_target = tuple(NonTargetLesion(f"N{k + 1}", "bone", NON_TARGET_STATUSES[s])  # type: ignore[arg-type]
                                       for k, s in enumerate(f["non_target"].tolist()) if s >= 0)
                    new = ("new lesion",) if f["new_lesions"] else ()
                    obs.append(CtAssessment(when, target, non_target, new, not_evaluated=bool(f["not_evaluated"])))
                elif kind == "rai_scan":
                    mods = tuple(m for m in ("planar", "spect") if f[m])
                    avid = tuple(AvidLesion(f"A{k + 1}") for k, a in enumerate(f["avid"].tolist()) if a)
                    obs.append(RaiScan(when, mods, avid))
        return Case(patient, day0, tuple(obs))


def at_column(a: NDArray[Any], k: NDArray[Any]) -> NDArray[Any]:
    """``a[i, k[i]]`` for every case i (``a`` P x S x ...): the record each case reads, e.g. its baseline.
    A view of column ``k`` when every case reads the same one (most do), a gather otherwise."""
    import numpy as np

    k0 = int(k[0]) if k.size else 0
    if (k == k0).all():
        return a[:, k0]
    return a[np.arange(a.shape[0]), k]
