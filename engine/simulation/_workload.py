"""Workload per calendar month: assessments done, treatment doses given, tablets taken.

Each replicate trial gets its own months (counted from the scenario's ``study_start``); the answer is
the mean over the replicates and the busiest replicate per month. Runs that span chunks are added up
before they are folded in, so memory stays at one chunk plus the month table.

A chunk costs O(chunk): every count lands in a (runs of the chunk) x (months the chunk spans) x (columns)
table with one ``np.bincount``. Days on a treatment are split over months without a loop per month: a
stay [a, b) at ``rate`` per day contributes, to month m with start S_m and length L_m,
``rate * (g_b(m) - g_a(m))`` where ``g_x(m)`` is ``L_m`` before x's month, ``x - S_m`` in it and 0 after;
so each end point adds one partial entry in its own month and one "full months before me" entry whose
reverse cumulative sum times L_m gives the whole months. Days and rates are whole numbers for the bundled
scenario, so these sums are exact.
"""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
from numpy.typing import NDArray

from ._generate import Cohort
from ._pathways import Pathway

__all__ = ["WorkloadAccumulator", "workload_columns"]

_GREGORIAN_MONTH = 365.2425 / 12  # the mean month of the calendar: the guess stays within a day or two
F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741 - the usual name for an index array


def workload_columns(pw: Pathway, tablet_mg: dict[str, float]) -> dict[str, str]:
    """Column key → label: each assessment with visits, each visit treatment (doses), each phase treatment."""
    proto = pw.protocol
    visits = [v for p in (*pw.before_decision, *(q for b in pw.branches for q in b.phases)) for v in p.visits]
    cols: dict[str, str] = {}
    for a in proto.assessments:
        if any(a.id in v.assessments for v in visits):
            cols[a.id] = a.name
    for v in visits:
        if v.treatment:
            t = proto.treatment(v.treatment)
            cols[f"{t.id}_doses"] = f"{t.name} doses"
    for p in (*pw.before_decision, *(q for b in pw.branches for q in b.phases)):
        if p.treatment and p.dose_mg_per_day:
            t = proto.treatment(p.treatment)
            unit = f"{tablet_mg[t.id]:g} mg tablets" if t.id in tablet_mg else "mg"
            cols[f"{t.id}_{'tablets' if t.id in tablet_mg else 'mg'}"] = f"{t.name} ({unit})"
    return cols


class _Months:
    """Calendar months from ``start``: day (since ``start``) → month index, month starts, labels."""

    def __init__(self, start: dt.date):
        self._day = np.datetime64(start, "D")
        self._month = np.datetime64(start, "M")
        self.start_month = self._month
        self._offset = float((self._day - self._month.astype("datetime64[D]")).astype(np.int64))
        self._lock = threading.Lock()
        self.starts = np.zeros(0)
        self._grow(240)

    def _grow(self, months: int) -> None:
        """Month starts (days since ``start``; month 0 starts on or before day 0) for ``months`` + 1.

        Only ever grows, under a lock: chunks run in threads, and any table long enough is a prefix of
        every longer one."""
        with self._lock:
            if months + 2 <= len(self.starts):
                return
            months = max(months, 2 * len(self.starts))
            m = (self._month + np.arange(months + 2).astype("timedelta64[M]")).astype("datetime64[D]")
            self.starts = (m - self._day).astype(np.int64).astype(np.float64)

    def of(self, day: F) -> I:
        """The month of each (finite, >= 0) day: an estimate from the mean month length, corrected by the
        table."""
        guess = ((day + self._offset) * (1.0 / _GREGORIAN_MONTH)).astype(np.int64)  # >= 0: truncation floors
        if guess.size and int(guess.max()) + 2 >= len(self.starts) - 1:
            self._grow(int(guess.max()) + 4)
        starts = self.starts
        guess -= starts[guess] > day
        guess += starts[1:][guess] <= day
        return guess

    def labels(self, months: int) -> list[str]:
        return (self._month + np.arange(months).astype("timedelta64[M]")).astype(str).tolist()


