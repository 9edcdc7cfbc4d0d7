"""``trialflow simulate``: virtual patients through the protocol and its rules; counts, power, workload."""

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from . import _output
from ._common import cluster_option
from ._output import fail, print_json

if TYPE_CHECKING:
    from trialflow.engine.simulation import SimulationResult


def register(app: typer.Typer) -> None:
    @app.command()
    def simulate(
        patients: Annotated[int, typer.Option("--patients", min=1, help="Patients per simulated trial.")],
        seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed: the same seed prints the same result.")],
        protocol: Annotated[
            Path | None,
            typer.Option(
                "--protocol",
                metavar="FILE",
                show_default="the bundled protocol",
                help="Protocol YAML to simulate (e.g. an amendment).",
            ),
        ] = None,
        scenario: Annotated[
            str | None,
            typer.Option(
                "--scenario",
                metavar="FILE|NAME",
                show_default="the bundled default",
                help="Scenario YAML (overrides keys of the default scenario), or a bundled scenario: "
                "leiden-2012 (the published Leiden cohort, Schneider et al. 2012).",
            ),
        ] = None,
        runs: Annotated[int, typer.Option("--runs", min=1, help="Replicate trials of --patients each.")] = 1,
        null_rate: Annotated[
            float | None,
            typer.Option(
                "--null-rate",
                min=0.0,
                max=0.999,
                help="Uninteresting response rate: power = share of runs whose exact 95 % CI lower bound exceeds it.",
            ),
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts (no progress bar).")] = False,
        plots: Annotated[
            Path | None,
            typer.Option("--plots", metavar="DIR", help="Write PNG figures of the first run here."),
        ] = None,
        force: Annotated[
            bool,
            typer.Option(
                "--force",
                help="With --plots or --cases: replace the figures or the case files already in DIR (an "
                "earlier run's case files are all removed).",
            ),
        ] = False,
        cluster: Annotated[
            str | None,
            typer.Option(
                "--cluster",
                metavar="local:N|tcp://HOST:PORT",
                callback=cluster_option,
                # "\\[": rich markup would take "[dask]" for a style tag and drop it from the help
                help="Run the chunks on Dask distributed (pip install 'trialflow\\[dask]'): local:N starts N "
                "worker processes here, tcp://HOST:PORT joins a running scheduler. Same result as without.",
            ),
        ] = None,
        grid: Annotated[
            str | None,
            typer.Option(
                "--grid",
                metavar="KEY=V1,V2,...",
                help="Sweep one scenario value (dotted key, e.g. rai_reinduction_probability or "
                "visits.missed_probability) with the same seed: one table, and with --plots one figure.",
            ),
        ] = None,
        cases: Annotated[
            Path | None,
            typer.Option(
                "--cases",
                metavar="DIR",
                help="Write the first run's patients (up to 2,000) here as case files to import, plus "
                "patients.jsonl (patient, branch, phase, each criterion's outcome). An earlier run's case files "
                "there are replaced only with --force. Not with --grid.",
            ),
        ] = None,
    ) -> None:
        """Simulate patient pathways through the protocol YAML and the same rules, at any scale."""
        from trialflow.engine.simulation import SimulationError
        from trialflow.engine.simulation import simulate as run
        from trialflow.protocol import DocumentError

        if grid is not None and cases is not None:
            raise typer.BadParameter(
                "cannot be combined with --grid (--cases writes the patients of one simulation, --grid runs "
                "one per value): simulate the value you want without --grid, with a --scenario file that sets it",
                param_hint="--cases",
            )
        # refused before the run, not after it; --plots and --cases follow one rule (engine/simulation/_targets.py)
        if plots is not None and grid is not None:
            from trialflow.engine.simulation._grid import grid_plot_problem

            problem = grid_plot_problem(plots, force=force)
            if problem:
                fail(problem)
        elif plots is not None:
            from trialflow.engine.simulation._plots import plot_targets_problem

            problem = plot_targets_problem(plots, force=force)
            if problem:
                fail(problem)
        if cases is not None:
            from trialflow.engine.simulation._cases import cases_problem

            problem = cases_problem(cases, force=force)
            if problem:
                fail(problem)
        if grid is not None:
            _grid(grid, patients, seed, protocol, scenario, runs, null_rate, json_out, plots, force, cluster)
            return
        total = patients * runs
        try:
            if json_out or total < 50_000:
                result = run(
                    patients,
                    seed,
                    protocol=protocol,
                    scenario=scenario,
                    runs=runs,
                    null_rate=null_rate,
                    cluster=cluster,
                )
            else:
                from rich.progress import Progress

                with Progress(console=_output.err_console, transient=True) as bar:
                    task = bar.add_task("simulating pathways", total=total)
                    result = run(
                        patients,
                        seed,
                        protocol=protocol,
                        scenario=scenario,
                        runs=runs,
                        null_rate=null_rate,
                        cluster=cluster,
                        progress=lambda done, _n: bar.update(task, completed=done),
                    )
            written = []
            missing_extra = None
            if plots is not None:
                try:
                    from trialflow.engine.simulation._plots import write_plots

                    written = write_plots(result, plots, force=force)
                except ModuleNotFoundError as err:
                    if not (err.name or "").startswith("matplotlib"):
                        raise
                    missing_extra = ("--plots needs matplotlib, which is not installed: "
                                     "pip install 'trialflow[plots]' (the results above are complete)")
            case_files = None
            if cases is not None and result.sample is not None:
                from trialflow.engine.simulation import write_cases

                case_files = write_cases(result.sample, cases, force=force)
        except DocumentError as err:
            fail([str(p) for p in err.problems])
        except SimulationError as err:
            fail(f"cannot simulate: {err}")
        except OSError as err:
            fail(f"cannot write the {'case files' if cases is not None and plots is None else 'output'}: {err}")
        if json_out:
            data = result.to_dict()
            data["plots"] = [str(p) for p in written]
            data["cases"] = dataclasses.asdict(case_files) if case_files is not None else None
            print_json(data)
        else:
            _render(result)
            for p in written:
                _output.console.print(f"figure: {p}", markup=False)
            if case_files is not None:
                _output.console.print(f"case files: {case_files.patients:,} patients in {case_files.directory} "
                              f"(summary {case_files.summary})", markup=False)
        if missing_extra is not None:
            fail(missing_extra)


def _grid(
    text: str,
    patients: int,
    seed: int,
    protocol: Path | None,
    scenario: str | None,
    runs: int,
    null_rate: float | None,
    json_out: bool,
    plots: Path | None,
    force: bool,
    cluster: str | None,
) -> None:
    from trialflow.engine.simulation import SimulationError, load_scenario
    from trialflow.engine.simulation import simulate as run
    from trialflow.engine.simulation._grid import grid_scenarios, parse_grid, simulate_grid, write_grid_plot
    from trialflow.protocol import DocumentError, load_bundled_protocol, load_protocol

    try:
        base = load_scenario(scenario)  # (a scenario file's own problems, at their lines)
    except DocumentError as err:
        fail([str(p) for p in err.problems])
    try:
        key, values = parse_grid(text)
        grid_scenarios(base, key, values)  # every point checked before anything runs
    except SimulationError as err:
        raise typer.BadParameter(str(err), param_hint="--grid") from None
    try:
        proto = load_bundled_protocol() if protocol is None else load_protocol(protocol)
        result = simulate_grid(
            key,
            values,
            base,
            lambda sc: run(
                patients, seed, protocol=proto, scenario=sc, runs=runs, null_rate=null_rate, cluster=cluster
            ),
            seed=seed,
            patients=patients,
            runs=runs,
            null_rate=null_rate,
        )
        written = [write_grid_plot(result, plots, force=force)] if plots is not None else []
    except DocumentError as err:
        fail([str(p) for p in err.problems])
    except SimulationError as err:
        fail(f"cannot simulate: {err}")
    except OSError as err:
        fail(f"cannot write the figure: {err}")
    if json_out:
        print_json({"grid": result.to_dict(), "plots": [str(p) for p in written]})
        return
    from rich.table import Table

    first = result.points[0].result
    _output.console.print(
        f"{key} across the grid: {runs:,} run(s) of {patients:,} per point, seed {seed} (the same random "
        "numbers at every point)",
        markup=False,
    )
    t = Table(title="% of patients per decision branch", title_justify="left")
    t.add_column(f"{key} =")
    for p in result.points:
        t.add_column(f"{p.value:g}", justify="right")
    for name in first.per_branch:
        t.add_row(name, *(f"{100 * p.result.per_branch[name] / p.result.pathways:.1f}" for p in result.points))
    t.add_row(
        "favourable (of decided)",
        *(
            "-" if p.result.endpoint.proportion is None else f"{p.result.endpoint.proportion:.3f}"
            for p in result.points
        ),
    )
    if null_rate is not None:
        t.add_row(
            f"P(CI low > {null_rate:g})",
            *("-" if p.result.replicates.power is None else f"{p.result.replicates.power:.3f}" for p in result.points),
        )
    _output.console.print(t)
    for path in written:
        _output.console.print(f"figure: {path}", markup=False)


def _render(r: "SimulationResult") -> None:
    from rich.table import Table

    ep, rep = r.endpoint, r.replicates
    _output.console.print(
        f"{r.pathways:,} simulated patients ({r.runs:,} run(s) of {r.patients:,}), seed {r.seed}; protocol "
        f"{r.protocol['id']} v{r.protocol['version']}; scenario {r.scenario}",
        markup=False,
    )
    t = Table(title="Patients per decision branch and end state", title_justify="left")
    t.add_column("branch / end state")
    t.add_column("patients", justify="right")
    t.add_column("%", justify="right")
    for name, n in (*r.per_branch.items(), *(("→ " + k, v) for k, v in r.per_end_state.items())):
        t.add_row(name, f"{n:,}", f"{100 * n / r.pathways:.1f}")
    _output.console.print(t)
    c = Table(title="Criterion outcomes at the decision", title_justify="left")
    c.add_column("criterion")
    c.add_column("outcomes")
    for cid, counts in r.criteria.items():
        c.add_row(cid, ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    _output.console.print(c)
    if ep.proportion is not None and ep.ci95 is not None:
        _output.console.print(
            f"Primary endpoint: {ep.favourable:,}/{ep.evaluable:,} favourable = {ep.proportion:.3f} "
            f"(exact 95 % CI {ep.ci95[0]:.3f}-{ep.ci95[1]:.3f}); {ep.proportion_of_started:.3f} of "
            f"{ep.started:,} started",
            markup=False,
        )
    elif ep.evaluable == 0:  # said, not left out: a proportion of no one is not 0, and no trial can succeed
        _output.console.print(
            f"Primary endpoint: 0 evaluable (none of the {ep.started:,} started reached the decision): no "
            "proportion, no interval",
            markup=False,
        )
    if rep.proportion_mean is None and rep.evaluable_mean == 0:
        line = f"Across {rep.runs:,} trials of {rep.patients}: 0 evaluable in every trial, no proportion"
        if rep.power is not None:  # each trial's exact interval is 0-1: its lower bound never exceeds the rate
            line += f"; P(CI lower bound > {rep.null_rate:g}) = {rep.power:.3f}"
        _output.console.print(line, markup=False)
    if rep.proportion_mean is not None:
        q = rep.proportion_quantiles
        line = (
            f"Across {rep.runs:,} trials of {rep.patients}: proportion mean {rep.proportion_mean:.3f}, "
            f"median {q['p50']:.3f}, 95 % of trials in {q['p2.5']:.3f}-{q['p97.5']:.3f}; "
            f"{rep.evaluable_mean:.1f} evaluable per trial"
        )
        if rep.power is not None:
            line += f"; P(CI lower bound > {rep.null_rate:g}) = {rep.power:.3f}"
        _output.console.print(line, markup=False)
    w = Table(
        title="Workload per calendar month: mean over runs (busiest run)",
        title_justify="left",
        caption="; ".join(f"{k}: {v}" for k, v in r.workload_columns.items()),
        caption_justify="left",
    )
    w.add_column("month")
    for key in r.workload_columns:
        w.add_column(key, justify="right")
    rows = r.workload
    for m in rows[:36]:
        w.add_row(
            m.month,
            *(
                f"{m.mean[k]:.1f} ({m.busiest[k]:.0f})"
                if m.busiest[k] < 1000
                else f"{m.mean[k]:,.0f} ({m.busiest[k]:,.0f})"
                for k in r.workload_columns
            ),
        )
    _output.console.print(w)
    if len(rows) > 36:
        more = len(rows) - 36
        _output.console.print(f"... {more} more months (--json: by month for 10 years, then by period)", markup=False)
