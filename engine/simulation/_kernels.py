"""The simulator's hottest per-patient passes, compiled with numba (imported here, on first use only, so
``trialflow --help`` and the rules' one-patient path never pay for it).

Each kernel does in one pass, patient by patient, what a handful of whole-array numpy operations did,
in the same order of floating-point operations: results are byte-identical to the numpy passes."""

from __future__ import annotations

from functools import lru_cache
from types import SimpleNamespace
from typing import Any

__all__ = ["kernels"]


@lru_cache(maxsize=1)
def kernels() -> Any:
    """The compiled kernels (compiled once per machine, then loaded from numba's cache)."""
    import math

    import numpy as np
    from numba import njit

    jit = njit(cache=True, nogil=True)

    @jit
    def cuts_at_or_below(cuts: Any, x: Any) -> int:
        """np.searchsorted(cuts, x, side="right")."""
        lo, hi = 0, cuts.shape[0]
        while lo < hi:
            mid = (lo + hi) >> 1
            if cuts[mid] <= x:
                lo = mid + 1
            else:
                hi = mid
        return lo

    @jit
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

        day = max(anchor + day + jitter, entry); done = among & not missed & day < stop. The jitter is
        the table's (by the top bits of ``u``) or, where the table says ``hard``, the search of the cuts."""
        n = out.shape[0]
        for i in range(n):  # the date (two loops: each one simple enough for the compiler to pipeline)
            j = np.int64(0)  # numpy adds the whole-day jitter 0 too (-0.0 + 0 is 0.0)
            if jittered:
                j = np.int64(table[u[i] >> shift])
                if j == hard:
                    j = np.int64(cuts_at_or_below(cuts, np.uint64(u[i])) - before)
            out[i] = anchor[i] + vday + np.float64(j)
        for i in range(n):
            d = out[i]
            e = entry[i]
            if d != d or e != e:  # np.maximum: nan if either is
                d = math.nan
            elif e > d:
                d = e
            ok = among[i] and d < stop[i] and not (can_miss and miss[i] < p_miss)
            v = d if ok else math.nan
            out[i] = v
            last = latest[i]
            if v == v and (last != last or v > last):  # np.fmax: nan only if both are
                latest[i] = v

    @jit
    def earliest_inside(d: Any, lo: Any, hi: Any, inside: Any) -> None:
        """inside = fmin(inside, d where lo <= d <= hi else inf)."""
        for i in range(d.shape[0]):
            x = d[i]
            if x >= lo[i] and x <= hi[i] and x < inside[i]:
                inside[i] = x

    @jit
    def visit_counts(
        days: Any, band0: int, band1: int, day0: int, ndays: int, lut: Any, rl: Any, span: int, multi: bool, got: Any
    ) -> None:
        """Visits done (rows band0..band1 of ``days``) per (run, month) into ``got`` (runs x months)."""
        p = days.shape[1]
        nr = got.shape[0]
        flat = np.zeros(nr * span + 1, np.int64)  # the last bin: what is not counted
        for r in range(band0, band1):
            for i in range(p):
                t = days[r, i] - day0
                m = lut[int(t) if t < ndays else ndays]  # nan (not done) or past the table: lut[ndays] = span
                flat[nr * span if m == span else (rl[i] * span + m if multi else m)] += 1
        for r in range(nr):
            for m in range(span):
                got[r, m] += flat[r * span + m]

    @jit
    def stay_days(
        a: Any, b: Any, rate: Any, rows: Any, multi: bool, day0: int, lut: Any, starts: Any, table: Any, k: int
    ) -> None:
        """Days on a treatment per (run, month): table[:, :, k] gets ``rate`` x each month's days of [a, b)."""
        nr, span = table.shape[0], table.shape[1]
        part = np.zeros(nr * span)
        full = np.zeros(nr * span)
        n = a.shape[0]
        for half in range(2):  # the ends b (weight rate), then the starts a (weight -rate): bincount's order
            for i in range(n):
                if half == 0:
                    x, w = b[i], rate[i]
                    m = lut[int(np.ceil(x) - 1 - day0)]
                else:
                    x, w = a[i], -rate[i]
                    m = lut[int(x - day0)]
                val = w * (x - day0 - starts[m])
                idx = m + rows[i] * span if multi else m
                part[idx] += val
                full[idx] += w
        for r in range(nr):
            for m in range(span):
                table[r, m, k] += part[r * span + m]
            # Σ over later months of the "full months before me" weights (a reversed cumsum), times the
            # month's length
            acc = 0.0
            for m in range(span - 1, -1, -1):
                after = acc if m < span - 1 else 0.0
                table[r, m, k] += after * (starts[m + 1] - starts[m])
                acc = full[r * span + m] if m == span - 1 else acc + full[r * span + m]

    return SimpleNamespace(
        place_visit=place_visit,
        earliest_inside=earliest_inside,
        visit_counts=visit_counts,
        stay_days=stay_days,
    )
