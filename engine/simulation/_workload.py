"""Workload per calendar month: assessments done, treatment doses given, tablets taken.

Each replicate trial gets its own months (counted from the scenario's ``study_start``); the answer is
the mean over the replicates and the busiest replicate per month. Runs that span chunks are added up
before they are folded in, so memory stays at one chunk plus the month table.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
from numpy.typing import NDArray

from ._generate import Cohort
from ._pathways import Pathway

__all__ = ["WorkloadAccumulator", "workload_columns"]


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


class WorkloadAccumulator:
    def __init__(self, pw: Pathway, start: dt.date, tablet_mg: dict[str, float], patients_per_run: int):
        self.pw = pw
        self.columns = workload_columns(pw, tablet_mg)
        self.keys = list(self.columns)
        self.tablet_mg = tablet_mg
        self.n = patients_per_run
        self._start_day = np.datetime64(start, "D")
        self._start_month = np.datetime64(start, "M")
        self.total = np.zeros((0, len(self.keys)))
        self.most = np.zeros((0, len(self.keys)))
        self.runs = 0
        self._pending: dict[int, NDArray[np.float64]] = {}

    def month_of(self, day: NDArray[np.float64]) -> NDArray[np.int64]:
        d = self._start_day + np.nan_to_num(day, nan=0, posinf=0).astype("timedelta64[D]")
        return (d.astype("datetime64[M]") - self._start_month).astype(np.int64)

    def month_start(self, m: NDArray[np.int64]) -> NDArray[np.float64]:
        first = (self._start_month + m.astype("timedelta64[M]")).astype("datetime64[D]")
        return (first - self._start_day).astype(np.float64)

    def labels(self, months: int) -> list[str]:
        return (self._start_month + np.arange(months).astype("timedelta64[M]")).astype(str).tolist()

    def add(self, c: Cohort, last_patient: int) -> None:
        """Fold in a chunk; ``last_patient`` is the global index after the chunk's last patient."""
        r0 = int(c.run[0])
        nr = int(c.run[-1]) - r0 + 1
        rl = c.run - r0
        chunks: list[tuple[int, NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]] = []
        for k, key in enumerate(self.keys):
            self._column(c, key, k, rl, chunks)
        months = max((int(m.max(initial=0)) for _, _, m, _ in chunks), default=0) + 1
        table = np.zeros((nr, months, len(self.keys)))
        for k, runs, m, w in chunks:
            flat = np.bincount(runs * months + m, weights=w, minlength=nr * months)
            table[:, :, k] += flat.reshape(nr, months)
        done = []
        for i in range(nr):
            r = r0 + i
            if r in self._pending:
                prev = self._pending.pop(r)
                table_i = _pad(table[i], len(prev))
                table_i[: len(prev)] += prev
            else:
                table_i = table[i]
            if (r + 1) * self.n <= last_patient:
                done.append(table_i)
            else:
                self._pending[r] = table_i
        for t in done:
            self._fold(t)

    def _column(
        self,
        c: Cohort,
        key: str,
        k: int,
        rl: NDArray[np.int64],
        out: list[tuple[int, NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]],
    ) -> None:
        pw = self.pw
        visits = [
            v for p in (*pw.before_decision, *(q for b in pw.branches for q in b.phases)) for v in p.visits
        ]
        for v in visits:
            hit = key in v.assessments or (v.treatment is not None and key == f"{v.treatment}_doses")
            if hit:
                d = c.visit_day[v.id]
                ok = ~np.isnan(d)
                out.append((k, rl[ok], self.month_of(d[ok]), np.ones(int(ok.sum()))))
        for s in c.segments:
            unit = self.tablet_mg.get(s.treatment)
            if key != f"{s.treatment}_{'tablets' if unit else 'mg'}":
                continue
            ok = s.stop > s.start  # nan compares False: not in the phase
            a, b, rate = s.start[ok], s.stop[ok], s.dose_mg_per_day[ok] / (unit or 1.0)
            runs = rl[ok]
            m = self.month_of(a)
            while a.size:
                edge = self.month_start(m + 1)
                days = np.minimum(b, edge) - a
                out.append((k, runs, m, days * rate))
                more = b > edge
                a, b, rate, runs, m = edge[more], b[more], rate[more], runs[more], m[more] + 1

    def _fold(self, t: NDArray[np.float64]) -> None:
        size = max(len(t), len(self.total))
        self.total = _pad(self.total, size)
        self.most = _pad(self.most, size)
        t = _pad(t, size)
        self.total += t
        np.maximum(self.most, t, out=self.most)
        self.runs += 1

    def finish(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        for r in sorted(self._pending):
            self._fold(self._pending.pop(r))
        return self.total / max(self.runs, 1), self.most


def _pad(a: NDArray[np.float64], rows: int) -> NDArray[np.float64]:
    if len(a) >= rows:
        return a.copy()
    return np.concatenate([a, np.zeros((rows - len(a), *a.shape[1:]))])
