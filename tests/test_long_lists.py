"""Long lists stay readable (issue 17): `next` and `status` print a screenful or `--limit N` rows, then
"… N more (--all, --json)" with the counts by status over every row; `--all` prints every row and `--json`
keeps its shape and holds everything. Through the CLI, as a coordinator runs it, on a cohort of 24."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner
from workflow_helpers import ELIGIBLE, ENROLLED, USER, enrol_started, new_db_url, new_store

from trialflow.cli import app
from trialflow.engine import enroll

runner = CliRunner()
AS_OF = "2026-02-02"
COHORT = 24


@pytest.fixture(scope="module")
def cohort_db(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """24 patients on SQLite: 16 started Sorafenib on staggered days, 8 still in screening."""
    gen = new_db_url("sqlite", tmp_path_factory.mktemp("cohort"))
    url = next(gen)
    store = new_store(url)
    for i in range(COHORT):
        pid = f"DTC-{i + 1:03d}"
        enrolled = ENROLLED + dt.timedelta(days=i % 6)
        if i % 3 == 2:
            enroll(store, pid, enrolled, ELIGIBLE, USER)
        else:
            enrol_started(store, pid, enrolled=enrolled, day0=enrolled + dt.timedelta(days=14))
    store.close()
    yield url
    gen.close()


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    out = result.stdout + result.stderr
    assert result.exit_code == 0 and "Traceback" not in out, out
    return result.stdout


def table_rows(out: str) -> list[str]:
    # issue 12's tables have no borders: a row starts with its patient id (wrapped text continues indented)
    return [line for line in out.splitlines() if re.match(r"^DTC-\d{3}\b", line)]


def footer(out: str) -> tuple[int, dict[str, int]]:
    m = re.search(r"^… ([\d,]+) more \(--all, --json\)((?: · [\w-]+ [\d,]+)*)$", out, re.M)
    assert m, out
    counts = {k: int(n.replace(",", "")) for k, n in re.findall(r" · ([\w-]+) ([\d,]+)", m.group(2))}
    return int(m.group(1).replace(",", "")), counts


def test_next_prints_limit_rows_then_how_many_more_and_the_counts_by_status(cohort_db: str) -> None:
    items = json.loads(cli("next", "--db", cohort_db, "--as-of", AS_OF, "--json"))
    assert len(items) > COHORT  # several items per patient
    out = cli("next", "--db", cohort_db, "--as-of", AS_OF, "--limit", "5")
    assert [r.split()[0] for r in table_rows(out)] == [i["patient"] for i in items[:5]]
    hidden, counts = footer(out)
    assert hidden == len(items) - 5
    assert counts == dict(Counter(i["status"] for i in items))  # over every row, not only the hidden ones
    assert f"({len(items)} items)" in out


def test_next_all_prints_every_row_and_no_footer(cohort_db: str) -> None:
    items = json.loads(cli("next", "--db", cohort_db, "--as-of", AS_OF, "--json"))
    out = cli("next", "--db", cohort_db, "--as-of", AS_OF, "--all")
    assert len(table_rows(out)) == len(items)
    assert "more (--all, --json)" not in out


def test_next_by_default_prints_a_screenful(cohort_db: str) -> None:
    items = json.loads(cli("next", "--db", cohort_db, "--as-of", AS_OF, "--json"))
    out = cli("next", "--db", cohort_db, "--as-of", AS_OF)
    shown = len(table_rows(out))
    assert 10 <= shown < len(items)
    assert footer(out)[0] == len(items) - shown


def test_status_limit_counts_patients_by_phase(cohort_db: str) -> None:
    rows = json.loads(cli("status", "--db", cohort_db, "--as-of", AS_OF, "--json"))
    assert len(rows) == COHORT and {"patient", "phase", "visits_done"} <= set(rows[0])  # shape unchanged
    out = cli("status", "--db", cohort_db, "--as-of", AS_OF, "--limit", "3")
    assert [r.split()[0] for r in table_rows(out)] == [r["patient"] for r in rows[:3]]
    assert footer(out) == (COHORT - 3, dict(Counter(r["phase"] for r in rows)))
    assert len(table_rows(cli("status", "--db", cohort_db, "--as-of", AS_OF, "--all"))) == COHORT


def test_a_short_list_has_no_footer_and_a_bad_limit_is_bad_usage(cohort_db: str) -> None:
    out = cli("status", "DTC-001", "--db", cohort_db, "--as-of", AS_OF)
    assert len(table_rows(out)) == 1 and "more (--all" not in out
    result = runner.invoke(app, ["next", "--db", cohort_db, "--limit", "0"])
    assert result.exit_code == 2 and "Traceback" not in result.stdout + result.stderr


_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
_JSON = st.recursive(_SCALARS, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
                     max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(items=st.lists(_JSON, max_size=6))
def test_json_lists_are_streamed_as_the_same_text_as_one_dump(items: list[object]) -> None:
    """`--json` prints a list item by item; the text is exactly json.dumps of the whole list (indent 2)."""
    import contextlib
    import io

    from trialflow.cli._output import print_json

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_json(items)
    assert out.getvalue() == json.dumps(items, indent=2, ensure_ascii=False) + "\n"
    assert json.loads(out.getvalue()) == items


def test_cohort_visits_print_limit_rows_then_the_counts_by_state_or_by_phase(cohort_db: str) -> None:
    visits = json.loads(cli("visits", "--db", cohort_db, "--as-of", AS_OF, "--json"))
    out = cli("visits", "--db", cohort_db, "--as-of", AS_OF, "--limit", "4")
    assert [r.split()[:2] for r in table_rows(out)] == [[v["patient"], v["visit"]] for v in visits[:4]]
    assert footer(out) == (len(visits) - 4, dict(Counter(v["status"] for v in visits)))
    upcoming = [v for v in visits if v["status"] == "upcoming"]
    out = cli("visits", "--status", "upcoming", "--db", cohort_db, "--as-of", AS_OF, "--limit", "2")
    assert footer(out) == (len(upcoming) - 2, dict(Counter(v["phase"] for v in upcoming)))
    assert len(table_rows(cli("visits", "--db", cohort_db, "--as-of", AS_OF, "--all"))) == len(visits)
