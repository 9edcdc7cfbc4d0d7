"""Import layering: each part imports only what it needs (measured in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys


def _modules_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(json.loads(out))


def test_the_simulator_does_not_import_the_store() -> None:
    loaded = _modules_after("import trialflow.engine.simulation")
    assert "sqlalchemy" not in loaded and "sqlmodel" not in loaded
    assert "trialflow.engine._store" not in loaded and "trialflow.engine._workflow" not in loaded


def test_the_store_does_not_import_the_worklists_decision_logic() -> None:
    loaded = _modules_after("import trialflow.engine._store")
    assert "trialflow.engine._worklist" not in loaded
    assert "trialflow.engine._decision" not in loaded
    assert "trialflow.engine._workitems" in loaded  # the plain items it keeps


def test_the_engine_package_loads_its_names_on_first_use() -> None:
    assert "sqlalchemy" not in _modules_after("import trialflow.engine")
    loaded = _modules_after("from trialflow.engine import Store, clopper_pearson")
    assert "sqlalchemy" in loaded and "trialflow.engine.design" in loaded
    import trialflow.engine as engine

    assert set(engine.__all__) <= set(dir(engine))
    for name in engine.__all__:
        assert getattr(engine, name) is not None


def _imported_names(folder: str) -> dict[str, set[str]]:
    """Every module each file of a package folder imports, lazy (in-function) imports included."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / folder
    names: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
        names[str(path.relative_to(root))] = found
    return names


def test_the_rules_do_not_import_the_protocol() -> None:
    """The direction is protocol -> rules (the loader checks each rule's params through the registry);
    case files read through trialflow.documents, which both use, so there is no protocol <-> rules cycle."""
    for module, found in _imported_names("rules").items():
        assert not {n for n in found if n.split(".")[:2] == ["trialflow", "protocol"]}, module
    loaded = _modules_after(
        "import trialflow.rules, trialflow.rules.casefile, trialflow.rules.recist, trialflow.rules.rai_uptake, "
        "trialflow.rules.tg_slope\ntrialflow.rules.get_rule('recist')"
    )
    assert "trialflow.documents" in loaded
    assert not {m for m in loaded if m.startswith("trialflow.protocol")}


def test_the_document_toolkit_imports_neither_protocol_nor_rules() -> None:
    for module, found in _imported_names("documents").items():
        assert not {n for n in found if n.split(".")[:2] in (["trialflow", "protocol"], ["trialflow", "rules"])}, module
    loaded = _modules_after("import trialflow.documents")
    assert not {m for m in loaded if m.startswith(("trialflow.protocol", "trialflow.rules", "trialflow.engine"))}
