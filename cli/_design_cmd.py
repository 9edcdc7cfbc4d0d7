"""``trialflow design``: single- and two-stage designs for the primary endpoint, their exact operating
characteristics, and (``--simulate``) the same simulated through the protocol beside the exact answer."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._common import cluster_option
from ._output import console, err_console, fail, print_json

if TYPE_CHECKING:
    from trialflow.engine.design import SingleStageDesign, TwoStageDesign


def _rates(value: str | None) -> list[float]:
    if not value:
        return []
    out = []
    for part in value.split(","):
        try:
            x = float(part)
        except ValueError:
            raise typer.BadParameter(f"expected rates between 0 and 1 separated by commas, got {part!r}") from None
        if not 0 <= x <= 1:
            raise typer.BadParameter(f"a rate must be between 0 and 1, got {x:g}")
        out.append(x)
    return out


def _name(d: "SingleStageDesign | TwoStageDesign") -> str:
    return {"single_stage": "A'Hern 1-stage", "simon_optimal": "Simon optimal", "simon_minimax": "Simon minimax"}[
        d.kind
    ]


def _stage1(d: "SingleStageDesign | TwoStageDesign") -> str:
    from trialflow.engine.design import TwoStageDesign

    return f"stop <={d.r1}/{d.n1}" if isinstance(d, TwoStageDesign) else "-"


def register(app: typer.Typer) -> None:
    @app.command()
    def design(
        ctx: typer.Context,
        p0: Annotated[float, typer.Option("--p0", min=0.0, max=0.999, help="Favourable-response rate of no interest.")],
        p1: Annotated[float, typer.Option("--p1", min=0.001, max=1.0, help="Rate worth pursuing (the target).")],
        alpha: Annotated[
            float, typer.Option("--alpha", min=0.001, max=0.499, help="Type I error: P(success) at p0.")
        ] = 0.05,
        beta: Annotated[
            float, typer.Option("--beta", min=0.001, max=0.499, help="Type II error: 1 - power at p1.")
        ] = 0.2,
        rates: Annotated[
            str | None,
            typer.Option(
                "--rates", metavar="P,P,...", help="More true rates for the tables (p0 and p1 are always shown)."
            ),
        ] = None,
        n_max: Annotated[
            int | None,
            typer.Option(
                "--n-max", min=2, max=200, help="Largest total size searched (default max(100, 2 x A'Hern n))."
            ),
        ] = None,
        simulate_runs: Annotated[
            int | None,
            typer.Option(
                "--simulate",
                metavar="RUNS",
                min=100,
                help="Also simulate RUNS trials of each design at each rate through the protocol (futility "
                "stop inside the pathways), beside the exact answer.",
            ),
        ] = None,
        seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed of --simulate.")] = 1989,
        protocol: Annotated[
            Path | None,
            typer.Option(
                "--protocol", metavar="FILE", show_default="the bundled protocol", help="Protocol YAML of --simulate."
            ),
        ] = None,
        scenario: Annotated[
            str | None,
            typer.Option(
                "--scenario",
                metavar="FILE|NAME",
                show_default="the bundled default",
                help="Scenario YAML (or a bundled scenario's name) of --simulate, whose courses are re-weighted "
                "to each rate.",
            ),
        ] = None,
        cluster: Annotated[
            str | None,
            typer.Option(
                "--cluster",
                metavar="local:N|tcp://HOST:PORT",
                callback=cluster_option,
                help="Run --simulate on Dask distributed, as simulate --cluster does.",
            ),
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    ) -> None:
        """Simon two-stage (optimal, minimax) and A'Hern single-stage designs for the primary endpoint,
        with P(success), P(early stop) and E[N] at each true rate, exact and (--simulate) simulated."""
        from trialflow.engine.design import (
            DesignError,
            design_rates,
            exact_characteristics,
            single_stage_design,
            two_stage_designs,
        )

        if p0 >= p1:
            raise typer.BadParameter(f"must exceed --p0 ({p0:g}), got {p1:g}", param_hint="--p1")
        extra = _rates(rates)
        if simulate_runs is None:  # options of the simulation alone are not silently ignored
            source = ctx.get_parameter_source("seed")
            unused = [
                name
                for name, given in (
                    ("--seed", source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")),
                    ("--protocol", protocol is not None),
                    ("--scenario", scenario is not None),
                    ("--cluster", cluster is not None),
                )
                if given
            ]
            if unused:
                raise typer.BadParameter(
                    f"only {'matters' if len(unused) == 1 else 'matter'} with --simulate RUNS, which was not "
                    f"given: add --simulate RUNS, or drop {'it' if len(unused) == 1 else 'them'}",
                    param_hint=unused,
                )
            inputs = None
        else:  # the protocol, the scenario and the cluster checked before any work
            inputs = _inputs(protocol, scenario, cluster)
        try:
            single = single_stage_design(p0, p1, alpha, beta)
            optimal, minimax = two_stage_designs(p0, p1, alpha, beta, n_max=n_max)
        except DesignError as err:
            fail(f"no design: {err}")
        designs = (single, optimal, minimax)
        shown = design_rates(p0, p1, extra)
        exact = {d.kind: exact_characteristics(d, shown) for d in designs}
        simulated: dict[str, list[Any]] = {}
        notes: list[str] = []
        if simulate_runs is not None and inputs is not None:
            simulated, notes = _simulate(designs, shown, simulate_runs, seed, *inputs, cluster, json_out)
        if json_out:
            data: dict[str, Any] = {
                "question": {"p0": p0, "p1": p1, "alpha": alpha, "beta": beta},
                "designs": [d.to_dict() for d in designs],
                "exact": {k: [oc.to_dict() for oc in v] for k, v in exact.items()},
            }
            if simulated:
                data["simulated"] = {k: [op.to_dict() for op in v] for k, v in simulated.items()}
            if notes:
                data["notes"] = notes
            print_json(data)
            return
        _render(p0, p1, alpha, beta, designs, exact, simulated, notes)


def _inputs(protocol: Path | None, scenario: str | None, cluster: str | None) -> tuple[Any, Any]:
    """The protocol and the scenario of ``--simulate``, loaded and checked against each other, and the
    cluster checked (Dask distributed installed), before the designs are searched: a problem with any of
    them is reported before any work."""
    from trialflow.engine.simulation import SimulationError, load_scenario
    from trialflow.protocol import DocumentError, load_bundled_protocol, load_protocol

    try:
        proto = load_bundled_protocol() if protocol is None else load_protocol(protocol)
        sc = load_scenario(scenario)
        from trialflow.engine.simulation import pathway_of
        from trialflow.engine.simulation._simulate import withdrawal_reasons

        withdrawal_reasons(pathway_of(proto), sc)  # the scenario's reasons are the protocol's
        if cluster is not None:
            from trialflow.engine.simulation._simulate import _check_cluster

            _check_cluster(cluster)
    except DocumentError as err:
        fail([str(p) for p in err.problems])
    except SimulationError as err:
        fail(f"cannot simulate: {err}")
    return proto, sc


def _simulate(
    designs: tuple[Any, ...],
    shown: tuple[float, ...],
    runs: int,
    seed: int,
    proto: Any,
    sc: Any,
    cluster: str | None,
    quiet: bool,
) -> tuple[dict[str, list[Any]], list[str]]:
    from trialflow.engine.simulation import SimulationError
    from trialflow.engine.simulation._operating import course_rates, operating_point
    from trialflow.protocol import DocumentError

    try:
        if not quiet:
            err_console.print("estimating each course's favourable rate ...", markup=False)
        cr = course_rates(sc, proto, seed)
        lo, hi = cr.reachable
        out: dict[str, list[Any]] = {}
        notes = []
        for rate in shown:
            if not lo < rate < hi:
                notes.append(
                    f"rate {rate:g} not simulated: this scenario's courses give favourable rates from "
                    f"{lo:.3f} to {hi:.3f} (exact answer only)"
                )
                continue
            for d in designs:
                if not quiet:
                    err_console.print(f"simulating {runs:,} trials of {_name(d)} at rate {rate:g} ...", markup=False)
                op = operating_point(d, rate, sc, cr, runs=runs, seed=seed, protocol=proto, cluster=cluster)
                out.setdefault(d.kind, []).append(op)
        return out, notes
    except DocumentError as err:
        fail([str(p) for p in err.problems])
    except SimulationError as err:
        fail(f"cannot simulate: {err}")


def _render(
    p0: float,
    p1: float,
    alpha: float,
    beta: float,
    designs: tuple[Any, ...],
    exact: dict[str, Any],
    simulated: dict[str, list[Any]],
    notes: list[str],
) -> None:
    from rich.table import Table

    t = Table(
        title=f"Designs for p0 = {p0:g}, p1 = {p1:g}, alpha = {alpha:g}, beta = {beta:g} (exact binomial)",
        title_justify="left",
    )
    for col in ("design", "stage 1", "success"):
        t.add_column(col)
    for col in ("alpha", "power", "E[N|p0]", "PET(p0)"):
        t.add_column(col, justify="right")
    for d in designs:
        (at0,) = [oc for oc in exact[d.kind] if oc.rate == round(p0, 6)]
        t.add_row(
            _name(d),
            _stage1(d),
            f">{d.r}/{d.n}",
            f"{d.alpha:.4f}",
            f"{d.power:.4f}",
            f"{at0.expected_n:.1f}",
            f"{at0.p_early_stop:.3f}" if hasattr(d, "r1") else "-",
        )
    console.print(t)
    console.print(
        "Sources: Simon, Control Clin Trials 1989;10:1-10 (two-stage); A'Hern, Stat Med 2001;20:859-866 "
        "(single stage). Found by exhaustive search.",
        markup=False,
    )
    oc = Table(title="Operating characteristics at each true rate (exact)", title_justify="left")
    for col in ("design", "rate", "P(success)", "P(early stop)", "E[N]"):
        oc.add_column(col, justify="left" if col == "design" else "right")
    for d in designs:
        for x in exact[d.kind]:
            oc.add_row(_name(d), f"{x.rate:g}", f"{x.p_success:.4f}", f"{x.p_early_stop:.4f}", f"{x.expected_n:.2f}")
    console.print(oc)
    if simulated:
        s = Table(
            title="Simulated through the protocol (futility stop inside the pathways) vs exact at the rate reached",
            title_justify="left",
            caption="sim / exact; rate reached: favourable per first-stage patient (no decision counts as not "
            "favourable); 95 % Monte-Carlo intervals in --json",
            caption_justify="left",
        )
        for col in ("design", "rate", "reached", "P(success)", "P(stop)", "E[N]"):
            s.add_column(col, justify="left" if col == "design" else "right")
        for d in designs:
            for op in simulated.get(d.kind, []):
                r, e = op.simulated, op.exact
                s.add_row(
                    _name(d),
                    f"{op.target_rate:g}",
                    f"{r.rate:.3f}",
                    f"{r.p_success:.3f}/{e.p_success:.3f}",
                    f"{r.p_early_stop:.3f}/{e.p_early_stop:.3f}",
                    f"{r.expected_n:.1f}/{e.expected_n:.1f}",
                )
        console.print(s)
    for n in notes:
        console.print(n, markup=False)
