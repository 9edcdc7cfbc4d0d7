"""The simulator's hottest per-patient passes, as whole-array numpy operations.

They were compiled with numba for a while; measured as whole processes (``benchmarks/bench_simulate.py``)
numba's loading cost more than it saved at every size up to 10^6 pathways, so these are the numpy
passes it had replaced (byte-identical results, the same floating-point order). ``kernels()`` keeps one
namespace of them so the simulator's callers do not depend on how they are implemented.
"""

from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = ["kernels"]


def place_visit(
    anchor: Any,
    vday: int,
    entry: Any,
    stop: Any,
    among: Any,
    u: Any,
    shift: int,
    table: Any,
    cuts: Any,
    before: int,
    hard: int,
    jittered: bool,
    miss: Any,
    p_miss: float,
    can_miss: bool,
    out: Any,
    latest: Any,
) -> None:
    """A visit's date per patient (nan: not done) into ``out``, and the latest visit in ``latest``.

    day = max(anchor + day + jitter, entry); done = among & not missed & day < stop. The jitter is the
    table's (by the top bits of ``u``) or, where the table says ``hard``, the search of the cuts."""
    day = np.add(anchor, vday, out=out)  # never -0.0: vday is a whole number (-0.0 + 0 is 0.0)
    if jittered:
        j = table.take(u >> shift)
        if j.size and j.min() == hard:  # (one pass, where finding none would take two)
            tough = np.flatnonzero(j == hard)
            j[tough] = np.searchsorted(cuts, u[tough].astype(np.uint64), side="right") - before
        day += j
    np.maximum(day, entry, out=day)
    done = np.less(day, stop)
    done &= among
    if can_miss:
        done &= miss >= p_miss
    np.putmask(day, np.logical_not(done, out=done), np.nan)  # (faster than copyto with where=)
    np.fmax(latest, day, out=latest)


def earliest_inside(d: Any, lo: Any, hi: Any, inside: Any) -> None:
    """inside = fmin(inside, d where lo <= d <= hi else inf)."""
    with np.errstate(invalid="ignore"):
        np.fmin(inside, np.where((d >= lo) & (d <= hi), d, np.inf), out=inside)


def visit_counts(
    days: Any, band0: int, band1: int, day0: int, ndays: int, lut: Any, rl: Any, span: int, multi: bool, got: Any
) -> None:
    """Visits done (rows band0..band1 of ``days``) per (run, month) added into ``got`` (runs x months)."""
    nr = got.shape[0]
    stride = span + 1  # each run's months, then its bin of what is not counted (dropped below)
    t = days[band0:band1] - day0
    np.fmin(t, ndays, out=t)  # nan (not done) → the last entry of the lookup table: not counted
    m = lut.take(t.astype(np.intp))
    if multi:
        m = m + (rl * stride)[None, :]
    got += np.bincount(m.ravel(), minlength=nr * stride).reshape(nr, stride)[:, :span]


def stay_days(
    a: Any, b: Any, rate: Any, rows: Any, multi: bool, day0: int, lut: Any, starts: Any, table: Any, k: int
) -> None:
    """Days on a treatment per (run, month): table[:, :, k] gets ``rate`` x each month's days of [a, b).

    [a, b) gives month m ``rate * (g_b(m) - g_a(m))``: its partial months at both ends, and "full months
    before me" from b, less those before a."""
    nr, span = table.shape[0], table.shape[1]
    size = nr * span
    ma = lut[(a - day0).astype(np.intp)]
    mb = lut[(np.ceil(b) - 1 - day0).astype(np.intp)]
    idx = np.concatenate([mb, ma])
    wts = np.concatenate([rate, -rate])
    part = wts * (np.concatenate([b, a]) - day0 - starts[idx])
    if multi:
        idx = idx + np.concatenate([rows, rows]) * span
    table[:, :, k] += np.bincount(idx, weights=part, minlength=size).reshape(nr, span)
    full = np.bincount(idx, weights=wts, minlength=size).reshape(nr, span)
    # Σ over later months of the "full months before me" weights, times the month's length
    after = np.cumsum(full[:, ::-1], axis=1)[:, ::-1]
    after[:, :-1] = after[:, 1:]
    after[:, -1] = 0.0
    table[:, :, k] += after * np.diff(starts[: span + 1])[None, :]


@lru_cache(maxsize=1)
def kernels() -> Any:
    """The passes, as one namespace."""
    return SimpleNamespace(
        place_visit=place_visit, earliest_inside=earliest_inside, visit_counts=visit_counts, stay_days=stay_days
    )