class WorkloadAccumulator:
    def __init__(self, pw: Pathway, start: dt.date, tablet_mg: dict[str, float], patients_per_run: int):
        self.pw = pw
        self.columns = workload_columns(pw, tablet_mg)
        self.keys = list(self.columns)
        self.tablet_mg = tablet_mg
        self.n = patients_per_run
        self.months = _Months(start)
        self.total = np.zeros((0, len(self.keys)))
        self.most = np.zeros((0, len(self.keys)))
        self.runs = 0
        self._pending: dict[int, tuple[F, int]] = {}  # run → its months so far (from month 0), how many
        self._used = 0
        visits = [v for p in (*pw.before_decision, *(q for b in pw.branches for q in b.phases)) for v in p.visits]
        col = {k: i for i, k in enumerate(self.keys)}
        self._visit_cols = [
            (
                v.id,
                [col[a] for a in dict.fromkeys(v.assessments) if a in col]
                + ([col[f"{v.treatment}_doses"]] if v.treatment and f"{v.treatment}_doses" in col else []),
            )
            for v in visits
        ]
        self._visit_cols = [(vid, cols) for vid, cols in self._visit_cols if cols]

    def labels(self, months: int) -> list[str]:
        return self.months.labels(months)

    def add(self, c: Cohort, last_patient: int) -> None:
        """Fold in a chunk; ``last_patient`` is the global index after the chunk's last patient."""
        self.fold(self.table(c), last_patient)

    def table(self, c: Cohort) -> tuple[int, int, F] | None:
        """A chunk's counts: (first run, first month, runs x months x columns); thread-safe."""
        r0 = int(c.run[0])
        nr = int(c.run[-1]) - r0 + 1
        rl = c.run - r0
        nk = len(self.keys)
        # entries: (row, month, column, weight) for counts; (row, month, column, weight) for "full months"
        rows: list[I] = []
        mons: list[I] = []
        cols: list[int | I] = []
        wts: list[F | None] = []
        frows: list[I] = []
        fmons: list[I] = []
        fcols: list[int] = []
        fwts: list[F] = []
        for vid, vcols in self._visit_cols:
            d = c.visit_day[vid]
            ok = ~np.isnan(d)
            r, m = rl[ok], self.months.of(d[ok])
            for k in vcols:
                rows.append(r)
                mons.append(m)
                cols.append(k)
                wts.append(None)
        for s in c.segments:
            unit = self.tablet_mg.get(s.treatment)
            key = f"{s.treatment}_{'tablets' if unit else 'mg'}"
            if key not in self.keys:
                continue
            k = self.keys.index(key)
            ok = s.stop > s.start  # nan compares False: not in the phase
            a, b, rate = s.start[ok], s.stop[ok], s.dose_mg_per_day[ok] / (unit or 1.0)
            r = rl[ok]
            ma = self.months.of(a)
            mb = self.months.of(b)
            starts = self.months.starts  # after of(): it may have grown the table
            mb -= (starts[mb] == b) & (mb > ma)  # a stay ending on a month's first day ends the month before
            for m, x, w in ((mb, b, rate), (ma, a, -rate)):
                rows.append(r)
                mons.append(m)
                cols.append(k)
                wts.append(w * (x - starts[m]))
                frows.append(r)
                fmons.append(m)
                fcols.append(k)
                fwts.append(w)
        if not rows:
            return None
        lo = min(int(m.min(initial=1 << 62)) for m in mons)
        hi = max(int(m.max(initial=-1)) for m in mons)
        if lo > hi:
            return None
        span = hi - lo + 1
        size = nr * span * nk

        def flat(r: I, m: I, k: int | I) -> I:
            return (r * span + (m - lo)) * nk + k

        idx = np.concatenate([flat(r, m, k) for r, m, k in zip(rows, mons, cols, strict=True)])
        wt = np.concatenate([np.ones(len(r)) if w is None else w for r, w in zip(rows, wts, strict=True)])
        table: F = np.asarray(np.bincount(idx, weights=wt, minlength=size), dtype=np.float64).reshape(nr, span, nk)
        if frows:
            fidx = np.concatenate([flat(r, m, k) for r, m, k in zip(frows, fmons, fcols, strict=True)])
            full = np.bincount(fidx, weights=np.concatenate(fwts), minlength=size).reshape(nr, span, nk)
            # Σ over later months of the "full months before me" weights, times the month's length
            after = np.cumsum(full[:, ::-1], axis=1)[:, ::-1]
            after[:, :-1] = after[:, 1:]
            after[:, -1] = 0.0
            table += after * np.diff(self.months.starts[lo : hi + 2])[None, :, None]
        return r0, lo, table

    def fold(self, counts: tuple[int, int, F] | None, last_patient: int) -> None:
        """Fold in a chunk's :meth:`table`, in chunk order."""
        if counts is None:
            return
        r0, lo, table = counts
        nr = table.shape[0]
        # runs: those complete in this chunk fold in now; the first and last may span chunks
        complete = (np.arange(r0, r0 + nr) + 1) * self.n <= last_patient
        first_pending = r0 in self._pending
        if first_pending or not complete[0]:
            row = _place(self._pending.pop(r0, None), table[0], lo)
            if complete[0]:
                self._fold_abs(*row)
            else:
                self._pending[r0] = row
            start_row = 1
        else:
            start_row = 0
        if nr > start_row:
            body = slice(start_row, nr if complete[-1] else nr - 1)
            block = table[body]
            if len(block):
                self._fold_block(block, lo)
            if not complete[-1] and nr - 1 >= start_row:
                self._pending[r0 + nr - 1] = _place(None, table[nr - 1], lo)

    def _ensure(self, months: int) -> None:
        if months > len(self.total):
            cap = max(months, 2 * len(self.total))
            self.total = _pad(self.total, cap)
            self.most = _pad(self.most, cap)
        self._used = max(self._used, months)

    def _fold_block(self, block: F, lo: int) -> None:
        """Fold complete runs (rows of ``block``, months from ``lo``)."""
        hi = lo + block.shape[1]
        self._ensure(hi)
        self.total[lo:hi] += block.sum(axis=0)
        np.maximum(self.most[lo:hi], block.max(axis=0), out=self.most[lo:hi])
        self.runs += block.shape[0]

    def _fold_abs(self, t: F, used: int) -> None:
        self._fold_block(t[None, :used], 0)

    def finish(self) -> tuple[F, F]:
        for r in sorted(self._pending):
            self._fold_abs(*self._pending.pop(r))
        used = self._used
        return self.total[:used] / max(self.runs, 1), self.most[:used]


def _place(prev: tuple[F, int] | None, row: F, lo: int) -> tuple[F, int]:
    """A run's months from 0 (grown by doubling) and how many are used: ``prev`` plus ``row`` (from ``lo``)."""
    hi = lo + len(row)
    if prev is None:
        out, used = np.zeros((hi, row.shape[1])), hi
    else:
        out, used = prev
        if len(out) < hi:
            out = _pad(out, max(hi, 2 * len(out)))
        used = max(used, hi)
    out[lo:hi] += row
    return out, used


def _pad(a: F, rows: int) -> F:
    if len(a) >= rows:
        return a
    return np.concatenate([a, np.zeros((rows - len(a), *a.shape[1:]))])
