"""Rich rendering of a protocol for people: phases, decision, schedule of activities."""

from __future__ import annotations

import textwrap

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from trialflow.protocol import Criterion, Phase, Protocol, Visit

from ._output import console
from ._tables import keep_words

__all__ = ["render_protocol"]

_ANCHOR_WORDS = {"enrolment": "days from enrolment", "day0": "study day (day 0 = first dose)",
                 "phase_entry": "days from entering the phase"}


def _mark(source: str) -> str:
    return {"synopsis": "", "domain": " [domain]", "assumption": " [assumption]"}[source]


def _window(v: Visit) -> str:
    w = v.window
    return f"±{w.before}" if w.before == w.after else f"-{w.before}/+{w.after}"


def _schedule(proto: Protocol, phase: Phase) -> Table:
    t = Table(title=_prose(f"{phase.name} ({phase.id}): {_ANCHOR_WORDS.get(phase.anchor or '', '')}").plain,
              title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    t.add_column("day →\nwindow →", no_wrap=True)
    for v in phase.visits:
        t.add_column(f"{v.day}\n{_window(v)}", justify="center", no_wrap=True)
    rows: list[list[str]] = []
    for a in proto.assessments:
        cells = ["X" if a.id in v.assessments else "" for v in phase.visits]
        if any(cells):
            rows.append([a.id, *cells])
    for tr in proto.treatments:
        cells = []
        for v in phase.visits:
            if v.treatment and v.treatment.id == tr.id:
                amount = (f"{v.treatment.activity_mbq:g} MBq" if v.treatment.activity_mbq
                          else f"{v.treatment.dose_mg_per_day:g} mg/d" if v.treatment.dose_mg_per_day else "X")
                cells.append(amount)
            elif phase.treatment and phase.treatment.id == tr.id:
                cells.append("●")
            else:
                cells.append("")
        if any(cells):
            rows.append([tr.id, *cells])
    for r in rows:
        t.add_row(*r)
    caption = "visits: " + ", ".join(f"{v.day}={v.id}" for v in phase.visits)
    t.caption_justify = "left"
    if phase.treatment:
        dose = phase.treatment.dose_mg_per_day
        caption += f"; ● {phase.treatment.id}{f' {dose:g} mg/day' if dose else ''} throughout"
    t.caption = _prose(caption).plain
    return t


def _prose(text: str, style: str = "") -> Text:
    """A paragraph wrapped at words to the terminal's width (the consoles print soft-wrapped: a line stays whole)."""
    width = max(40, console.width)
    return Text("\n".join(line for para in text.split("\n")
                          for line in (textwrap.wrap(para, width=width, break_long_words=False) or [""])), style=style)


def render_protocol(proto: Protocol) -> RenderableType:
    s = proto.study
    parts: list[RenderableType] = [
        _prose(f"{s.title}", style="bold"),
        _prose(f"Study {s.id} · protocol version {s.version} · enrolment target {s.enrolment_target} · "
               f"{s.design or ''}\nHash {proto.content_hash[:12]}"),
        Text(f"File {proto.source_file}"),  # (a path is never broken)
        Text(""),
    ]
    tr = Table(title="Treatments", title_justify="left", header_style="bold")
    for col in ("Id", "Treatment", "Dose / activity", "Source"):
        tr.add_column(col)
    for t in proto.treatments:
        amount = (f"{t.dose_mg_per_day:g} mg/day" if t.dose_mg_per_day else "") + (
            f"{t.activity_mbq:g} MBq" if t.activity_mbq else "")
        if t.regimen:
            amount += f" ({t.regimen})"
        if t.dose_levels_mg_per_day:
            amount += f"; levels {' → '.join(f'{d:g}' for d in t.dose_levels_mg_per_day)}"
        tr.add_row(t.id, t.name, amount, t.source)
    parts.append(keep_words(tr))

    asm = Table(title="Assessments", title_justify="left", header_style="bold")
    for col in ("Id", "Assessment", "Records", "Source"):
        asm.add_column(col)
    for a in proto.assessments:
        asm.add_row(a.id, a.name, ", ".join(a.observation_kinds), a.source)
    parts.append(keep_words(asm))

    el = Table(title="Eligibility", title_justify="left", header_style="bold")
    for col in ("", "Id", "Question", "Source"):
        el.add_column(col)
    for kind, items in (("include", proto.eligibility.inclusion), ("exclude", proto.eligibility.exclusion)):
        for c in items:
            el.add_row(kind, c.id, c.question, c.source)
    parts.append(keep_words(el))

    ph = Table(title="Phases and transitions", title_justify="left", header_style="bold")
    for col in ("Phase", "Kind", "Length", "Leads to"):
        ph.add_column(col)
    for p in proto.phases:
        outs = [f"{t.dest} ({t.trigger})" for t in proto.transitions if t.source == p.id]
        if p.id == proto.decision.phase:
            outs += [f"{b.to} (branch {b.id})" for b in proto.decision.branches]
        if p.id in proto.early_termination.from_phases:
            outs.append(f"{proto.early_termination.dest} (early termination)")
        length = f"{p.duration_days} days" if p.duration_days else ""
        ph.add_row(f"{p.id}\n{p.name}{_mark(p.source)}", p.kind, length, "\n".join(outs))
    parts.append(keep_words(ph))
    reasons = ", ".join(r.id for r in proto.early_termination.reasons)
    parts.append(_prose(f"Early termination from every active phase to {proto.early_termination.dest!r}: "
                        f"{reasons}\n"))

    dec = proto.decision
    dt = Table(title=f"Decision {dec.id!r}: {dec.name} (in phase {dec.phase})", title_justify="left",
               header_style="bold")
    for col in ("Criterion", "Rule", "Judges", "Favourable if"):
        dt.add_column(col)
    for crit in dec.criteria:
        dt.add_row(f"{crit.id}\n{crit.name}", crit.rule, _judges(crit), ", ".join(crit.favourable))
    parts.append(keep_words(dt))
    # the parameters in a table of their own: their names are what a user types (-p NAME=VALUE), never cut
    pt = Table(title="Parameters of each criterion's rule", title_justify="left", header_style="bold",
               box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("Criterion", "Parameter", "Value"):
        pt.add_column(col, no_wrap=col != "Value")
    for crit in dec.criteria:
        for i, (k, v) in enumerate((k, v) for k, v in crit.params.items() if v is not None):
            pt.add_row(crit.id if i == 0 else "", k, str(v))
    parts.append(keep_words(pt))
    parts.append(_prose(f"Favourable response: at least {dec.min_criteria} of {len(dec.criteria)} criteria "
                        f"favourable. {dec.favourable_description or ''}"))
    br = Table(title="Branches (first match wins)", title_justify="left", header_style="bold")
    for col in ("#", "Branch", "When", "Goes to"):
        br.add_column(col)
    for i, b in enumerate(dec.branches, 1):
        when = "otherwise (default)" if b.default else (b.when.describe() if b.when else "")
        br.add_row(str(i), f"{b.id}\n{b.description or ''}", when, b.to)
    parts.append(keep_words(br))

    parts.append(Text("\nSchedule of activities", style="bold underline"))
    for p in proto.phases:
        if p.visits:
            parts.append(_schedule(proto, p))
    parts.append(_prose("Window: days before/after the target day on which the visit still counts. "
                        "[assumption] marks what the synopsis does not say; [domain] a reading or standard "
                        "documented, with its published source, in the project's clinical reference "
                        "docs/DOMAIN.md."))
    return Group(*parts)


def _judges(crit: Criterion) -> str:
    """The criterion's evidence selection in one cell: kinds, study days, final visit, unscheduled."""
    ev = crit.evidence
    lo = "" if ev.from_day is None else f"d{ev.from_day}"
    hi = "" if ev.to_day is None else f"d{ev.to_day}"
    days = f"{lo or '…'} to {hi or '…'}" if (lo or hi) else "any day"
    final = f"\nread at {ev.final_visit}" if ev.final_visit else ""
    return f"{', '.join(ev.kinds)}\n{days}{final}\nunscheduled: {ev.unscheduled}"
