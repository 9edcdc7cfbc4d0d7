"""``trialflow simulate --grid KEY=v1,v2,...``: one table and one figure across the grid, common random numbers."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from trialflow.cli._app import app
from trialflow.engine.simulation import load_scenario
from trialflow.engine.simulation._grid import grid_scenarios

runner = CliRunner()


def test_grid_over_reinduction_probability_moves_patients_into_the_rai_arm(tmp_path):
    r = runner.invoke(
        app,
        [
            "simulate",
            "--patients",
            "30",
            "--runs",
            "200",
            "--seed",
            "4",
            "--null-rate",
            "0.5",
            "--grid",
            "rai_reinduction_probability=0,0.2,0.4",
            "--json",
            "--plots",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    points = data["grid"]["points"]
    assert [p["value"] for p in points] == [0, 0.2, 0.4]
    rai = [p["per_branch"]["rai_reinduced"] for p in points]
    assert rai[0] == 0 and rai[0] < rai[1] < rai[2]
    # common random numbers: who withdraws before the decision does not depend on re-induction
    assert len({p["per_branch"]["no_decision"] for p in points}) == 1
    assert (tmp_path / "grid.png").stat().st_size > 10_000
    text = runner.invoke(
        app, ["simulate", "--patients", "30", "--runs", "50", "--seed", "4", "--grid", "dropout_per_month=0,0.05"]
    )
    assert text.exit_code == 0, text.output
    assert "dropout_per_month" in text.output and "no_decision" in text.output


def test_grid_of_a_nested_key_is_validated_like_a_scenario_file():
    base = load_scenario()
    a, b = grid_scenarios(base, "visits.missed_probability", [0.0, 0.5])
    assert (a.missed_probability, b.missed_probability) == (0.0, 0.5)
    bad = runner.invoke(
        app, ["simulate", "--patients", "10", "--seed", "1", "--grid", "visits.missed_probability=0.5,2"]
    )
    assert bad.exit_code == 2
    # named by the grid's key and value (the scenario text the grid checks is its own: no file, no line)
    assert "visits.missed_probability=2: expected a value <= 1, got 2" in " ".join(
        bad.output.replace("│", " ").split())
    unknown = runner.invoke(app, ["simulate", "--patients", "10", "--seed", "1", "--grid", "no_such_key=1,2"])
    assert unknown.exit_code == 2
    assert "not a scenario value" in unknown.output


def test_the_grid_figure_follows_the_plots_rule(tmp_path):
    """grid.png was written over an earlier one, and through a symbolic link, without --force."""
    pytest.importorskip("matplotlib")
    outside = tmp_path / "important.png"
    outside.write_bytes(b"do not touch")
    figs = tmp_path / "figs"
    figs.mkdir()
    (figs / "grid.png").symlink_to(outside)
    args = ["simulate", "--patients", "10", "--seed", "4", "--grid", "dropout_per_month=0,0.05", "--plots", str(figs)]
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and "grid.png is a symbolic link" in r.stderr
    r = runner.invoke(app, [*args, "--force"])  # replaces the link itself
    assert r.exit_code == 0, r.output
    assert outside.read_bytes() == b"do not touch" and not (figs / "grid.png").is_symlink()
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and "grid.png already exists" in r.stderr and "--force" in r.stderr
