"""The local part of a run: ansible-playbook as ansible-runner prepared it, but with its events on
a pipe instead of escapes in a pty (docs/performance.md, "Recording over SSH").

ansible-runner's own loop (pexpect) puts the playbook behind a pseudo-terminal and finds each event
by decoding base64 escapes out of its output; per event that costs the playbook the pty and the
encoding, and the oaops process the search and the decoding. Here the oaops_events callback writes
each event as one JSON line to the run's journal and to a pipe whose other end this loop reads;
the playbook's text goes straight to `artifacts/stdout`. Cancel and timeout keep ansible-runner's
meaning: the playbook's process group is killed and the status is `canceled` or `timeout`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

EVENTS_FD = "OAOPS_EVENTS_FD"  # read by runs/callback/oaops_events.py
_PIPE_SIZE = 1 << 20  # room for a burst of events while the records are written (Linux caps it)
_TICK = 0.5  # how often cancel and the timeout are looked at while the playbook is silent


def execute(
    config: Any,  # ansible_runner.config.runner.RunnerConfig, prepared by init_runner
    on_event: Callable[[dict[str, Any]], object],
    cancel: Callable[[], bool],
    timeout: int | None,
) -> tuple[str, int]:
    """Run the prepared command to its end; returns ansible-runner's (status, rc)."""
    folder = config.artifact_dir
    os.makedirs(os.path.join(folder, "job_events"), mode=0o700, exist_ok=True)
    read_end, write_end = os.pipe()
    with contextlib.suppress(OSError):  # a smaller pipe only blocks the playbook sooner
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    env = {**config.env, EVENTS_FD: str(write_end)}
    out = os.open(os.path.join(folder, "stdout"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        proc = subprocess.Popen(
            config.command,
            cwd=config.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,  # one text, as behind the pty
            pass_fds=(write_end,),
            start_new_session=True,  # its own process group, killed whole on cancel
        )
    except OSError as exc:
        os.write(out, f"{exc}\n".encode())
        os.close(read_end)
        os.close(write_end)
        return "failed", 127
    finally:
        os.close(out)
    os.close(write_end)
    followed = False
    try:
        stopped = _follow(proc, read_end, on_event, cancel, timeout)
        followed = True
    finally:
        os.close(read_end)
        if not followed:  # oaops itself failed: nothing runs on unrecorded
            _kill(proc)
        rc = proc.wait()  # the pipe's end is the playbook's: this returns at once
    if stopped is not None:
        return stopped, 254
    return ("successful" if rc == 0 else "failed"), rc


def _follow(
    proc: subprocess.Popen[bytes],
    fd: int,
    on_event: Callable[[dict[str, Any]], object],
    cancel: Callable[[], bool],
    timeout: int | None,
) -> str | None:
    """Hand each event to `on_event` as it arrives; None at the pipe's end, or why it was stopped."""
    started = time.monotonic()
    counter, rest = 0, b""
    while True:
        ready, _, _ = select.select([fd], [], [], _TICK)
        data = os.read(fd, _PIPE_SIZE) if ready else None
        if data == b"":
            return None  # every writer closed it: the playbook is done
        if data:
            *lines, rest = (rest + data).split(b"\n")
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # the journal keeps what it was; a record cannot be made of it
                counter += 1
                event["counter"] = counter  # its line in the journal, as recovery numbers it
                on_event(event)
        why = "canceled" if cancel() else None
        if why is None and timeout and time.monotonic() - started > timeout:
            why = "timeout"
        if why is not None:
            _kill(proc)
            return why
        if data is None and proc.poll() is not None:
            # exited while something it started still holds the pipe open: do not wait on that
            return None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """As ansible-runner does: the playbook's whole process group, at once."""
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
