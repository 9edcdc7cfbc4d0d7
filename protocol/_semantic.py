"""Checks that a schema cannot express: references, reachability, ids, rules and their parameters.

Runs on data that already passed the JSON Schema, so shapes and types can be trusted here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from trialflow.documents import Document, PathItem, Problem, schema_problems, suggest

__all__ = ["semantic_problems"]


class _Checker:
    def __init__(self, doc: Document):
        self.doc = doc
        self.data: dict[str, Any] = doc.data
        self.problems: list[Problem] = []
        self.phase_ids = [p["id"] for p in self.data["phases"]]
        self.phases = {p["id"]: p for p in self.data["phases"]}

    def add(self, path: list[PathItem], message: str, *, key: bool = False) -> None:
        self.problems.append(self.doc.problem(path, message, key=key))

    def ref(self, value: str, known: Iterable[str], what: str, path: list[PathItem]) -> bool:
        known = list(known)
        if value in known:
            return True
        self.add(path, f"unknown {what} {value!r}{suggest(value, known)}")
        return False

    def unique(self, items: list[tuple[str, list[PathItem]]], what: str) -> None:
        seen: dict[str, list[PathItem]] = {}
        for ident, path in items:
            if ident in seen:
                first = self.doc.locate(seen[ident])[0]
                self.add(path, f"duplicate {what} id {ident!r} (first used at line {first})")
            else:
                seen[ident] = path

    # ------------------------------------------------------------------------------------------
    def finite(self, value: Any, path: list[PathItem]) -> None:
        """YAML's .inf and .nan pass a number schema but are not JSON (`show --json` fails on them)."""
        if isinstance(value, float) and not math.isfinite(value):
            self.add(path, f"expected a finite number, got {value!r}")
        elif isinstance(value, dict):
            for k, v in value.items():
                self.finite(v, [*path, k])
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.finite(v, [*path, i])

    def ids(self) -> None:
        d = self.data
        self.unique([(p["id"], ["phases", i, "id"]) for i, p in enumerate(d["phases"])], "phase")
        self.unique([(v["id"], ["phases", i, "visits", j, "id"])
                     for i, p in enumerate(d["phases"]) for j, v in enumerate(p.get("visits", []))], "visit")
        self.unique([(a["id"], ["assessments", i, "id"]) for i, a in enumerate(d["assessments"])],
                    "assessment")
        self.unique([(t["id"], ["treatments", i, "id"]) for i, t in enumerate(d["treatments"])], "treatment")
        self.unique([(c["id"], ["eligibility", part, i, "id"]) for part in ("inclusion", "exclusion")
                     for i, c in enumerate(d["eligibility"][part])], "eligibility criterion")
        self.unique([(c["id"], ["decision", "criteria", i, "id"])
                     for i, c in enumerate(d["decision"]["criteria"])], "criterion")
        self.unique([(b["id"], ["decision", "branches", i, "id"])
                     for i, b in enumerate(d["decision"]["branches"])], "branch")
        self.unique([(r["id"], ["early_termination", "reasons", i, "id"])
                     for i, r in enumerate(d["early_termination"]["reasons"])], "reason")

    def phases_and_visits(self) -> None:
        assessments = [a["id"] for a in self.data["assessments"]]
        treatments = [t["id"] for t in self.data["treatments"]]
        first = self.data["phases"][0]
        if first["kind"] != "screening":
            self.add(["phases", 0, "kind"],
                     "the first phase is where patients enter: expected kind 'screening'")
        for i, p in enumerate(self.data["phases"]):
            path: list[PathItem] = ["phases", i]
            visits = p.get("visits", [])
            if p["kind"] == "terminal":
                for key in ("visits", "duration_days", "treatment"):
                    if p.get(key):
                        self.add([*path, key], f"a terminal phase has no {key.replace('_', ' ')}", key=True)
            if visits and "anchor" not in p:
                self.add(path, "a phase with visits needs an 'anchor' (enrolment, day0 or phase_entry)")
            if p.get("treatment"):
                self.ref(p["treatment"]["id"], treatments, "treatment", [*path, "treatment", "id"])
            for j, v in enumerate(visits):
                vpath: list[PathItem] = [*path, "visits", j]
                for k, a in enumerate(v.get("assessments", [])):
                    self.ref(a, assessments, "assessment", [*vpath, "assessments", k])
                if v.get("treatment"):
                    self.ref(v["treatment"]["id"], treatments, "treatment", [*vpath, "treatment", "id"])
                if not v.get("assessments") and not v.get("treatment"):
                    self.add(vpath, f"visit {v['id']!r} has neither assessments nor a treatment action")
                duration = p.get("duration_days")
                if v["day"] < 0 or (duration is not None and v["day"] > duration):
                    span = f"0..{duration}" if duration is not None else "0 or later"
                    self.add([*vpath, "day"], f"visit {v['id']!r} on day {v['day']} lies outside its phase "
                             f"{p['id']!r} (days {span})")

    def transitions(self) -> dict[str, set[str]]:
        """Check references; answer the normal phase graph (phase → phases it leads to, no early exits)."""
        graph: dict[str, set[str]] = {p: set() for p in self.phase_ids}
        seen: dict[tuple[str, str], int] = {}
        for i, t in enumerate(self.data["transitions"]):
            ok_src = self.ref(t["source"], self.phase_ids, "phase", ["transitions", i, "source"])
            ok_dst = self.ref(t["dest"], self.phase_ids, "phase", ["transitions", i, "dest"])
            if (t["trigger"], t["source"]) in seen:
                self.add(["transitions", i, "trigger"], f"trigger {t['trigger']!r} already leaves phase "
                         f"{t['source']!r} (transition {seen[(t['trigger'], t['source'])]}); "
                         "it would be ambiguous")
            seen[(t["trigger"], t["source"])] = i
            if ok_src and ok_dst:
                if self.phases[t["source"]]["kind"] == "terminal":
                    self.add(["transitions", i, "source"],
                             f"phase {t['source']!r} is terminal: nothing leaves it")
                graph[t["source"]].add(t["dest"])
        et = self.data["early_termination"]
        if (self.ref(et["dest"], self.phase_ids, "phase", ["early_termination", "dest"])
                and self.phases[et["dest"]]["kind"] != "terminal"):
            self.add(["early_termination", "dest"], f"early termination must lead to a terminal phase, "
                     f"{et['dest']!r} is {self.phases[et['dest']]['kind']!r}")
        for i, src in enumerate(et["from"]):
            self.ref(src, self.phase_ids, "phase", ["early_termination", "from", i])
        for p in self.data["phases"]:
            if p["kind"] != "terminal" and p["id"] not in et["from"]:
                self.add(["early_termination", "from"], f"active phase {p['id']!r} cannot be left early "
                         "(consent withdrawn, death, ...); add it to early_termination.from")
        return graph

    def triggers(self) -> None:
        """The moves the engine fires itself must exist under the names the protocol gives them."""
        given = self.data.get("triggers", {})
        names = {role: given.get(role, role) for role in ("start_treatment", "screen_fail", "complete")}
        first = self.phase_ids[0]
        trans = self.data["transitions"]

        def where(role: str) -> list[PathItem]:
            return ["triggers", role] if role in given else ["transitions"]

        def hint(role: str) -> str:
            return "" if role in given else f": name yours under triggers.{role}"

        seen: dict[str, str] = {}
        for role, name in names.items():
            if name in seen:
                self.add(where(role), f"trigger {name!r} is named for both {seen[name]} and {role}: the engine "
                         "could not tell the two moves apart")
            seen.setdefault(name, role)
            if name == "withdraw" or name.startswith("branch_"):
                self.add(where(role), f"trigger {name!r} is reserved for the engine's own moves "
                         "(withdraw, branch_<id>)")
        used = {t["trigger"] for t in trans}

        def fired(source: str | None = None) -> str:
            free = sorted({t["trigger"] for t in trans if source in (None, t["source"])} - set(names.values()))
            where_ = f"from {source!r} " if source else ""
            return f"; the transitions {where_}fire: {', '.join(free)}" if free else ""

        for i, t in enumerate(trans):
            if t["trigger"] == "withdraw" or t["trigger"].startswith("branch_"):
                self.add(["transitions", i, "trigger"], f"trigger {t['trigger']!r} is reserved for the engine's "
                         "own moves (early termination, the decision's branches)")
        start = [t for t in trans if t["trigger"] == names["start_treatment"] and t["source"] == first]
        if not start:
            self.add(where("start_treatment"), f"no transition leaves the first phase {first!r} on trigger "
                     f"{names['start_treatment']!r}, which `trialflow start` fires on day 0"
                     f"{hint('start_treatment')}{fired(first)}")
        fail = [t for t in trans if t["trigger"] == names["screen_fail"] and t["source"] == first]
        if not fail:
            self.add(where("screen_fail"), f"no transition leaves the first phase {first!r} on trigger "
                     f"{names['screen_fail']!r}, which enrolment fires for an ineligible patient"
                     f"{hint('screen_fail')}{fired(first)}")
        for t in fail:
            dest = self.phases.get(t["dest"])
            if dest is not None and dest["kind"] != "terminal":
                i = trans.index(t)
                self.add(["transitions", i, "dest"], f"a screen failure must lead to a terminal phase, "
                         f"{t['dest']!r} is {dest['kind']!r}")
        if names["complete"] not in used:
            self.add(where("complete"), f"no transition uses trigger {names['complete']!r}, which "
                     f"`trialflow complete` fires to end a treatment phase{hint('complete')}{fired()}")

    def evidence(self, c: dict[str, Any], rule: Any, path: list[PathItem], visit_ids: list[str]) -> None:
        """A criterion's ``evidence`` selection names kinds its rule reads, a visit of its own, a range
        that can hold that visit's window, and (with ``final_visit``) a rule that can say not evaluable."""
        ev = c.get("evidence")
        if not isinstance(ev, dict):
            return
        at = [*path, "evidence"]
        for k, kind in enumerate(ev.get("kinds", [])):
            if kind not in rule.observation_kinds:
                self.add([*at, "kinds", k], f"rule {rule.name!r} does not read {kind!r}"
                         f"{suggest(kind, rule.observation_kinds)} (it reads: {', '.join(rule.observation_kinds)})")
        days = ev.get("study_days", {})
        lo, hi = days.get("from"), days.get("to")
        if lo is not None and hi is not None and lo > hi:
            self.add([*at, "study_days"], f"the range d{lo:+d} to d{hi:+d} is empty: 'from' must not be after 'to'")
            return
        final = ev.get("final_visit")
        if final is None:
            return
        if any(v not in visit_ids for v in c["visits"]):
            return  # the unknown visit is reported already; this would be its echo
        if final not in c["visits"]:
            self.add([*at, "final_visit"], f"final visit {final!r} is not one of the criterion's visits"
                     f"{suggest(final, c['visits'])} ({', '.join(c['visits'])})")
            return
        if not {"not_evaluable", "NE"} & set(rule.outcomes):
            self.add([*at, "final_visit"], f"rule {rule.name!r} has no not-evaluable outcome to give when the "
                     "final visit has no result")
        for p in self.data["phases"]:
            for v in p.get("visits", []):
                if v["id"] != final or p.get("anchor") != "day0":
                    continue
                start, end = v["day"] - v["window"]["before"], v["day"] + v["window"]["after"]
                if (lo is not None and start < lo) or (hi is not None and end > hi):
                    self.add([*at, "study_days"], f"the final visit {final!r} has its window d{start:+d} to "
                             f"d{end:+d} outside the range d{lo if lo is not None else '-∞'} to "
                             f"d{hi if hi is not None else '∞'}")

    def decision(self, graph: dict[str, set[str]]) -> None:
        from trialflow.rules import RuleLoadError, UnknownRuleError, get_rule

        dec = self.data["decision"]
        visit_ids = [v["id"] for p in self.data["phases"] for v in p.get("visits", [])]
        if (self.ref(dec["phase"], self.phase_ids, "phase", ["decision", "phase"])
                and self.phases[dec["phase"]]["kind"] != "decision"):
            self.add(["decision", "phase"], f"phase {dec['phase']!r} waits for the decision, so its kind "
                     "must be 'decision'")
        for p in self.data["phases"]:
            if p["kind"] == "decision" and p["id"] != dec["phase"]:
                self.add(["phases", self.phase_ids.index(p["id"]), "kind"],
                         f"phase {p['id']!r} is a decision phase but the decision waits in {dec['phase']!r}")
        outcomes: dict[str, tuple[str, ...] | None] = {}
        for i, c in enumerate(dec["criteria"]):
            path: list[PathItem] = ["decision", "criteria", i]
            for k, v in enumerate(c["visits"]):
                self.ref(v, visit_ids, "visit", [*path, "visits", k])
            try:
                rule = get_rule(c["rule"])
            except UnknownRuleError as err:
                self.add([*path, "rule"], err.message)
                outcomes[c["id"]] = None
                continue
            except RuleLoadError as err:
                self.add([*path, "rule"], str(err))
                outcomes[c["id"]] = None
                continue
            outcomes[c["id"]] = tuple(rule.outcomes)
            given = c.get("params", {})
            for prob in schema_problems(self.doc, rule.params_schema, data=given, at=[*path, "params"]):
                self.problems.append(
                    Problem(prob.file, prob.line, prob.column, prob.path,
                            f"{prob.message} (rule {rule.name!r})")
                )
            self.evidence(c, rule, path, visit_ids)
            for k, o in enumerate(c["favourable"]):
                if o not in rule.outcomes:
                    self.add([*path, "favourable", k], f"rule {rule.name!r} has no outcome {o!r}"
                             f"{suggest(o, rule.outcomes)} (outcomes: {', '.join(rule.outcomes)})")
        defaults = [i for i, b in enumerate(dec["branches"]) if b.get("default")]
        if not defaults:
            self.add(["decision", "branches"], "the decision has no default branch (`default: true`): "
                     "a patient matching no condition would have nowhere to go")
        for i, b in enumerate(dec["branches"]):
            path = ["decision", "branches", i]
            if self.ref(b["to"], self.phase_ids, "phase", [*path, "to"]) and dec["phase"] in graph:
                graph[dec["phase"]].add(b["to"])
            if b.get("default"):
                if "when" in b:
                    self.add([*path, "when"], "the default branch takes no condition", key=True)
                if i != len(dec["branches"]) - 1:
                    self.add([*path, "default"], "the default branch must come last: the first match wins",
                             key=True)
            elif "when" not in b:
                self.add(path, "a branch needs a condition ('when') unless it is the default")
            else:
                self.condition(b["when"], [*path, "when"], outcomes)

    def condition(self, cond: dict[str, Any], path: list[PathItem], outcomes: dict[str, Any]) -> None:
        forms = [k for k in ("criterion", "favourable", "any", "all", "not") if k in cond]
        if len(forms) != 1:
            self.add(path, f"a condition has exactly one form (criterion/in, favourable, any, all, not); "
                     f"found {', '.join(forms)}")
            return
        form = forms[0]
        if form == "criterion":
            if self.ref(cond["criterion"], list(outcomes), "criterion", [*path, "criterion"]):
                known = outcomes[cond["criterion"]]
                for k, o in enumerate(cond["in"]):
                    if known is not None and o not in known:
                        self.add([*path, "in", k], f"criterion {cond['criterion']!r} has no outcome {o!r}"
                                 f"{suggest(o, known)} (outcomes: {', '.join(known)})")
        elif form in ("any", "all"):
            for k, sub in enumerate(cond[form]):
                self.condition(sub, [*path, form, k], outcomes)
        elif form == "not":
            self.condition(cond["not"], [*path, "not"], outcomes)

    def graph(self, graph: dict[str, set[str]]) -> None:
        et = self.data["early_termination"]
        start = self.phase_ids[0]
        reached, todo = {start}, [start]
        while todo:
            here = todo.pop()
            early = {et["dest"]} if here in et["from"] and et["dest"] in graph else set()
            for nxt in graph[here] | early:
                if nxt not in reached:
                    reached.add(nxt)
                    todo.append(nxt)
        for i, p in enumerate(self.data["phases"]):
            if p["id"] not in reached:
                self.add(["phases", i, "id"], f"phase {p['id']!r} is unreachable from {start!r}")
            if p["kind"] != "terminal" and not graph[p["id"]]:
                self.add(["phases", i, "id"], f"active phase {p['id']!r} has no way out: add a transition "
                         "from it (early termination alone does not complete a phase)")


def semantic_problems(doc: Document) -> list[Problem]:
    """Every semantic problem of a schema-valid protocol document."""
    c = _Checker(doc)
    c.finite(c.data, [])
    c.ids()
    c.phases_and_visits()
    graph = c.transitions()
    c.triggers()
    c.decision(graph)
    c.graph(graph)
    return c.problems
