# ansible-runner's event callback (awx_display) for oaops's local runs, with two costs taken out
# (docs/performance.md, "Over real SSH"). Loaded by ansible-playbook from this folder when oaops
# starts a run (oaops/runs/runner.py); not for use on its own.
from __future__ import annotations

import base64
import json
import os

from ansible_runner.display_callback.callback import awx_display as _awx

DOCUMENTATION = """
    callback: oaops_events
    short_description: ansible-runner's event dispatcher without per-event files (oaops)
    description:
        - Set by oaops for the runs it starts; the events ansible-runner reads, as awx_display
          writes them, but each travels whole in the stdout stream instead of a partial file,
          and runner_on_start is not an event.
    type: stdout
    extends_documentation_fragment:
      - default_callback
    requirements:
      - Set as stdout in config
"""

JOURNAL = "events.jsonl"  # oaops.runs.ingest.artifact_events replays it after a crash
_context = _awx.event_context


class _Journal:
    """Every event, appended to one file per run: what the partial files were for (recovery of
    a run whose oaops died), at one write per event instead of a create, a rename and a read."""

    def __init__(self) -> None:
        self.fd: int | None = None

    def write(self, line: bytes) -> None:
        if self.fd is None:
            folder = os.path.join(os.environ["AWX_ISOLATED_DATA_DIR"], "job_events")
            os.makedirs(folder, mode=0o700, exist_ok=True)
            self.fd = os.open(os.path.join(folder, JOURNAL), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(self.fd, line)


_journal = _Journal()


def _dump_begin(fileobj) -> None:
    """The whole event in the escape ansible-runner's OutputEventFilter decodes (awx_display puts
    only the uuid there and the rest in a file the runner then reads back)."""
    text = json.dumps(_context.get_begin_dict(), cls=_awx.AnsibleJSONEncoderLocal)
    _journal.write(text.encode("utf-8") + b"\n")
    data = base64.b64encode(text.encode("utf-8")).decode()
    # the runner's pattern: ESC[K, then chunks each followed by ESC[<len>D, then ESC[K
    width = 4096
    parts = (data[i : i + width] for i in range(0, len(data), width))
    chunks = "".join(f"{part}\x1b[{len(part)}D" for part in parts)
    with _context.display_lock:
        fileobj.write(f"\x1b[K{chunks}\x1b[K")


_context.dump_begin = _dump_begin


class CallbackModule(_awx.CallbackModule):
    CALLBACK_NAME = "oaops_events"

    def v2_runner_on_start(self, host, task):
        # no event: oaops records results, not starts; the start time still goes into the result
        self._host_start[host.get_name()] = _awx.current_time()
        _awx.DefaultCallbackModule.v2_runner_on_start(self, host, task)
