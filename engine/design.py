"""Designs for the primary endpoint (a favourable-response proportion) and their exact operating characteristics.

A trial of a design treats patients in one or two stages and declares the treatment worth pursuing when
the favourable responses exceed the design's thresholds:

- single stage (A'Hern, Statistics in Medicine 2001;20:859-866): ``n`` patients, success when at least
  ``r + 1`` respond (the rejection region of the exact one-sided binomial test of p <= p0);
- two stages (Simon, Controlled Clinical Trials 1989;10:1-10): ``n1`` patients; stop for futility when
  at most ``r1`` respond; otherwise ``n - n1`` more, success when more than ``r`` respond in all ``n``.
  The *optimal* design has the smallest expected size under p0; the *minimax* design the smallest
  maximum size (then the smallest expected size under p0).

Every figure here is exact (binomial sums), found by search over the sizes, never looked up.
Only ``numpy`` and ``scipy.special`` are imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DesignError",
    "ExactCharacteristics",
    "SingleStageDesign",
    "TwoStageDesign",
    "binomial_pmf",
    "clopper_pearson",
    "exact_characteristics",
    "single_stage_design",
    "two_stage_designs",
]

F = NDArray[np.float64]


class DesignError(ValueError):
    """The design question has no answer as asked (the message says what to change)."""


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial confidence interval (Clopper & Pearson, Biometrika 1934)."""
    from scipy.special import betaincinv

    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, a))
    hi = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1 - a))
    return lo, hi


def binomial_pmf(n: int, p: float) -> F:
    """P(X = k) for k = 0..n, X ~ Binomial(n, p), computed on the log scale (exact to rounding)."""
    from scipy.special import gammaln, xlog1py, xlogy

    k = np.arange(n + 1, dtype=np.float64)
    log = gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0) + xlogy(k, p) + xlog1py(n - k, -p)
    return np.asarray(np.exp(log), dtype=np.float64)


def _tail(pmf: F) -> F:
    """S[k] = P(X > k) for k = 0..n (S[n] = 0), from the pmf, summed from the top (no cancellation)."""
    s = np.cumsum(pmf[::-1])[::-1]  # s[k] = P(X >= k)
    return np.append(s[1:], 0.0)


@dataclass(frozen=True, slots=True)
class SingleStageDesign:
    """Treat ``n`` patients; success when more than ``r`` respond."""

    n: int
    r: int
    p0: float
    p1: float
    alpha: float  # the exact type I error P(X > r | p0)
    power: float  # P(X > r | p1)
    source: str = "A'Hern, Stat Med 2001;20:859-866 (exact single-stage)"

    @property
    def kind(self) -> str:
        return "single_stage"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n": self.n,
            "r": self.r,
            "success_when": f"more than {self.r} of {self.n} favourable",
            "p0": self.p0,
            "p1": self.p1,
            "alpha": round(self.alpha, 6),
            "power": round(self.power, 6),
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class TwoStageDesign:
    """Simon two-stage: stop after ``n1`` when at most ``r1`` respond; success when more than ``r`` of ``n``."""

    name: str  # optimal or minimax
    r1: int
    n1: int
    r: int
    n: int
    p0: float
    p1: float
    alpha: float  # exact type I error at p0
    power: float  # exact power at p1
    expected_n0: float  # expected number of patients under p0
    pet0: float  # probability of early termination under p0
    source: str = "Simon, Control Clin Trials 1989;10:1-10 (two-stage, by exhaustive search)"

    @property
    def kind(self) -> str:
        return f"simon_{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "r1": self.r1,
            "n1": self.n1,
            "r": self.r,
            "n": self.n,
            "stop_when": f"at most {self.r1} of the first {self.n1} favourable",
            "success_when": f"more than {self.r} of {self.n} favourable",
            "p0": self.p0,
            "p1": self.p1,
            "alpha": round(self.alpha, 6),
            "power": round(self.power, 6),
            "expected_n_p0": round(self.expected_n0, 4),
            "pet_p0": round(self.pet0, 6),
            "source": self.source,
        }


Design = SingleStageDesign | TwoStageDesign
N_MAX_SEARCH = 200  # the largest total size the exhaustive two-stage search goes to (seconds, not minutes)


