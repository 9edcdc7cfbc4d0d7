"""Simulated patient pathways: the protocol graph and the same rules, over many virtual patients.

``simulate(patients, seed, protocol=..., scenario=..., runs=..., null_rate=...)`` answers a
:class:`SimulationResult`; ``patient_pathway(result.sample, i)`` gives one simulated patient's
records in the case-file form, to replay through the workflow engine; ``write_cases(result.sample, DIR)``
writes them as case files to import, with a JSON Lines summary (``trialflow simulate --cases DIR``).
"""

from typing import TYPE_CHECKING, Any

from ._pathways import Pathway, SimulationError, pathway_of
from ._result import Endpoint, MonthWorkload, Replicates, SimulationResult
from ._scenario import Scenario, ScenarioError, default_scenario_path, load_scenario, parse_scenario
from ._simulate import simulate

if TYPE_CHECKING:
    from ._cases import CasesWritten, write_cases
    from ._records import PatientPathway, patient_pathway

# the case-file writers (``--cases``) and per-patient records are imported on first use (PEP 562): a
# plain ``trialflow simulate`` needs neither
_LAZY = {
    "CasesWritten": "._cases",
    "write_cases": "._cases",
    "PatientPathway": "._records",
    "patient_pathway": "._records",
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value

__all__ = [
    "CasesWritten",
    "Endpoint",
    "MonthWorkload",
    "Pathway",
    "PatientPathway",
    "Replicates",
    "Scenario",
    "ScenarioError",
    "SimulationError",
    "SimulationResult",
    "default_scenario_path",
    "load_scenario",
    "parse_scenario",
    "pathway_of",
    "patient_pathway",
    "simulate",
    "write_cases",
]
