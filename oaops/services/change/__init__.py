"""Change management (R17, R18): a request a person writes, approved by someone else, bound to the
content it approved, executed only in its window and outside freezes, through a pipeline that
snapshots, previews, applies, verifies and rolls back by itself, with every step a Run.

Where things are decided: the states, who may move them and the window/freeze arithmetic are in
`oaops.rules.change`; the records and the host lock in `oaops.store.changes`. This package:
`request` reads the request and checks everything that can be refused before anything runs,
`lookups` finds changes and shares the refusals, `lifecycle` moves a change from request to close,
`steps` are the pipeline's steps (each a Run) and `pipeline` drives them.
"""

from __future__ import annotations

from oaops.services.change.lifecycle import approve, cancel, close, new, reject, review, submit
from oaops.services.change.lookups import (
    APPROVE,
    CANCEL,
    CLOSE,
    IMPLEMENT,
    READ,
    REQUEST,
    RESOLVE,
    REVIEW,
    CalendarEntry,
    calendar,
    list_changes,
    show,
)
from oaops.services.change.pipeline import preview, resolve, rollback, run
from oaops.services.change.request import (
    RESTORE_PLAYBOOK,
    SNAPSHOT_PLAYBOOK,
    Request,
    check_request,
    content_hash,
    content_manifest,
    read_request,
    resolve_hosts,
)
from oaops.services.change.steps import Confirm, PipelineReport, diffs_of, reload_role

__all__ = [
    "APPROVE",
    "CANCEL",
    "CLOSE",
    "IMPLEMENT",
    "READ",
    "REQUEST",
    "RESOLVE",
    "RESTORE_PLAYBOOK",
    "REVIEW",
    "SNAPSHOT_PLAYBOOK",
    "CalendarEntry",
    "Confirm",
    "PipelineReport",
    "Request",
    "approve",
    "calendar",
    "cancel",
    "check_request",
    "close",
    "content_hash",
    "content_manifest",
    "diffs_of",
    "list_changes",
    "new",
    "preview",
    "read_request",
    "reject",
    "reload_role",
    "resolve",
    "resolve_hosts",
    "review",
    "rollback",
    "run",
    "show",
    "submit",
]
