"""A semantic diff of two protocol versions, worded like an amendment's change log.

Each change says whether it is *substantial*: likely to affect the safety of the patients or the
scientific value of the trial (EU Clinical Trials Regulation 536/2014, art. 2(2)(13)), which here means
eligibility, treatment doses and activities, the phase graph, the decision's criteria, parameters and
branches, and adding or removing assessments. Names, notes, windows and visit timing are not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._model import Phase, Protocol, Visit

__all__ = ["Change", "diff_protocols"]

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two protocol versions."""

    area: str
    item: str
    kind: ChangeKind
    field: str | None
    old: Any
    new: Any
    substantial: bool
    text: str


def _fmt(v: Any) -> str:
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) + "}"
    return repr(v) if isinstance(v, str) else str(v)


class _Differ:
    def __init__(self) -> None:
        self.changes: list[Change] = []

    def add(self, area: str, item: str, kind: ChangeKind, substantial: bool, text: str, field: str | None = None,
            old: Any = None, new: Any = None) -> None:
        self.changes.append(Change(area, item, kind, field, old, new, substantial, text))

    def fields(self, area: str, item: str, old: Any, new: Any, names: Iterable[str], substantial: set[str],
               label: str) -> None:
        for name in names:
            a, b = getattr(old, name), getattr(new, name)
            if a != b:
                self.add(area, item, "changed", name in substantial,
                         f"{label}: {name.replace('_', ' ')} {_fmt(a)} → {_fmt(b)}", name, a, b)

    def keyed(self, area: str, old: Iterable[Any], new: Iterable[Any], key: Callable[[Any], str],
              describe: Callable[[Any], str], substantial: bool,
              compare: Callable[[Any, Any], None] | None = None) -> None:
        a = {key(x): x for x in old}
        b = {key(x): x for x in new}
        for k in a.keys() - b.keys():
            self.add(area, k, "removed", substantial, f"removed {describe(a[k])}", old=k)
        for k in b.keys() - a.keys():
            self.add(area, k, "added", substantial, f"added {describe(b[k])}", new=k)
        if compare:
            for k in [k for k in a if k in b]:
                compare(a[k], b[k])


def _visit_words(v: Visit) -> str:
    return f"visit {v.id} ({v.name}, day {v.day}, window -{v.window.before}/+{v.window.after}) in {v.phase}"


