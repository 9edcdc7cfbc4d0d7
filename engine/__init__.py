"""The engine: state machine, schedule, worklist, decisions, persistence.

Its names are loaded on first use (PEP 562), so importing one part (``trialflow.engine.simulation``, the
protocol's machine) does not import the rest: the store's database stack is paid for only by what uses it.
A new public name goes into ``_WHERE`` (and the ``TYPE_CHECKING`` imports, for mypy) and ``__all__``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._amend import AmendmentReport, PatientImpact, amend, migrate, patient_impact
    from ._audit import AuditEntry, VerifyReport, audit_trail, verify_store
    from ._base import Refused
    from ._casebook import lock, unlock
    from ._chain import ChainProblem, ChainReport, verify_chains
    from ._dataqueries import DataQuery, answer_query, close_query, list_queries, open_query
    from ._db import DEFAULT_DB
    from ._decision import DecisionPreview, evaluate_decision
    from ._demo import DEMO_DB, StoreError, build_demo, database_url
    from ._identity import (
        PERMISSIONS,
        ROLES,
        SYSTEM,
        Actor,
        AuthSettings,
        Login,
        PermissionDenied,
        SiteInfo,
        UserInfo,
        actor_by_id,
        add_site,
        add_user,
        auth_settings,
        authenticate,
        authorize,
        change_password,
        check_name,
        check_password,
        cli_context,
        disable_user,
        identify,
        list_sites,
        list_users,
        store_users,
    )
    from ._machine import PhaseMachine, TransitionRefused, machine_for, phase_diagram
    from ._projection import rebuild_projections
    from ._queries import (
        EndpointReport,
        HistoryEntry,
        PatientStatus,
        evaluate,
        history,
        next_actions,
        report,
        status,
    )
    from ._records import RaiTherapy, SorafenibDispense, record_from_dict
    from ._schedule import ScheduledVisit, schedule
    from ._signature import SignatureStatus, decision_digest, verify_signatures
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
    from .design import clopper_pearson

_WHERE: dict[str, str] = {
    "Action": "._worklist",
    "Actor": "._identity",
    "AmendmentReport": "._amend",
    "AuditEntry": "._audit",
    "ChainProblem": "._chain",
    "ChainReport": "._chain",
    "AuthSettings": "._identity",
    "DEFAULT_DB": "._db",
    "DEMO_DB": "._demo",
    "DataQuery": "._dataqueries",
    "DecisionPreview": "._decision",
    "EndpointReport": "._queries",
    "Enrolment": "._workflow",
    "Event": "._state",
    "HistoryEntry": "._queries",
    "Login": "._identity",
    "PERMISSIONS": "._identity",
    "PatientImpact": "._amend",
    "PatientState": "._state",
    "PatientStatus": "._queries",
    "PermissionDenied": "._identity",
    "PhaseMachine": "._machine",
    "ROLES": "._identity",
    "RaiTherapy": "._records",
    "Refused": "._base",
    "RegisteredVersion": "._store",
    "SYSTEM": "._identity",
    "ScheduledVisit": "._schedule",
    "SignatureStatus": "._signature",
    "SiteInfo": "._identity",
    "SorafenibDispense": "._records",
    "Store": "._store",
    "StoreError": "._demo",
    "TransitionRefused": "._machine",
    "UserInfo": "._identity",
    "VerifyReport": "._audit",
    "Written": "._workflow",
    "actor_by_id": "._identity",
    "add_site": "._identity",
    "add_user": "._identity",
    "amend": "._amend",
    "answer_query": "._dataqueries",
    "audit_trail": "._audit",
    "auth_settings": "._identity",
    "authenticate": "._identity",
    "authorize": "._identity",
    "build_demo": "._demo",
    "change_password": "._identity",
    "check_name": "._identity",
    "check_password": "._identity",
    "cli_context": "._identity",
    "clopper_pearson": ".design",
    "close_query": "._dataqueries",
    "complete_phase": "._workflow",
    "correct": "._workflow",
    "database_url": "._demo",
    "decide": "._workflow",
    "decision_digest": "._signature",
    "disable_user": "._identity",
    "enroll": "._workflow",
    "evaluate": "._queries",
    "evaluate_decision": "._decision",
    "fold": "._state",
    "history": "._queries",
    "identify": "._identity",
    "import_file": "._workflow",
    "init_store": "._workflow",
    "list_queries": "._dataqueries",
    "list_sites": "._identity",
    "list_users": "._identity",
    "lock": "._casebook",
    "machine_for": "._machine",
    "migrate": "._amend",
    "next_actions": "._queries",
    "open_query": "._dataqueries",
    "patient_actions": "._worklist",
    "patient_impact": "._amend",
    "phase_diagram": "._machine",
    "rebuild_projections": "._projection",
    "record": "._workflow",
    "record_from_dict": "._records",
    "record_many": "._workflow",
    "report": "._queries",
    "schedule": "._schedule",
    "start": "._workflow",
    "status": "._queries",
    "store_users": "._identity",
    "unlock": "._casebook",
    "verify_signatures": "._signature",
    "verify_chains": "._chain",
    "verify_store": "._audit",
    "withdraw": "._workflow",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})


__all__ = [
    "DEFAULT_DB",
    "DEMO_DB",
    "PERMISSIONS",
    "ROLES",
    "SYSTEM",
    "Action",
    "Actor",
    "AmendmentReport",
    "AuditEntry",
    "AuthSettings",
    "ChainProblem",
    "ChainReport",
    "DataQuery",
    "DecisionPreview",
    "EndpointReport",
    "Enrolment",
    "Event",
    "HistoryEntry",
    "Login",
    "PatientImpact",
    "PatientState",
    "PatientStatus",
    "PermissionDenied",
    "PhaseMachine",
    "RaiTherapy",
    "Refused",
    "RegisteredVersion",
    "ScheduledVisit",
    "SignatureStatus",
    "SiteInfo",
    "SorafenibDispense",
    "Store",
    "StoreError",
    "TransitionRefused",
    "UserInfo",
    "VerifyReport",
    "Written",
    "actor_by_id",
    "add_site",
    "add_user",
    "amend",
    "answer_query",
    "audit_trail",
    "auth_settings",
    "authenticate",
    "authorize",
    "build_demo",
    "change_password",
    "check_name",
    "check_password",
    "cli_context",
    "clopper_pearson",
    "close_query",
    "complete_phase",
    "correct",
    "database_url",
    "decide",
    "decision_digest",
    "disable_user",
    "enroll",
    "evaluate",
    "evaluate_decision",
    "fold",
    "history",
    "identify",
    "import_file",
    "init_store",
    "list_queries",
    "list_sites",
    "list_users",
    "lock",
    "machine_for",
    "migrate",
    "next_actions",
    "open_query",
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
    "store_users",
    "unlock",
    "verify_chains",
    "verify_signatures",
    "verify_store",
    "withdraw",
]
