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
