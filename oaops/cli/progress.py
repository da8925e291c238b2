"""Progress on long runs: a live line on a terminal, plain lines in cron logs."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.live import Live
from rich.text import Text

from oaops.cli.render import err


class RunProgress:
    """Receives ingest progress events: start, task, result."""

    def __init__(self, kind: str, enabled: bool = True) -> None:
        self.kind = kind
        self.enabled = enabled
        self.hosts = 0
        self.task = ""
        self.task_done: set[str] = set()
        self.counts: dict[str, int] = {}
        self.started = time.monotonic()
        self.live: Live | None = None

    def __enter__(self) -> RunProgress:
        if self.enabled and err.is_terminal:
            self.live = Live(self._line(), console=err, refresh_per_second=4, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self.live is not None:
            self.live.__exit__(et, ev, tb)

    def _line(self) -> Text:
        bad = self.counts.get("failed", 0) + self.counts.get("unreachable", 0)
        elapsed = time.monotonic() - self.started
        text = f"{self.kind}: {len(self.task_done)}/{self.hosts or '?'} hosts · {self.task or 'starting'}"
        text += f" · {sum(self.counts.values())} results" + (f", {bad} failed/unreachable" if bad else "")
        return Text(text + f" · {elapsed:.0f}s", style="cyan")

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if event == "start":
            self.hosts = int(data.get("hosts", 0))
            if self.live is None:
                err.print(f"{self.kind}: starting on {self.hosts} host(s)")
        elif event == "task":
            self.task, self.task_done = str(data.get("task", "")), set()
            if self.live is None:
                err.print(f"{self.kind}: task: {self.task}")
        elif event == "result":
            self.task_done.add(str(data.get("host")))
            status = str(data.get("status"))
            self.counts[status] = self.counts.get(status, 0) + 1
        if self.live is not None:
            self.live.update(self._line())
