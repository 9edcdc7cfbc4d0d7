"""``trialflow serve`` refusals, the loopback and redirect checks, and the evidence charts' geometry."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from trialflow.cli import app as cli
from trialflow.web import is_loopback
from trialflow.web._auth import safe_next
from trialflow.web._charts import LEFT, TOP, H, W, tg_chart

RUNNER = CliRunner()


def test_serve_refuses_a_public_address_without_public(tmp_path: Path) -> None:
    out = RUNNER.invoke(cli, ["serve", "--host", "0.0.0.0", "--db", str(tmp_path / "x.db")])
    assert out.exit_code == 2 and "not a loopback address" in out.output and "--public" in out.output


def test_serve_refuses_a_store_without_users(tmp_path: Path) -> None:
    db = str(tmp_path / "solo.db")
    assert RUNNER.invoke(cli, ["init", "--db", db, "--user", "anna"]).exit_code == 0
    out = RUNNER.invoke(cli, ["serve", "--db", db])
    assert out.exit_code == 1 and "has no users" in out.output and "trialflow init --admin" in out.output
    assert "Traceback" not in out.output


def test_serve_on_a_missing_store_says_so(tmp_path: Path) -> None:
    out = RUNNER.invoke(cli, ["serve", "--db", str(tmp_path / "none.db")])
    assert out.exit_code == 1 and "trialflow init" in out.output


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "10.0.0.1", "example.org", ""))


@given(st.text(max_size=60))
def test_after_login_only_a_path_on_this_site(target: str) -> None:
    out = safe_next(target)
    assert out.startswith("/") and not out.startswith("//") and "\\" not in out
    assert out == target or out == "/"


def test_tg_chart_draws_the_rules_own_fitted_line() -> None:
    """The line runs from the rule's intercept at week 0 to intercept + 28 × slope at week 28 (DOMAIN.md's
    responder: b = -0.053503/week); nothing is refitted, only scaled to pixels."""
    weeks = [0, 4, 8, 12, 16, 20, 24, 28]
    values = [120, 95, 70, 61, 48, 42, 30, 27]
    slope, intercept = -0.053503, 4.778
    result = {"reason": "ln Tg slope -0.054/week", "slope_per_week": slope, "intercept": intercept,
              "used": [{"date": f"2026-01-{1 + w:02d}", "week": w, "value": v} for w, v in zip(weeks, values,
                                                                                              strict=True)]}
    chart = tg_chart(result)
    assert chart is not None and len(chart.points) == 8
    (line,) = chart.lines
    ys = [math.log(v) for v in values] + [intercept, intercept + 28 * slope]
    pad = (max(ys) - min(ys)) * 0.1
    lo, hi = min(ys) - pad, max(ys) + pad
    to_px = lambda y: (H - 40) + (y - lo) / (hi - lo) * (TOP - (H - 40))  # noqa: E731
    assert line.x1 == LEFT and math.isclose(line.x2, W - 16)
    assert math.isclose(line.y1, to_px(intercept)) and math.isclose(line.y2, to_px(intercept + 28 * slope))
    assert line.y2 > line.y1  # a falling Tg goes down the screen (SVG y grows downwards)
    assert tg_chart({"used": []}) is None
