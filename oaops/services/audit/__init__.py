"""Compliance audits (R3.3, R9, R10, R11): `catalog` reads the controls and profiles (checked at the
door), `jobs` plans and runs an audit (one oaops_audit call per host) and records its results with
waivers applied and scores, `records` gives the report's data, the list of audits and waivers."""

from oaops.services.audit.catalog import (
    ACTION_APPROVE,
    ACTION_RUN,
    ACTION_WAIVE,
    READ,
    ROLE_FILES,
    Catalog,
    check_control_ids,
    load_catalog,
    profile_of,
)
from oaops.services.audit.jobs import (
    Planned,
    finalize,
    plan,
    records_results,
    recover,
    run,
    scheduled_assess,
    scheduled_run,
)
from oaops.services.audit.records import (
    AuditReport,
    Finding,
    decide,
    list_audits,
    list_waivers,
    report,
    waive,
    waive_file,
)

__all__ = [
    "ACTION_APPROVE",
    "ACTION_RUN",
    "ACTION_WAIVE",
    "READ",
    "ROLE_FILES",
    "AuditReport",
    "Catalog",
    "Finding",
    "Planned",
    "check_control_ids",
    "decide",
    "finalize",
    "list_audits",
    "list_waivers",
    "load_catalog",
    "plan",
    "profile_of",
    "records_results",
    "recover",
    "report",
    "run",
    "scheduled_assess",
    "scheduled_run",
    "waive",
    "waive_file",
]
