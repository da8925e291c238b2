"""Errors that carry their exit code; one wrapper in cli/ prints them as one line.

Library code raises these and never exits the process (STYLE.md habit 5).
"""

from __future__ import annotations


class OaopsError(Exception):
    """Base error: a message for the user and the exit code the CLI returns."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(OaopsError):
    """Bad input: names where (file, field or host) and the fix. Exit 2; nothing is written."""

    exit_code = 2

    def __init__(self, where: str, problem: str, fix: str | None = None) -> None:
        text = f"{where}: {problem}"
        if fix:
            text += f" (fix: {fix})"
        super().__init__(text)
        self.where = where
        self.problem = problem
        self.fix = fix


class PermissionDenied(InputError):
    """The actor's roles (R8) do not allow the action. Exit 2 like other refused input."""

    def __init__(self, actor: str, action: str, fix: str) -> None:
        super().__init__(f"user {actor!r}", f"may not {action}", fix)


class RunFailed(OaopsError):
    """A run finished but something failed, was unreachable or critical: a result, exit 1."""

    exit_code = 1


class RecordWriteError(OaopsError):
    """A record could not be written: never logged-and-ignored (STYLE.md habit 6)."""

    exit_code = 1