def _check(p0: float, p1: float, alpha: float, beta: float) -> None:
    if not 0 <= p0 < p1 <= 1:
        raise DesignError(f"need 0 <= p0 < p1 <= 1 (the rate of no interest below the target), got p0={p0}, p1={p1}")
    for name, v in (("alpha", alpha), ("beta", beta)):
        if not 0 < v < 0.5:
            raise DesignError(f"{name} must be in (0, 0.5), got {v}")


def single_stage_design(p0: float, p1: float, alpha: float, beta: float, *, n_max: int = 1000) -> SingleStageDesign:
    """A'Hern's exact single-stage design: the smallest ``n`` with a cut-off ``r`` such that
    P(X > r | p0) <= alpha and P(X > r | p1) >= 1 - beta."""
    _check(p0, p1, alpha, beta)
    for n in range(1, n_max + 1):
        s0 = _tail(binomial_pmf(n, p0))
        ok = np.flatnonzero(s0 <= alpha)  # cut-offs r with type I error <= alpha (S0 falls with r)
        if not ok.size:
            continue
        r = int(ok[0])
        power = float(_tail(binomial_pmf(n, p1))[r])
        if power >= 1 - beta:
            return SingleStageDesign(n, r, p0, p1, float(s0[r]), power)
    raise DesignError(f"no single-stage design of at most {n_max} patients meets alpha={alpha}, beta={beta}")


def _reject(pmf1: F, tail2: F, n1: int, n2: int) -> F:
    """R[r1, r] = P(X1 > r1 and X1 + X2 > r) for r1 = 0..n1, r = 0..n1+n2 (X1 ~ Bin(n1), X2 ~ Bin(n2))."""
    n = n1 + n2
    # ext[n1 + k] = P(X2 > k) for k = -n1..n (1 below 0): row x1 of P(X2 > r - x1) is ext[n1 - x1 :][: n + 1]
    ext = np.concatenate([np.ones(n1), tail2, np.zeros(n1)])
    s2 = np.lib.stride_tricks.sliding_window_view(ext, n + 1)[n1::-1]
    m = pmf1[:, None] * s2  # P(X1 = x1 and X2 > r - x1)
    out = np.empty((n1 + 1, n + 1))
    np.cumsum(m[:0:-1], axis=0, out=out[n1 - 1 :: -1])  # out[r1] = sum over x1 > r1
    out[n1] = 0.0
    return out


