"""The engine: state machine, schedule, worklist, decisions, persistence."""

from ._amend import AmendmentReport, PatientImpact, amend, migrate, patient_impact
from ._base import Refused
from ._db import DEFAULT_DB
from ._decision import DecisionPreview, evaluate_decision
from ._demo import DEMO_DB, StoreError, build_demo, database_url
from ._machine import PhaseMachine, TransitionRefused, machine_for, phase_diagram
from ._projection import rebuild_projections
from ._queries import (
    EndpointReport,
    HistoryEntry,
    PatientStatus,
    clopper_pearson,
    evaluate,
    history,
    next_actions,
    report,
    status,
)
from ._records import RaiTherapy, SorafenibDispense, record_from_dict
from ._schedule import ScheduledVisit, schedule
from ._state import Event, PatientState, fold
from ._store import RegisteredVersion, Store
from ._workflow import (
    Enrolment,
    Written,
    complete_phase,
    correct,
    decide,
    enroll,
    import_file,
    init_store,
    record,
    record_many,
    start,
    withdraw,
)
from ._worklist import Action, patient_actions

__all__ = [
    "DEFAULT_DB",
    "DEMO_DB",
    "Action",
    "AmendmentReport",
    "DecisionPreview",
    "EndpointReport",
    "Enrolment",
    "Event",
    "HistoryEntry",
    "PatientImpact",
    "PatientState",
    "PatientStatus",
    "PhaseMachine",
    "RaiTherapy",
    "Refused",
    "RegisteredVersion",
    "ScheduledVisit",
    "SorafenibDispense",
    "Store",
    "StoreError",
    "TransitionRefused",
    "Written",
    "amend",
    "build_demo",
    "clopper_pearson",
    "complete_phase",
    "correct",
    "database_url",
    "decide",
    "enroll",
    "evaluate",
    "evaluate_decision",
    "fold",
    "history",
    "import_file",
    "init_store",
    "machine_for",
    "migrate",
    "next_actions",
    "patient_actions",
    "patient_impact",
    "phase_diagram",
    "rebuild_projections",
    "record",
    "record_from_dict",
    "record_many",
    "report",
    "schedule",
    "start",
    "status",
    "withdraw",
]
