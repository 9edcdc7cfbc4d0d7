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
import itertools
import math
import threading

import numpy as np
from numpy.typing import NDArray

from ._generate import Cohort
from ._kernels import kernels
from ._pathways import Pathway

__all__ = ["WorkloadAccumulator", "workload_columns"]

_GREGORIAN_MONTH = 365.2425 / 12  # the mean month of the calendar: the guess stays within a day or two
F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741 - the usual name for an index array
_NO_ROWS = np.zeros(0, np.int64)


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
        groups: dict[tuple[int, ...], list[str]] = {}
        for vid, cols in self._visit_cols:
            groups.setdefault(tuple(cols), []).append(vid)
        self._visit_groups = list(groups.items())
        self._visit_ids = [vid for _, vids in self._visit_groups for vid in vids]
        sizes = [len(vids) for _, vids in self._visit_groups]
        ends = np.cumsum([0, *sizes]).tolist()
        self._bands = [slice(i, j) for i, j in itertools.pairwise(ends)]

    def labels(self, months: int) -> list[str]:
        return self.months.labels(months)

    def add(self, c: Cohort, last_patient: int) -> None:
        """Fold in a chunk; ``last_patient`` is the global index after the chunk's last patient."""
        self.fold(self.table(c), last_patient)

    def table(self, c: Cohort) -> tuple[int, int, F] | None:
        """A chunk's counts: (first run, first month, runs x months x columns); thread-safe."""
        r0 = int(c.run[0])
        nr = int(c.run[-1]) - r0 + 1
        # the visits done: V x P days (nan: not done), the visits of a set of columns in a band of rows
        days = np.stack([c.visit_day[v] for v in self._visit_ids]) if self._visit_ids else np.zeros((0, c.size))
        stays = self._stays(c, nr > 1)
        # the days the chunk spans: every count falls on a day in [first, last]
        first, last = math.inf, -math.inf
        if days.size:
            lo_d, hi_d = float(np.fmin.reduce(days, axis=None)), float(np.fmax.reduce(days, axis=None))
            if lo_d == lo_d:  # not nan: some visit done
                first, last = lo_d, hi_d
        for _, a, b, _, _ in stays:
            if a.size:  # a stay ending on a day's start is over the day before
                first, last = min(first, float(a.min())), max(last, float(np.ceil(b.max())) - 1)
        if first > last:
            return None
        day0, ndays = math.floor(first), math.floor(last) - math.floor(first) + 1
        lo, hi = (int(m) for m in self.months.of(np.array([day0, day0 + ndays - 1], dtype=np.float64)))
        span = hi - lo + 1
        starts = self.months.starts[lo : hi + 2] - day0  # days from day0 at which the months start
        table = np.zeros((nr, span, len(self.keys)))
        self._by_month(table, days, stays, c.run - r0, day0, ndays, starts)
        return r0, lo, table

    def _stays(self, c: Cohort, rows: bool) -> list[tuple[int, F, F, F, I | None]]:
        """The days on a treatment, all segments of a column at once: [a, b) at ``rate`` a day (and the
        row of the run, when asked)."""
        by_key: dict[str, list[int]] = {}
        for i, s in enumerate(c.segments):
            unit = self.tablet_mg.get(s.treatment)
            by_key.setdefault(f"{s.treatment}_{'tablets' if unit else 'mg'}", []).append(i)
        stays: list[tuple[int, F, F, F, I | None]] = []
        for key, ids in by_key.items():
            if key not in self.keys:
                continue
            segs = [c.segments[i] for i in ids]
            unit = self.tablet_mg.get(segs[0].treatment) or 1.0
            oks = [np.flatnonzero(s.stop > s.start) for s in segs]  # nan compares False: not in the phase
            a = np.concatenate([s.start.take(ok) for s, ok in zip(segs, oks, strict=True)])
            b = np.concatenate([s.stop.take(ok) for s, ok in zip(segs, oks, strict=True)])
            rate = np.concatenate(
                [
                    np.full(len(ok), s.level) if s.level is not None else s.dose_mg_per_day.take(ok)
                    for s, ok in zip(segs, oks, strict=True)
                ]
            )
            rate /= unit
            rl = c.run - int(c.run[0])
            row = np.concatenate([rl.take(ok) for ok in oks]) if rows else None
            stays.append((self.keys.index(key), a, b, rate, row))
        return stays

    def _by_month(
        self,
        table: F,
        days: F,
        stays: list[tuple[int, F, F, F, I | None]],
        rl: I,
        day0: int,
        ndays: int,
        starts: F,
    ) -> None:
        """Several runs (rows): each day's month from a lookup table, then counts per (run, month)."""
        nr, span, _ = table.shape
        # lut[t] = the month (from the first) of day day0 + t; lut[ndays] = span, the bin of what is not counted
        ends = np.clip(starts[1:], 0, ndays).astype(np.intp)
        lut = np.repeat(np.arange(span + 1, dtype=np.int32), np.diff(ends, prepend=0, append=ndays + 1))
        k_ = kernels()
        multi = nr > 1
        rl = np.ascontiguousarray(rl, dtype=np.int64)
        if days.size:
            for (cols, _), band in zip(self._visit_groups, self._bands, strict=True):
                got = np.zeros((nr, span), np.int64)
                k_.visit_counts(days, band.start, band.stop, day0, ndays, lut, rl, span, multi, got)
                for k in cols:
                    table[:, :, k] += got
        for k, a, b, rate, rows in stays:
            # [a, b) gives month m ``rate * (g_b(m) - g_a(m))``: its partial months at both ends, and
            # "full months before me" from b, less those before a (each (run, month) summed in the order
            # numpy's bincount sums it: the ends b, then the starts a)
            k_.stay_days(a, b, rate, _NO_ROWS if rows is None else rows, rows is not None, day0, lut, starts, table, k)

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
        one = len(block) == 1  # (a single run of many patients spans many months)
        self.total[lo:hi] += block[0] if one else block.sum(axis=0)
        np.maximum(self.most[lo:hi], block[0] if one else block.max(axis=0), out=self.most[lo:hi])
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
    out = np.zeros((rows, *a.shape[1:]))  # calloc: pages are zeroed when first touched
    out[: len(a)] = a
    return out
