"""The decision's evidence drawn as SVG, server-side (no script, no inline style: the CSP stays strict).

Both charts draw numbers the rules already returned (``DecisionPreview.criteria``); nothing is
recomputed here but the pixel positions: the Tg chart plots ln Tg against weeks with the rule's
own fitted line (its ``intercept`` and ``slope_per_week``), the RECIST chart the sums of diameters
with the baseline and each nadir the rule compared against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Chart", "recist_chart", "tg_chart"]

W, H = 520, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """What the template draws; coordinates are in SVG pixels."""

    title: str
    description: str
    x_label: str
    y_label: str
    points: tuple[Point, ...]
    lines: tuple[Line, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    width: int = W
    height: int = H


def _scale(lo: float, hi: float, a: float, b: float) -> Any:
    span = hi - lo or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def tg_chart(result: dict[str, Any]) -> Chart | None:
    """ln Tg by week with the rule's fitted line; None when the rule used no values."""
    used = [u for u in result.get("used", []) if u.get("value") and u["value"] > 0]
    if not used:
        return None
    xs = [float(u["week"]) for u in used]
    ys = [math.log(float(u["value"])) for u in used]
    raw_slope, raw_intercept = result.get("slope_per_week"), result.get("intercept")
    fit = isinstance(raw_slope, int | float) and isinstance(raw_intercept, int | float) \
        and math.isfinite(raw_slope) and math.isfinite(raw_intercept)
    slope = float(raw_slope) if fit and raw_slope is not None else 0.0
    intercept = float(raw_intercept) if fit and raw_intercept is not None else 0.0
    x_lo, x_hi = min(0.0, min(xs)), max(max(xs), 1.0)
    y_all = ys + ([intercept + slope * x_lo, intercept + slope * x_hi] if fit else [])
    pad = max((max(y_all) - min(y_all)) * 0.1, 0.1)
    y_lo, y_hi = min(y_all) - pad, max(y_all) + pad
    sx, sy = _scale(x_lo, x_hi, LEFT, W - RIGHT), _scale(y_lo, y_hi, H - BOTTOM, TOP)
    points = tuple(Point(sx(x), sy(y), f"{u['date']}: Tg {u['value']:g} ug/L (week {x:.1f})"
                         + (" (below LoQ, substituted)" if u.get("below_loq") else ""))
                   for x, y, u in zip(xs, ys, used, strict=True))
    lines: tuple[Line, ...] = ()
    if fit:
        lines = (Line(sx(x_lo), sy(intercept + slope * x_lo), sx(x_hi), sy(intercept + slope * x_hi),
                      f"fitted ln Tg slope {slope:+.4f}/week"),)
    x_ticks = tuple(Tick(sx(t), f"{t:g}") for t in _ticks(x_lo, x_hi))
    y_ticks = tuple(Tick(sy(t), f"{math.exp(t):.3g}") for t in _ticks(y_lo, y_hi))
    return Chart("Thyroglobulin, log scale", result.get("reason", ""), "weeks since day 0", "Tg ug/L (log)",
                 points, lines, x_ticks, y_ticks)


def recist_chart(result: dict[str, Any]) -> Chart | None:
    """Sum of target diameters at baseline and each follow-up, with the baseline and nadir references."""
    base = result.get("baseline_sum_mm")
    visits = [a for a in result.get("assessments", []) if a.get("sum_mm") is not None]
    if base is None:
        return None
    labels = [str(result.get("baseline_date", "baseline"))] + [str(a["date"]) for a in visits]
    sums = [float(base)] + [float(a["sum_mm"]) for a in visits]
    nadirs = [float(a["nadir_mm"]) for a in visits if a.get("nadir_mm") is not None]
    y_hi = max([*sums, *nadirs]) * 1.15 or 10.0
    sx = _scale(0, max(len(sums) - 1, 1), LEFT + 20, W - RIGHT - 20)
    sy = _scale(0, y_hi, H - BOTTOM, TOP)
    points = tuple(Point(sx(i), sy(s), f"{labels[i]}: sum {s:g} mm" + (
        f" ({visits[i - 1]['overall']}, {visits[i - 1]['pct_from_baseline']:+g} % from baseline)" if i else
        " (baseline)")) for i, s in enumerate(sums))
    lines = [Line(LEFT, sy(base), W - RIGHT, sy(base), f"baseline {base:g} mm", dashed=True)]
    if nadirs and min(nadirs) < base:
        nadir = min(nadirs)
        lines.append(Line(LEFT, sy(nadir), W - RIGHT, sy(nadir), f"nadir {nadir:g} mm", dashed=True))
    lines += [Line(points[i].x, points[i].y, points[i + 1].x, points[i + 1].y, "") for i in range(len(points) - 1)]
    x_ticks = tuple(Tick(sx(i), lab) for i, lab in enumerate(labels))
    y_ticks = tuple(Tick(sy(t), f"{t:g}") for t in _ticks(0, y_hi))
    return Chart("RECIST sum of target diameters", result.get("reason", ""), "assessment", "sum of diameters, mm",
                 points, tuple(lines), x_ticks, y_ticks)