def two_stage_designs(
    p0: float, p1: float, alpha: float, beta: float, *, n_max: int | None = None
) -> tuple[TwoStageDesign, TwoStageDesign]:
    """Simon's (optimal, minimax) two-stage designs, by exhaustive search over n, n1, r1, r.

    For each total ``n`` up to ``n_max`` (default the larger of 100 and twice the single-stage size, at
    most :data:`N_MAX_SEARCH`),
    first-stage size ``n1`` and futility cut ``r1``, the final cut ``r`` is the smallest that keeps the
    type I error at most ``alpha`` (it gives the most power); a design is admissible when its power is
    at least ``1 - beta``.
    The optimal design minimises the expected size under p0 (ties: the smaller n, then n1), the minimax
    design minimises n (ties: the smaller expected size under p0)."""
    _check(p0, p1, alpha, beta)
    single = single_stage_design(p0, p1, alpha, beta)
    # clinfun's ph2simon searches to 100; optimal designs in Simon's tables need at most ~1.25 x the
    # single stage, so twice it (capped at the search's reach) loses none
    top = n_max if n_max is not None else min(max(100, 2 * single.n), N_MAX_SEARCH)
    if top > N_MAX_SEARCH or (n_max is None and single.n * 1.3 > N_MAX_SEARCH):
        raise DesignError(
            f"a single stage needs {single.n} patients; a two-stage design of this question lies past the "
            f"{N_MAX_SEARCH} patients the exhaustive search goes to (give n_max up to {N_MAX_SEARCH}, or ask "
            "for a larger difference between p0 and p1)"
        )
    best: tuple[float, int, int, int, int, float, float, float] | None = None  # en0, n, n1, r1, r, a, pw, pet
    mini: tuple[int, float, int, int, int, float, float, float] | None = None
    pmf = [np.stack([binomial_pmf(k, p0), binomial_pmf(k, p1)]) for k in range(top + 1)]  # 2 x (k + 1)
    # surv[n2][:, x1, r] = P(X2 > r - x1) under p0 and p1 (1 when r < x1), for every x1 and r up to top
    surv = []
    for n2 in range(top + 1):
        t = np.stack([_tail(pmf[n2][0]), _tail(pmf[n2][1])])
        ext = np.concatenate([np.ones((2, top)), t, np.zeros((2, top + 1))], axis=1)
        view = np.lib.stride_tricks.sliding_window_view(ext, top + 1, axis=1)[:, top::-1]  # 2 x (top+1) x (top+1)
        surv.append(view)
    cols = np.arange(top + 1)
    for n in range(2, top + 1):
        for n1 in range(1, n):
            n2 = n - n1
            m = pmf[n1][:, :, None] * surv[n2][:, : n1 + 1, : n + 1]  # P(X1 = x1 and X2 > r - x1)
            rej = np.cumsum(m[:, :0:-1], axis=1)[:, ::-1]  # rej[:, r1] = P(X1 > r1, X1 + X2 > r), r1 < n1
            rej0, rej1 = rej[0], rej[1]
            pm0 = pmf[n1][0]
            r1s = np.arange(n1)
            ok = (rej0 <= alpha) & (cols[None, : n + 1] >= r1s[:, None])
            has = ok.any(axis=1)
            r = np.argmax(ok, axis=1)  # the smallest admissible r: the most power at this alpha
            power = rej1[r1s, r]
            good = np.flatnonzero(has & (power >= 1 - beta))
            if not good.size:
                continue
            pet = np.cumsum(pm0)[good]  # P(X1 <= r1 | p0)
            en0 = n1 + (1 - pet) * n2
            i = int(np.argmin(en0))
            g = int(good[i])
            cand = (float(en0[i]), n, n1, g, int(r[g]), float(rej0[g, r[g]]), float(power[g]), float(pet[i]))
            if best is None or (round(cand[0], 10), n, n1) < (round(best[0], 10), best[1], best[2]):
                best = cand
            if mini is None or (n, round(cand[0], 10)) < (mini[0], round(mini[1], 10)):
                mini = (n, cand[0], n1, g, cand[4], cand[5], cand[6], cand[7])
    if best is None or mini is None:
        raise DesignError(f"no two-stage design of at most {top} patients meets alpha={alpha}, beta={beta}")
    o, m = best, mini
    optimal = TwoStageDesign("optimal", o[3], o[2], o[4], o[1], p0, p1, o[5], o[6], o[0], o[7])
    minimax = TwoStageDesign("minimax", m[3], m[2], m[4], m[0], p0, p1, m[5], m[6], m[1], m[7])
    return optimal, minimax


@dataclass(frozen=True, slots=True)
class ExactCharacteristics:
    """A design's exact operating characteristics at a true favourable-response rate."""

    rate: float
    p_success: float  # probability of declaring success
    p_early_stop: float  # probability of stopping after the first stage (0 for a single stage)
    expected_n: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "p_success": round(self.p_success, 6),
            "p_early_stop": round(self.p_early_stop, 6),
            "expected_n": round(self.expected_n, 4),
        }


def exact_characteristics(design: Design, rates: Iterable[float]) -> tuple[ExactCharacteristics, ...]:
    """P(success), P(early stop) and E[N] of ``design`` at each true rate, by binomial sums."""
    out = []
    for p in rates:
        if not 0 <= p <= 1:
            raise DesignError(f"a true rate must be in [0, 1], got {p}")
        if isinstance(design, SingleStageDesign):
            ps = float(_tail(binomial_pmf(design.n, p))[design.r])
            out.append(ExactCharacteristics(p, ps, 0.0, float(design.n)))
            continue
        n1, n2 = design.n1, design.n - design.n1
        pm = binomial_pmf(n1, p)
        rej = _reject(pm, _tail(binomial_pmf(n2, p)), n1, n2)
        pet = float(np.sum(pm[: design.r1 + 1]))
        out.append(ExactCharacteristics(p, float(rej[design.r1, design.r]), pet, n1 + (1 - pet) * n2))
    return tuple(out)


def design_rates(p0: float, p1: float, extra: Sequence[float] = ()) -> tuple[float, ...]:
    """The rates an operating-characteristics table shows: p0, p1, the given ones, in order."""
    return tuple(sorted({round(p0, 6), round(p1, 6), *(round(x, 6) for x in extra)}))
