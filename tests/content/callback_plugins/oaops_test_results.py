"""Test-only callback: append each task result as one JSON line to $OAOPS_TEST_RESULTS.

ansible-core ships no JSON stdout callback, and the content tests want the module's real
result from a plain ansible-playbook run, so this small aggregate callback writes it out.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: oaops_test_results
type: aggregate
short_description: Write task results as JSON lines for the oaops content tests
description:
  - Appends one JSON object per task result to the file named by OAOPS_TEST_RESULTS.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "oaops_test_results"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result: Any, status: str) -> None:
        res = getattr(result, "result", None)
        if res is None:  # ansible-core before 2.19
            res = result._result
        record = {
            "host": result.host.get_name(),
            "task": result.task.get_name(),
            "action": result.task.action,
            "status": status,
            # _dump_results applies no_log and serialises 2.19's tagged values.
            "result": json.loads(self._dump_results(res, indent=0)),
        }
        with open(os.environ["OAOPS_TEST_RESULTS"], "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record(result, "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record(result, "unreachable")
