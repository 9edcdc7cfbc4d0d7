"""Rendering protocol changes and amendment impact for people."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text


def render_changes(changes: list[Any]) -> Any:
    if not changes:
        return Text("no semantic differences")
    t = Table(title=f"{len(changes)} change(s); {sum(c.substantial for c in changes)} substantial",
              title_justify="left", header_style="bold")
    for col in ("", "area", "change"):
        t.add_column(col, overflow="fold")
    for c in changes:
        t.add_row(Text("S", style="bold red") if c.substantial else "", c.area, c.text)
    t.caption = "S = substantial (affects patient safety or the scientific value: EU CTR 536/2014 art. 2)"
    t.caption_justify = "left"
    return t


def render_amendment(r: Any) -> list[Any]:
    out: list[Any] = [
        Text(f"Amendment {r.study} v{r.from_version} → v{r.to_version} ({r.content_hash[:12]}): {r.reason}",
             style="bold"),
        render_changes(list(r.changes)),
    ]
    t = Table(title="Impact per enrolled patient (replayed under the new version)", title_justify="left",
              header_style="bold")
    for col in ("patient", "on", "phase", "--all moves?", "impact"):
        t.add_column(col, overflow="fold")
    quiet = [p.patient for p in r.patients if not p.affected]
    for p in (p for p in r.patients if p.affected):
        lines = [*(f"blocked: {b}" for b in p.blocking), *(f"+ {v}" for v in p.visits_added),
                 *(f"- {v}" for v in p.visits_removed), *(f"~ {v}" for v in p.visits_moved),
                 *(f"missed: {v}" for v in p.newly_missed), *(f"no longer required: {v}" for v in p.no_longer_required),
                 *([f"decision: {p.decision_changed}"] if p.decision_changed else []),
                 *(f"eligibility: {e}" for e in p.eligibility)]
        t.add_row(p.patient, f"v{p.runs_on}", p.phase, "yes" if p.would_migrate else "no", "\n".join(lines))
    if t.row_count:
        out.append(t)
    policies = sorted({p.policy for p in r.patients})
    if r.patients:
        out.append(Text(f"{len(quiet)} of {len(r.patients)} patients unaffected"
                        + (f" ({', '.join(quiet)})" if 0 < len(quiet) <= 12 else "")
                        + "; migration " + "; ".join(policies)))
    elif r.replayed:  # counted, not listed (a role that reads no patient data): the schedule's impact alone
        out.append(Text(f"{r.affected} of {r.replayed} patients affected in their schedule (visits, phases)"))
    else:
        out.append(Text("no enrolled patients to replay" + (" at your sites" if r.notes else "")))
    if r.applied and r.registered is not None:
        out.append(Text(f"registered as version {r.registered.version}. Patients stay on their version until "
                        f"migrated: trialflow protocol migrate --all --to {r.to_version} --reason ...", style="green"))
    out.extend(Text(n, style="yellow") for n in r.notes)
    return out