def diff_protocols(old: Protocol, new: Protocol) -> list[Change]:
    """Every semantic difference from ``old`` to ``new``, in protocol order."""
    d = _Differ()
    # another study id is another study (an amendment of it is refused): said first, and substantial
    d.fields("study", old.study.id, old.study, new.study, ("id", "version", "title", "enrolment_target", "design",
                                                            "objective", "migration_default",
                                                            "migration_stay_from_phase"),
             {"id", "enrolment_target"}, "study")
    # treatments
    d.keyed("treatments", old.treatments, new.treatments, lambda t: t.id, lambda t: f"treatment {t.id} ({t.name})",
            True, lambda a, b: d.fields("treatments", a.id, a, b, ("name", "dose_mg_per_day", "regimen",
                                                                    "dose_levels_mg_per_day", "activity_mbq"),
                                        {"dose_mg_per_day", "dose_levels_mg_per_day", "activity_mbq"},
                                        f"treatment {a.id}"))
    # eligibility
    for part in ("inclusion", "exclusion"):

        def words(c: Any, p: str = part) -> str:
            return f"{p} criterion {c.id}: {c.question}"

        def compare(a: Any, b: Any, p: str = part) -> None:
            d.fields("eligibility", a.id, a, b, ("question",), {"question"}, f"{p} criterion {a.id}")

        d.keyed("eligibility", getattr(old.eligibility, part), getattr(new.eligibility, part), lambda c: c.id,
                words, True, compare)
    d.keyed("assessments", old.assessments, new.assessments, lambda a: a.id, lambda a: f"assessment {a.id} ({a.name})",
            True, lambda a, b: d.fields("assessments", a.id, a, b, ("name", "observation_kinds"),
                                        {"observation_kinds"}, f"assessment {a.id}"))

    # phases and visits
    def phase_cmp(a: Phase, b: Phase) -> None:
        d.fields("phases", a.id, a, b, ("name", "kind", "anchor", "duration_days", "treatment"),
                 {"kind", "anchor", "duration_days", "treatment"}, f"phase {a.id}")

    d.keyed("phases", old.phases, new.phases, lambda p: p.id, lambda p: f"phase {p.id} ({p.name}, {p.kind})", True,
            phase_cmp)

    def visit_cmp(a: Visit, b: Visit) -> None:
        if a.phase != b.phase:
            d.add("visits", a.id, "changed", True, f"visit {a.id} moved from phase {a.phase} to {b.phase}", "phase",
                  a.phase, b.phase)
        if a.day != b.day:
            d.add("visits", a.id, "changed", False, f"visit {a.id} moved from day {a.day} to day {b.day}", "day",
                  a.day, b.day)
        if a.window != b.window:
            d.add("visits", a.id, "changed", False,
                  f"visit {a.id} window -{a.window.before}/+{a.window.after} → -{b.window.before}/+{b.window.after}",
                  "window", (a.window.before, a.window.after), (b.window.before, b.window.after))
        if a.assessments != b.assessments:
            d.add("visits", a.id, "changed", True, f"visit {a.id} assessments {_fmt(a.assessments)} → "
                  f"{_fmt(b.assessments)}", "assessments", a.assessments, b.assessments)
        if a.treatment != b.treatment:
            d.add("visits", a.id, "changed", True, f"visit {a.id} treatment {_fmt(a.treatment)} → "
                  f"{_fmt(b.treatment)}", "treatment", a.treatment, b.treatment)
        if a.name != b.name:
            d.add("visits", a.id, "changed", False, f"visit {a.id} renamed {a.name!r} → {b.name!r}", "name",
                  a.name, b.name)

    d.keyed("visits", old.visits, new.visits, lambda v: v.id, _visit_words, True, visit_cmp)
    d.keyed("transitions", old.transitions, new.transitions, lambda t: f"{t.source} -{t.trigger}-> {t.dest}",
            lambda t: f"transition {t.source} → {t.dest} ({t.trigger})", True)
    et_old, et_new = old.early_termination, new.early_termination
    d.fields("early_termination", "early_termination", et_old, et_new, ("dest", "from_phases", "reason_ids"),
             {"dest", "from_phases", "reason_ids"}, "early termination")
    # the decision
    dec_old, dec_new = old.decision, new.decision
    d.fields("decision", dec_old.id, dec_old, dec_new, ("id", "phase", "min_criteria"), {"id", "phase", "min_criteria"},
             "decision")

    def crit_cmp(a: Any, b: Any) -> None:
        d.fields("criteria", a.id, a, b, ("rule", "visits", "favourable"), {"rule", "visits", "favourable"},
                 f"criterion {a.id}")
        for k in sorted(set(a.params) | set(b.params)):
            va, vb = a.params.get(k), b.params.get(k)
            if va != vb:
                d.add("criteria", a.id, "changed", True, f"criterion {a.id}: {k} {_fmt(va)} → {_fmt(vb)}",
                      f"params.{k}", va, vb)

    d.keyed("criteria", dec_old.criteria, dec_new.criteria, lambda c: c.id,
            lambda c: f"criterion {c.id} (rule {c.rule})", True, crit_cmp)

    def branch_words(b: Any) -> str:
        when = "default" if b.default else (b.when.describe() if b.when else "")
        return f"branch {b.id}: {when} → {b.to}"

    def branch_cmp(a: Any, b: Any) -> None:
        if (a.to, a.when, a.default) != (b.to, b.when, b.default):
            d.add("branches", a.id, "changed", True, f"{branch_words(a)} becomes {branch_words(b)}", "rule",
                  branch_words(a), branch_words(b))

    d.keyed("branches", dec_old.branches, dec_new.branches, lambda b: b.id, branch_words, True, branch_cmp)
    order_old = [b.id for b in dec_old.branches if b.id in {x.id for x in dec_new.branches}]
    order_new = [b.id for b in dec_new.branches if b.id in {x.id for x in dec_old.branches}]
    if order_old != order_new:
        d.add("branches", "order", "changed", True, f"branch order {_fmt(order_old)} → {_fmt(order_new)} "
              "(the first match wins)", "order", order_old, order_new)
    return d.changes
