"""The docs agree with the code (issue 18): every read-only command shown in docs/*.md and the
README that needs no extra setup (no hosts, no files of its own) runs on a records database with
the generated demo months, and ends as the docs show: exit 0 or 1, or the one-line error when the
docs show one. Commands that change hosts or records, or write a PDF, are left to their own tests."""

from __future__ import annotations

import getpass
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT
from tests.integration.test_report import Demo, _make

READ_ONLY = re.compile(
    r"^(schedule (list|history|install .*--dry-run|run-due .*--dry-run)|runs list|problem (list|log)|notify list"
    r"|change calendar|backup (log|list)|journal verify|log daily|review prepare|report (monthly|yearly)"
    r"|fault list|audit waivers|estate known|[a-z]+ --help)\b"
)
COMMAND = re.compile(r"^\s*(?:\$ )?(?:\.venv/bin/)?oaops (.+)$")


def documented() -> list[tuple[str, str, bool]]:
    """(doc, command, the docs show an error after it) for each read-only command in the docs."""
    found: list[tuple[str, str, bool]] = []
    for doc in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]:
        if doc.name == "architecture.md":  # a map of the code, not commands to type
            continue
        lines = doc.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            m = COMMAND.match(line)
            if not m:
                continue
            cmd = re.sub(r"\s+#.*$", "", m.group(1)).strip().rstrip("\\").strip()
            if not READ_ONLY.match(cmd) or "pdf" in cmd or "OAOPS_" in cmd or "`" in cmd:
                continue
            following = lines[i + 1] if i + 1 < len(lines) else ""
            if following.startswith("oaops: error:") and "run-due" not in cmd:
                continue  # an error the docs provoke with a bad oaops.yml: extra setup
            found.append((doc.name, cmd, following.startswith("oaops: error:")))
    return sorted(set(found))


DOCUMENTED = documented()


def test_the_docs_show_read_only_commands() -> None:
    assert len(DOCUMENTED) >= 10, DOCUMENTED
    assert any("run-due" in c and "--dry-run" in c for _, c, _ in DOCUMENTED)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp: Path = tmp_path_factory.mktemp("docs")
    d = _make(tmp, f"sqlite:///{tmp}/records.db", "sqlite")
    d.site.add_user(getpass.getuser(), "[group_admin, technician]")  # as `oaops init` does for you
    yield d
    d.db.dispose()


@pytest.mark.parametrize(("doc", "command", "error"), DOCUMENTED, ids=[f"{d}: {c}" for d, c, _ in DOCUMENTED])
def test_each_documented_command_runs_as_shown(demo: Demo, tmp_path: Path, doc: str, command: str, error: bool) -> None:
    args = shlex.split(command)
    # an output file goes to the test's folder; the project's own files stay as they are
    args = [str(tmp_path / Path(a).name) if i and args[i - 1] in ("-o", "--output") else a for i, a in enumerate(args)]
    code, _out, err = demo.cli(args, "tester")
    if error:
        assert code == 2 and err.startswith("oaops: error:"), (doc, command, err)
    else:
        assert code in (0, 1), (doc, command, code, err)
        assert "Traceback" not in err and "internal error" not in err, (doc, command, err)
