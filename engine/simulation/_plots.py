"""Figures of a simulation (first run): swimmer, waterfall, spider, pathway flow, monthly workload.

matplotlib is imported here only, with the Agg backend (no display needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._result import SimulationResult
from ._targets import targets_problem

__all__ = ["write_plots"]

_PHASE_COLOURS = ("#c7c7c7", "#4c72b0", "#dd8452", "#55a868", "#8172b3", "#937860", "#da8bc3")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


FIGURES = ("swimmer.png", "waterfall.png", "spider_tg.png", "pathway_flow.png", "workload.png")


def plot_targets_problem(directory: str | Path, *, force: bool = False) -> str | None:
    """Why the figures cannot be written into ``directory`` as asked (None: they can): the rule of
    :func:`._targets.targets_problem`, which ``--cases`` follows too."""
    return targets_problem(directory, FIGURES, "the figures", force=force)


def write_plots(result: SimulationResult, directory: str | Path, *, swimmers: int = 40,
                force: bool = False) -> list[Path]:
    """Write the five PNG figures into ``directory`` (created if needed); answers their paths.

    Each figure is written to a new temporary file in ``directory`` and renamed over its name, so a
    symbolic link there is replaced, never followed; see :func:`plot_targets_problem`.
    """
    c = result.sample
    if c is None:
        return []
    problem = plot_targets_problem(directory, force=force)
    if problem:
        raise FileExistsError(problem)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    paths = [
        _swimmer(plt, c, out / "swimmer.png", swimmers),
        _waterfall(plt, c, out / "waterfall.png"),
        _spider(plt, c, out / "spider_tg.png"),
        _flow(plt, result, out / "pathway_flow.png"),
        _workload(plt, result, out / "workload.png"),
    ]
    return paths


def _save(plt: Any, fig: Any, path: Path, *, tight: bool = True) -> Path:
    import os
    import tempfile

    if tight:
        fig.tight_layout()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, dpi=110, format="png")
        os.replace(tmp, path)  # renames over a link, never through it
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        plt.close(fig)
    return path


def _swimmer(plt: Any, c: Any, path: Path, k: int) -> Path:
    pw = c.pathway
    k = min(k, c.size)
    phases = [p.id for p in pw.before_decision] + [q.id for b in pw.branches for q in b.phases]
    colour = {p: _PHASE_COLOURS[i % len(_PHASE_COLOURS)] for i, p in enumerate(dict.fromkeys(phases))}
    fig, ax = plt.subplots(figsize=(10, 0.22 * k + 1.6))
    order = np.argsort(-(c.end_day[:k] - c.day0[:k]), kind="stable")
    for row, i in enumerate(order):
        d0 = c.day0[i]
        for p in colour:
            a, b = (
                c.phase_entry.get(p, np.full(c.size, np.nan))[i],
                c.phase_exit.get(p, np.full(c.size, np.nan))[i],
            )
            if np.isfinite(a) and np.isfinite(b) and b > a:
                ax.barh(row, (b - a) / 30.44, left=(a - d0) / 30.44, color=colour[p], height=0.7)
        if c.decided[i]:
            ax.plot((c.decision_day[i] - d0) / 30.44, row, "k|", ms=9)
        state = pw.end_states[int(c.end_state[i])]
        end = (c.end_day[i] - d0) / 30.44
        if state == pw.withdraw_dest:
            ax.plot(end, row, "rx", ms=6)
        for r in c.reduction_days[i]:
            if d0 <= r < c.end_day[i]:
                ax.plot((r - d0) / 30.44, row, "v", color="#444444", ms=4)
        for v in (v for b in pw.branches for q in b.phases for v in q.visits if v.activity_mbq):
            day = c.visit_day[v.id][i]
            if np.isfinite(day):
                ax.plot((day - d0) / 30.44, row, "*", color="gold", mec="k", ms=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=col) for col in colour.values()]
    marks = [
        plt.Line2D([], [], ls="", marker=m, color=col, mec="k" if m == "*" else col)
        for m, col in (("|", "k"), ("x", "r"), ("v", "#444444"), ("*", "gold"))
    ]
    ax.legend(
        handles + marks,
        [*colour, "decision", "withdrawn", "dose reduction", "131I therapy"],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7,
    )
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels([f"SIM-{i + 1:05d}" for i in order], fontsize=6)
    ax.set_xlabel("months since day 0 (first Sorafenib dose)")
    ax.set_title(f"Swimmer plot: {k} simulated patients, phases and events")
    return _save(plt, fig, path)


def _best_change(c: Any) -> np.ndarray:
    """Best % change of the target sum from baseline over the CTs before the decision."""
    pw = c.pathway
    cts = [v for v in pw.visits_before_decision if "ct" in v.kinds]
    base = np.full(c.size, np.nan)
    best = np.full(c.size, np.nan)
    for v in cts:
        d = c.visit_day[v.id]
        s = c.lesion_tenths(d).sum(axis=1).astype(float)
        s = np.where(np.isnan(d) | c.ct_ne[v.id], np.nan, s)
        first = np.isnan(base) & (d <= c.day0)
        base = np.where(first, s, base)
        later = d > c.day0
        pct = 100 * (s - base) / base
        best = np.where(later & ~np.isnan(pct), np.fmin(best, pct), best)
    return best


def _waterfall(plt: Any, c: Any, path: Path) -> Path:
    best = _best_change(c)
    ok = ~np.isnan(best)
    vals = np.sort(best[ok])[::-1]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    col = np.where(vals >= 20, "#c44e52", np.where(vals <= -30, "#55a868", "#8c8c8c"))
    ax.bar(np.arange(vals.size), vals, color=col, width=0.85)
    ax.axhline(0, c="k", lw=0.8)
    ax.set_xticks([])
    ax.set_xlim(-1, max(vals.size, 1))
    ax.axhline(20, ls="--", c="#c44e52", lw=1, label="+20 % (PD)")
    ax.axhline(-30, ls="--", c="#55a868", lw=1, label="-30 % (PR)")
    ax.set_xlabel(f"one bar per patient with a follow-up CT before the decision (n = {vals.size})")
    ax.set_ylabel("best % change of the target sum")
    ax.set_title("Waterfall plot of the best change in the sum of target lesions")
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def _spider(plt: Any, c: Any, path: Path, k: int = 150) -> Path:
    """Tg relative to each patient's first sample (Tg / Tg0) on a log axis: halving and doubling are
    the same distance from x1, as a log-linear Tg course (the slope criterion's model) is a straight line."""
    from matplotlib.ticker import FixedLocator, NullLocator

    vs = [v for v in c.pathway.visits if "tg" in v.kinds]
    fig, ax = plt.subplots(figsize=(10, 5))
    names = [co.name for co in c.scenario.courses]
    cmap = plt.get_cmap("tab10")
    values = {v.id: c.tg_value(v.id) for v in vs}
    lo, hi = 1.0, 1.0
    for i in range(min(k, c.size)):
        days = np.array([c.visit_day[v.id][i] for v in vs])
        vals = np.array([values[v.id][i] for v in vs])
        ok = ~np.isnan(days)
        if ok.sum() < 2:
            continue
        order = np.argsort(days[ok], kind="stable")
        w = (days[ok][order] - c.day0[i]) / 7
        ratio = vals[ok][order] / vals[ok][order][0]
        lo, hi = min(lo, float(ratio.min())), max(hi, float(ratio.max()))
        ax.plot(w, ratio, color=cmap(int(c.course[i]) % 10), alpha=0.45, lw=0.9)
    for j, n in enumerate(names):
        ax.plot([], [], color=cmap(j % 10), label=n)
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_yscale("log")
    steps = [m * 10.0**e for e in range(-4, 4) for m in (1, 3)]  # x0.1, x0.3, x1, x3, x10 ...
    bottom = max([t for t in steps if t <= min(lo, 1.0) / 1.1], default=steps[0])
    top = min([t for t in steps if t >= max(hi, 1.0) * 1.1], default=steps[-1])
    ax.set_ylim(bottom / 1.1, top * 1.1)
    ticks = [t for t in steps if bottom <= t <= top]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_yticklabels([f"\u00d7{t:g}" for t in ticks])
    ax.grid(axis="y", color="#dddddd", lw=0.6)
    ax.set_xlabel("weeks since day 0")
    ax.set_ylabel("serum Tg relative to the first sample (Tg / Tg\u2080, log scale)")
    ax.set_title("Spider plot of thyroglobulin, coloured by simulated disease course")
    ax.legend(fontsize=8, loc="upper left", title="course", title_fontsize=8)
    return _save(plt, fig, path)


def _flow(plt: Any, r: SimulationResult, path: Path) -> Path:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    br = dict(r.per_branch)
    axes[0].barh(list(br)[::-1], list(br.values())[::-1], color="#4c72b0")
    axes[0].set_title("decision branch")
    es = dict(r.per_end_state)
    axes[1].barh(list(es)[::-1], list(es.values())[::-1], color="#dd8452")
    axes[1].set_title("end state")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.set_xlabel("patients")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for bar in ax.patches:
            ax.annotate(
                f"{int(bar.get_width()):,}",
                (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        ax.margins(x=0.15)
    fig.suptitle(f"Pathway flow: {r.pathways:,} simulated patients")
    return _save(plt, fig, path)


def _workload(plt: Any, r: SimulationResult, path: Path) -> Path:
    shown = r.workload[:60]
    months = [m.month for m in shown]
    keys = list(r.workload_columns)
    counts = [k for k in keys if not k.endswith(("_tablets", "_mg"))]
    drugs = [k for k in keys if k.endswith(("_tablets", "_mg"))]
    fig, ax = plt.subplots(figsize=(11, 5.2))
    x = np.arange(len(months))
    width = 0.8 / max(len(counts), 1)
    names = r.workload_columns
    for j, k in enumerate(counts):
        ax.bar(x + (j - (len(counts) - 1) / 2) * width, [m.mean[k] for m in shown], width, label=names[k])
    per = "mean over runs" if r.runs > 1 else "one run"
    ax.set_ylabel(f"assessments and doses per month ({per})")
    handles, labels = ax.get_legend_handles_labels()
    if drugs:
        ax2 = ax.twinx()
        for k, style in zip(drugs, ("k-", "k--", "k:", "k-."), strict=False):
            ax2.plot(x, [m.mean[k] for m in shown], style, lw=1.5, label=names[k])
        ax2.set_ylabel(" / ".join(names[k] for k in drugs) + " per month")
        ax2.set_ylim(bottom=0)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.set_xticks(x[::3])
    ax.set_xticklabels(months[::3], rotation=45, fontsize=7)
    ax.set_xlim(-0.6, len(months) - 0.4)
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=8, frameon=False)
    title = "Monthly workload" + (f" (first {len(shown)} months)" if len(r.workload) > len(shown) else "")
    ax.set_title(title)
    return _save(plt, fig, path)
