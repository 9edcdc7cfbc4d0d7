"""Simulated patient pathways: the protocol graph and the same rules, over many virtual patients.

``simulate(patients, seed, protocol=..., scenario=..., runs=..., null_rate=...)`` answers a
:class:`SimulationResult`; ``patient_pathway(result.sample, i)`` gives one simulated patient's
records in the case-file form, to replay through the workflow engine; ``write_cases(result.sample, DIR)``
writes them as case files to import, with a JSON Lines summary (``trialflow simulate --cases DIR``).
"""

from ._cases import CasesWritten, write_cases
from ._pathways import Pathway, SimulationError, pathway_of
from ._records import PatientPathway, patient_pathway
from ._result import Endpoint, MonthWorkload, Replicates, SimulationResult
from ._scenario import Scenario, ScenarioError, default_scenario_path, load_scenario, parse_scenario
from ._simulate import simulate

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
