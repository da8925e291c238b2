# ansible-runner's event callback (awx_display) for oaops's local runs, with two costs taken out
# (docs/performance.md, "Over real SSH"). Loaded by ansible-playbook from this folder when oaops
# starts a run (oaops/runs/runner.py); not for use on its own.
from __future__ import annotations

import json
import os
from typing import Any

from ansible_runner.display_callback.callback import awx_display as _awx

DOCUMENTATION = """
    callback: oaops_events
    short_description: ansible-runner's event dispatcher without per-event files (oaops)
    description:
        - Set by oaops for the runs it starts; the events ansible-runner reads, as awx_display
          writes them, but each as a JSON line on a pipe oaops reads and in one journal per
          run instead of escapes in the text and a file per event, and runner_on_start is not
          an event.
    type: stdout
    extends_documentation_fragment:
      - default_callback
    requirements:
      - Set as stdout in config
"""

JOURNAL = "events.jsonl"  # oaops.runs.ingest.artifact_events replays it after a crash
EVENTS_FD = "OAOPS_EVENTS_FD"  # the pipe oaops reads events from (oaops.runs.local)
_context = _awx.event_context


class _Sink:
    """Every event as one JSON line: appended to the run's journal (what recovery replays when the
    oaops process died) and written to oaops's pipe (what it records live)."""

    def __init__(self) -> None:
        self.journal: int | None = None
        self.pipe: int | None = int(os.environ[EVENTS_FD]) if os.environ.get(EVENTS_FD, "").isdigit() else None

    def write(self, line: bytes) -> None:
        if self.journal is None:
            folder = os.path.join(os.environ["AWX_ISOLATED_DATA_DIR"], "job_events")
            os.makedirs(folder, mode=0o700, exist_ok=True)
            self.journal = os.open(os.path.join(folder, JOURNAL), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(self.journal, line)
        if self.pipe is not None:
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(self.pipe, view) :]
            except OSError:  # oaops is gone: the journal still gets every event
                self.pipe = None


_sink = _Sink()


def _dump_begin(fileobj: object) -> None:
    """The event to the journal and the pipe, nothing in the text (awx_display writes a base64
    escape there and the event into a file the runner reads back)."""
    text = json.dumps(_context.get_begin_dict(), cls=_awx.AnsibleJSONEncoderLocal)
    with _context.display_lock:
        _sink.write(text.encode("utf-8") + b"\n")


def _dump_end(fileobj: object) -> None:
    """No end marker: nothing decodes the text."""


_context.dump_begin = _dump_begin
_context.dump_end = _dump_end


class CallbackModule(_awx.CallbackModule):  # type: ignore[misc]
    CALLBACK_NAME = "oaops_events"

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        # no event: oaops records results, not starts; the start time still goes into the result
        self._host_start[host.get_name()] = _awx.current_time()
        _awx.DefaultCallbackModule.v2_runner_on_start(self, host, task)
