"""Start-up cost (issue 12, finding 12): a command imports only what its path needs.

Whole processes, as a user runs them (``trialflow.cli:main``), on the demo store; what each process had
imported when it exited is read from ``sys.modules``. The figures themselves are a benchmark
(``benchmarks/bench_cli.py``), not a timed test; this checks the causes: the schedule reads
(``next``, ``status``, ``visits``, ``history``, ``safety``) load no numpy, no scipy, no jsonschema and no
rule plug-in, and their tables no rich; ``--help`` loads none of typer's Markdown, Syntax and Traceback
renderers nor pydantic; validating an unchanged protocol loads no rich, pydantic or jsonschema; and only
the command that runs is built.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trialflow.cli import _app, app
from trialflow.engine._demo import build_demo

HEAVY = ("numpy", "scipy", "jsonschema")
RULE_PLUGINS = ("trialflow.rules.tg_slope", "trialflow.rules.recist", "trialflow.rules.rai_uptake")
_RUN = ("import atexit, json, sys\n"
        "out = sys.argv[1]\n"
        "atexit.register(lambda: open(out, 'w').write(json.dumps(sorted(sys.modules))))\n"
        "from trialflow.cli import main\n"
        "sys.argv = ['trialflow', *sys.argv[2:]]\n"
        "main()\n")


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = str(tmp_path_factory.mktemp("startup") / "demo.db")
    build_demo(db).close()
    return db


def _imported(tmp_path: Path, *args: str) -> tuple[set[str], str]:
    out = tmp_path / "modules.json"
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run([sys.executable, "-c", _RUN, str(out), *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(out.read_text())), done.stdout


def _heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in HEAVY or m in RULE_PLUGINS}


@pytest.mark.parametrize("args", [
    ["next"], ["status"], ["visits", "DEMO-020"], ["visits", "--status", "missed"], ["history", "DEMO-020"],
    ["safety"],
], ids=" ".join)
def test_schedule_reads_load_no_numpy_scipy_jsonschema_or_rules(tmp_path: Path, demo_db: str,
                                                                args: list[str]) -> None:
    modules, stdout = _imported(tmp_path, *args, "--db", demo_db)
    assert "trialflow.engine._store" in modules and stdout.strip()  # the command did read the store
    assert not _heavy(modules)
    assert "trialflow.engine._demo" not in modules  # (StoreError once came through it, with the workflow)
    # the stored protocol is rebuilt from its cached data (protocol/_stored.py), not from its YAML
    assert not {m for m in modules if m.split(".")[0] == "yaml" or m == "trialflow.documents._source"}
    assert "typer._adapters" not in modules  # (typer's pydantic coercion: cli/_params.py)


@pytest.mark.parametrize("args", [
    ["next"], ["status"], ["visits", "DEMO-020"], ["visits", "--status", "missed"], ["history", "DEMO-020"],
], ids=" ".join)
def test_store_commands_tables_load_no_rich(tmp_path: Path, demo_db: str, args: list[str]) -> None:
    """Their tables, printed to a pipe, are drawn by ``cli/_plain_tables.py`` (rich's tables, byte for byte)."""
    modules, stdout = _imported(tmp_path, *args, "--db", demo_db)
    assert "  " in stdout and "trialflow.cli._plain_tables" in modules  # (a table was drawn)
    assert not {m for m in modules if m.split(".")[0] == "rich"}


def test_evaluate_loads_the_rules_it_computes_with(tmp_path: Path, demo_db: str) -> None:
    """The other side of the test above: a command that evaluates does load them (the check sees imports)."""
    modules, stdout = _imported(tmp_path, "evaluate", "DEMO-020", "--db", demo_db)
    assert "DEMO-020" in stdout
    assert {"numpy", "scipy.special", *RULE_PLUGINS} <= modules  # (jsonschema: only when params are not
    # known valid already, documents/_trusted.py)


# what typer's own help renderer (typer.rich_utils) and its argument coercion bring: Markdown (markdown-it),
# Syntax (pygments), Traceback (rich.pretty, attrs), and pydantic
HELP_RENDERERS = ("typer.rich_utils", "rich.markdown", "rich.syntax", "rich.traceback", "rich.pretty")
HELP_RENDERER_PACKAGES = ("markdown_it", "pygments", "attr", "pydantic")


def _help_renderers(modules: set[str]) -> set[str]:
    return {m for m in modules if m in HELP_RENDERERS or m.split(".")[0] in HELP_RENDERER_PACKAGES}


@pytest.mark.parametrize("args", [["--help"], ["record", "--help"], ["protocol", "--help"]], ids=" ".join)
def test_help_loads_none_of_typers_markdown_syntax_traceback_or_pydantic(tmp_path: Path, args: list[str]) -> None:
    modules, stdout = _imported(tmp_path, *args)
    assert "Usage: trialflow" in stdout and "Options" in stdout
    assert not _help_renderers(modules)
    assert "rich.panel" in modules  # (the check sees imports: the panels are drawn with rich)


def test_help_and_validate_load_no_store_and_no_numpy(tmp_path: Path) -> None:
    modules, _ = _imported(tmp_path, "--help")
    assert not _heavy(modules) and "sqlalchemy" not in modules
    from trialflow.protocol import bundled_protocol_path

    modules, stdout = _imported(tmp_path, "protocol", "validate", str(bundled_protocol_path()))
    assert "valid" in stdout.lower()
    assert "sqlalchemy" not in modules and "numpy" not in modules


def test_validating_a_file_validated_before_loads_no_rich_pydantic_or_jsonschema(tmp_path: Path) -> None:
    """``protocol validate`` of an unchanged file prints one line: no rich to print it, no pydantic to read
    its FILE argument (``cli/_params.py``), no jsonschema (the file passed before: documents/_trusted.py)."""
    from trialflow.protocol import bundled_protocol_path

    bundled = str(bundled_protocol_path())
    _imported(tmp_path, "protocol", "validate", bundled)  # (remembered as valid, if it was not already)
    modules, stdout = _imported(tmp_path, "protocol", "validate", bundled)
    assert stdout.startswith(f"{bundled}: valid — sorafenib-dtc")
    assert "trialflow.protocol._loader" in modules  # (the check sees imports: the file was loaded)
    assert not {m for m in modules if m.split(".")[0] in ("rich", "pydantic", "jsonschema", "sqlalchemy")}


def test_recording_prints_its_line_without_rich(tmp_path: Path, demo_db: str) -> None:
    """``record`` prints one plain line ("DEMO-020: 1 recorded"): no rich console is built to print it."""
    db = tmp_path / "demo.db"
    shutil.copyfile(demo_db, db)  # (a copy: the other tests read the module's store unchanged)
    modules, stdout = _imported(tmp_path, "record", "DEMO-020", "adverse_event", "--date", "2026-11-01",
                                "--term", "Fatigue", "--grade", "1", "--db", str(db))
    assert stdout == "DEMO-020: 1 recorded\n"
    assert "trialflow.engine._chain" in modules  # (the check sees imports: an event was written)
    assert not {m for m in modules if m.split(".")[0] == "rich"}


def test_recording_writes_through_core_without_configuring_the_mappers(tmp_path: Path, demo_db: str) -> None:
    """A single-record write (engine/_store.py ``Transaction``) reads and writes the tables with Core
    statements: the ORM's mappers, configured on its first use, are never configured."""
    db = tmp_path / "demo.db"
    shutil.copyfile(demo_db, db)
    check = ("import atexit, sys\n"
             "from trialflow.engine._rows import _registry\n"
             "atexit.register(lambda: print('mappers configured:', not _registry._new_mappers))\n"
             "from trialflow.cli import main\n"
             "sys.argv = ['trialflow', *sys.argv[1:]]\n"
             "main()\n")
    done = subprocess.run([sys.executable, "-c", check, "record", "DEMO-020", "tg", "--date", "2026-11-01",
                           "--value", "0.5", "--tgab", "negative", "--db", str(db)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "DEMO-020: 2 recorded\nmappers configured: False\n"


@pytest.mark.parametrize("args", [
    ["next"], ["status"], ["visits", "DEMO-020"], ["history", "DEMO-020"], ["evaluate", "DEMO-020"], ["report"],
    ["record", "DEMO-020", "adverse_event", "--date", "2026-11-01", "--term", "Fatigue", "--grade", "1"],
], ids=" ".join)
def test_store_commands_compile_no_dataclass_methods_of_trialflows(tmp_path: Path, demo_db: str,
                                                                   args: list[str]) -> None:
    """trialflow's frozen dataclasses are made by ``documents/_frozen.py`` (no six methods compiled per class,
    some 4 M instructions each): the stock decorator's code generator runs only for the three classes on
    these paths it still makes on purpose (the mutable ``AuthSettings`` and fold's ``_Folding``, the ordered
    ``Problem``, the class ``cli/_params.py`` makes when it installs its coercion)."""
    db = tmp_path / "demo.db"
    shutil.copyfile(demo_db, db)
    check = ("import atexit, dataclasses, sys\n"
             "made = []\n"
             "stock = dataclasses._create_fn\n"
             "def spy(name, args, body, *, globals=None, **kw):\n"
             "    made.append((globals or {}).get('__name__', '?'))\n"
             "    return stock(name, args, body, globals=globals, **kw)\n"
             "dataclasses._create_fn = spy\n"
             "atexit.register(lambda: print(' '.join(sorted({m for m in made if m.startswith('trialflow')})),"
             " '|', len(made)))\n"
             "from trialflow.cli import main\n"
             "sys.argv = ['trialflow', *sys.argv[1:]]\n"
             "main()\n")
    done = subprocess.run([sys.executable, "-c", check, *args, "--db", str(db)], capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    ours, count = done.stdout.splitlines()[-1].split("|")
    assert set(ours.split()) <= {"trialflow.engine._identity", "trialflow.engine._state",
                                 "trialflow.documents._problems", "trialflow.cli._params"}
    assert int(count) > 10  # (the spy sees the libraries' dataclasses: it works)


@pytest.mark.parametrize("args", [
    ["status", "--help"], ["protocol", "--help"], ["lock", "--help"], ["serve", "--help"], ["stauts"], [],
    ["--help"], ["user", "add", "--help"], ["next", "--help"], ["protocol", "validate", "--help"],
    ["protocol", "validate"], ["protocol", "validte", "x.yaml"], ["user", "--help"], ["query", "list", "--help"],
    ["protocol", "--json"],
], ids=lambda a: " ".join(a) or "no-args")
def test_building_only_the_named_command_changes_nothing_a_user_sees(args: list[str]) -> None:
    lean = _app.for_arguments(args)  # what main() runs
    full = CliRunner().invoke(app, args, terminal_width=80)
    mine = CliRunner().invoke(lean, args, terminal_width=80)
    assert (mine.exit_code, mine.output) == (full.exit_code, full.output)


@pytest.mark.parametrize("args", [["--help"], []], ids=lambda a: " ".join(a) or "no-args")
@pytest.mark.parametrize("columns", [80, 132])
def test_the_top_level_help_built_without_parameters_is_the_whole_applications(args: list[str],
                                                                               columns: int) -> None:
    full = CliRunner().invoke(app, args, terminal_width=columns, env={"COLUMNS": str(columns)})
    listing = CliRunner().invoke(_app._listing(), args, terminal_width=columns, env={"COLUMNS": str(columns)})
    assert "protocol" in full.output and "screen-fail" in full.output
    assert (listing.exit_code, listing.output) == (full.exit_code, full.output)


def test_only_the_named_command_is_built() -> None:
    lean = _app._for("status")
    assert [_app._command_name(c) for c in lean.registered_commands] == ["status"] and not lean.registered_groups
    merged = _app._for("lock")  # a command of a sub-app merged into the top level
    assert not merged.registered_commands
    assert [_app._command_name(c) for g in merged.registered_groups
            for c in (g.typer_instance.registered_commands if g.typer_instance else [])] == ["lock"]
    assert len(_app._for("no-such-command").registered_commands) == len(app.registered_commands)
    validate = _app._for("protocol", "validate")  # a group's command: the group with that one alone
    assert [_app._command_name(c) for g in validate.registered_groups
            for c in (g.typer_instance.registered_commands if g.typer_instance else [])] == ["validate"]
    assert len(_app._for("protocol", "no-such").registered_groups[0].typer_instance.registered_commands) > 1


def test_the_module_table_names_every_command_of_the_application() -> None:
    """``main()`` finds a command's module in ``_app._MODULES``: it must name exactly the commands (and
    command groups) each module adds to the whole application, or a command would be missing or slow."""
    added: dict[str, set[str]] = {}
    for module, _ in _app._MODULES:
        alone = _app._build((module,))
        names = {_app._command_name(c) for c in alone.registered_commands}
        names |= {n for g in alone.registered_groups if (n := _app._group_name(g))}
        names |= {_app._command_name(c) for g in alone.registered_groups if _app._group_name(g) is None
                  for c in (g.typer_instance.registered_commands if g.typer_instance else [])}
        added[module] = names
    assert {m: set(names) for m, names in _app._MODULES} == added
    every = [n for _, names in _app._MODULES for n in names]
    assert len(every) == len(set(every))


def test_a_command_imports_only_its_own_command_module(tmp_path: Path, demo_db: str) -> None:
    modules, _ = _imported(tmp_path, "next", "--db", demo_db)
    commands = {m for m in modules if m.startswith("trialflow.cli.") and m.endswith("_cmd")}
    assert commands == {"trialflow.cli._query_cmd"}


def test_command_modules_keep_their_annotations_as_objects() -> None:
    """typer reads every command's signature before it parses (``--help`` reads all of them): with
    ``from __future__ import annotations`` it evaluates each ``Annotated[..., typer.Option(...)]`` string
    again, which made building the 50 commands some four times slower. Command modules leave it out."""
    import trialflow.cli

    folder = Path(trialflow.cli.__file__).parent
    commands = [p for p in folder.glob("*.py") if ".command(" in p.read_text(encoding="utf-8")]
    assert len(commands) >= 10
    assert not [p.name for p in commands if "from __future__ import annotations" in p.read_text(encoding="utf-8")]


def test_simulate_loads_no_store_schedule_or_case_writers(tmp_path: Path) -> None:
    """``trialflow simulate --json`` (issue 15: its start-up is most of a small run) reads the protocol
    through the engine's readings, not its patient state or schedule, and writes no case files."""
    modules, stdout = _imported(tmp_path, "simulate", "--patients", "3", "--runs", "2", "--seed", "1", "--json")
    assert json.loads(stdout)["pathways"] == 6
    assert {"numpy", "scipy.special", *RULE_PLUGINS} <= modules
    assert "trialflow.engine._readings" in modules and "trialflow.engine._evidence" in modules
    unwanted = {"trialflow.engine._state", "trialflow.engine._schedule", "trialflow.engine._store",
                "trialflow.engine.simulation._records", "trialflow.engine.simulation._cases",
                "trialflow.engine.simulation._plots", "sqlalchemy", "sqlmodel", "matplotlib",
                "pydantic"}  # its whole numbers, spelt plainly, need no pydantic (cli/_params.py)
    assert not modules & unwanted


_GC = ("import atexit, gc, json, sys\n"
       "out = sys.argv[1]\n"
       "atexit.register(lambda: open(out, 'w').write(json.dumps([gc.isenabled(), gc.get_freeze_count()])))\n"
       "from trialflow.cli import main\n"
       "sys.argv = ['trialflow', *sys.argv[2:]]\n"
       "main()\n")


@pytest.mark.parametrize("args", [["status"], ["protocol", "validate", "{protocol}"], ["stauts"]],
                         ids=" ".join)
def test_the_collector_is_paused_only_while_a_command_starts(tmp_path: Path, demo_db: str, args: list[str]) -> None:
    """``main()`` pauses the cyclic garbage collector for start-up (cli/_startup.py) and turns it back on with
    start-up's objects frozen: after the store is open, or before a command that opens none runs (and before
    typer says a name is no command)."""
    from trialflow.protocol import bundled_protocol_path

    out = tmp_path / "gc.json"
    given = [a.replace("{protocol}", str(bundled_protocol_path())) for a in args]
    store = ["--db", demo_db] if args == ["status"] else []
    subprocess.run([sys.executable, "-c", _GC, str(out), *given, *store], capture_output=True, timeout=300,
                   check=False)
    enabled, frozen = json.loads(out.read_text())
    assert enabled and frozen > 10_000  # on again, and what start-up made frozen
    imported = subprocess.run([sys.executable, "-c", "import gc, trialflow.cli._app; print(gc.isenabled(), "
                               "gc.get_freeze_count())"], capture_output=True, text=True, check=True)
    assert imported.stdout.split() == ["True", "0"]  # importing the CLI changes nothing
