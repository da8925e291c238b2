"""Verifying the whole trail (R3.3, R7): chain, checkpoints, records, decisions and their signatures;
and exporting it for an auditor who has no access to the records database.

The same checks run on the database (`oaops journal verify`) and on an export
(`oaops journal verify --from DIR`, no oaops.yml or database needed).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from oaops import checkpoints, signing
from oaops.errors import InputError
from oaops.rules.decision import Kind, console_problem, digest_of
from oaops.services.context import Context
from oaops.store import decisions as store_decisions
from oaops.store import integrity, journal
from oaops.store import runs as store_runs
from oaops.store.decisions import DecisionRow


@dataclass(frozen=True)
class Trail:
    entries: int
    decisions: int
    checkpoint: str  # the newest checkpoint, as checked ("" when there is none)
    problem: str = ""  # the first inconsistency, named
    broken_seq: int | None = None  # when the chain itself is broken

    @property
    def ok(self) -> bool:
        return not self.problem


def check_checkpoint(
    cps: list[checkpoints.Checkpoint],
    public: signing.PublicKey | None,
    entries: int,
    hash_at: Callable[[int], str | None],
    first: int = 1,
) -> str:
    """The newest checkpoint is the site key's, and the journal still holds what it anchored."""
    if not cps:
        return ""
    newest = cps[-1]
    if public is None:
        return "the checkpoints cannot be checked: the site key's public half is missing"
    if not checkpoints.valid(newest, public):
        return f"checkpoint line {newest.line} is not signed by the site key ({public.label})"
    if entries < newest.entries:
        return (
            f"the journal has {entries} entries, but the checkpoint of {newest.label()} anchored "
            f"{newest.entries}: entries were cut off, or the records database was replaced"
        )
    for cp in reversed(cps):
        if cp.entries < first:
            break
        if cp.entries and hash_at(cp.entries) != cp.head:
            return f"entry {cp.entries} is not the one checkpointed at {cp.label()}: the chain was rewritten"
    return ""


def check_decisions(rows: Iterable[DecisionRow], site: signing.PublicKey | None = None) -> tuple[int, str]:
    """Every decision: the statement hashes to its digest, the signature verifies against the key it
    names, and that key was registered for the decider (and not revoked) before the decision; or,
    made in the web console, the key is the `site` key and the statement records the decider's
    console session with TOTP."""
    registered: dict[str, set[str]] = {}
    revoked: dict[str, set[str]] = {}
    count = 0
    rows = list(rows)
    good = _signatures(rows)
    for d, signature_ok in zip(rows, good, strict=True):
        count += 1
        what = f"decision {d.id} ({d.kind} {d.record_kind} {d.record_id} by {d.decider})"
        if digest_of(d.statement) != d.digest:
            return count, f"{what}: its statement does not match its digest (edited?)"
        try:
            key = signing.parse_key(d.key, what)
            document = json.loads(d.statement)
        except (InputError, ValueError):
            return count, f"{what}: its key or statement is malformed"
        if document.get("decider") != d.decider or document.get("kind") != d.kind.removeprefix("oaops-"):
            return count, f"{what}: its statement names another decider or kind"
        if not signature_ok:
            return count, f"{what}: the signature does not verify ({key.label})"
        if d.kind == Kind.KEY_REGISTER.value:
            if document["subject"].get("fingerprint") != key.fingerprint:
                return count, f"{what}: a key registration not signed by the key it registers"
            registered.setdefault(d.decider, set()).add(key.fingerprint)
            continue
        if d.kind == Kind.KEY_REVOKE.value:
            login = str(document["subject"].get("login"))
            revoked.setdefault(login, set()).add(str(document["subject"].get("fingerprint")))
            continue
        if "via" in document:
            if site is None or key.fingerprint != site.fingerprint:
                return count, f"{what}: a console decision not signed by the site key ({key.label})"
            problem = console_problem(document)
            if problem:
                return count, f"{what}: {problem}"
            continue
        if key.fingerprint in revoked.get(d.decider, set()):
            return count, f"{what}: signed with a key revoked before it ({key.label})"
        if key.fingerprint not in registered.get(d.decider, set()):
            return count, f"{what}: signed with a key never registered for {d.decider} ({key.label})"
    return count, ""


def _signatures(rows: list[DecisionRow]) -> list[bool]:
    """Each decision's signature checked by ssh-keygen, several at a time (a process each)."""

    def one(d: DecisionRow) -> bool:
        try:
            key = signing.parse_key(d.key, f"decision {d.id}")
        except InputError:
            return False
        return signing.verify(d.statement, d.namespace, d.decider, key, d.signature)

    with ThreadPoolExecutor(max_workers=max(4, 2 * (os.cpu_count() or 1))) as pool:
        return list(pool.map(one, rows))


def _public(settings_key: Path) -> signing.PublicKey | None:
    try:
        return signing.public_of(settings_key)
    except InputError:
        return None


def verify(ctx: Context) -> Trail:
    """`oaops journal verify`: the first inconsistency of the records, named (exit 1 in the CLI)."""
    ctx.require("journal.verify")
    settings = ctx.config.settings
    cps = checkpoints.read(settings.checkpoints)
    public = _public(settings.site_key) if cps or settings.site_key.is_file() else None
    with ctx.db.read() as session:
        chain = journal.verify(session)
        cp = cps[-1].label() if cps else ""
        if not chain.ok:
            return Trail(chain.entries, 0, cp, chain.reason, chain.broken_seq)
        problem = check_checkpoint(cps, public, chain.entries, lambda seq: integrity.hash_at(session, seq))
        problem = problem or store_runs.records_problem(session) or integrity.unsigned_problem(session)
        rows = list(store_decisions.every(session))
        bound = integrity.bound_config(session)
    if not problem and bound:
        other = next((d for d in rows if d.config_path and d.config_path != bound), None)
        if other is not None:
            problem = f"decision {other.id} was made under {other.config_path}, not the site's {bound}"
    count, signed = check_decisions(rows, public) if not problem else (len(rows), "")
    return Trail(chain.entries, count, cp, problem or signed)


# ---- export, and verifying an export --------------------------------------------------------------

README = """An export of oaops records for an auditor (R3.3, R7): verify it without the database:

  oaops journal verify --from {dir}

or each decision by hand with OpenSSH alone:

  ssh-keygen -Y verify -f allowed_signers -I LOGIN -n NAMESPACE -s signatures/ID.sig < statements/ID.json
"""


def export(ctx: Context, since: datetime | None, folder: Path) -> tuple[int, int]:
    """Write entries, decisions, signatures, allowed signers and checkpoints to `folder`."""
    ctx.require("journal.verify")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "signatures").mkdir(exist_ok=True)
    (folder / "statements").mkdir(exist_ok=True)
    entries = 0
    with ctx.db.read() as session, (folder / "entries.jsonl").open("w", encoding="utf-8") as out:
        for row in journal.entries(session, since):
            out.write(journal.canonical(row) + "\n")
            entries += 1
        rows = list(store_decisions.every(session))
    allowed: set[str] = set()
    with (folder / "decisions.jsonl").open("w", encoding="utf-8") as out:
        for d in rows:
            out.write(journal.canonical(asdict(d)) + "\n")
            (folder / "signatures" / f"{d.id}.sig").write_text(d.signature, encoding="ascii")
            (folder / "statements" / f"{d.id}.json").write_text(d.statement, encoding="utf-8")
            key = signing.parse_key(d.key, f"decision {d.id}")
            allowed.add(signing.allowed_signers_line(d.decider, key))
    (folder / "allowed_signers").write_text("".join(f"{line}\n" for line in sorted(allowed)), encoding="utf-8")
    settings = ctx.config.settings
    if settings.checkpoints.is_file():
        shutil.copyfile(settings.checkpoints, folder / "checkpoints.jsonl")
    public = _public(settings.site_key)
    if public is not None:
        (folder / "site_key.pub").write_text(public.line + "\n", encoding="ascii")
    (folder / "README.txt").write_text(README.format(dir=folder), encoding="utf-8")
    return entries, len(rows)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def verify_export(folder: Path) -> Trail:
    """`oaops journal verify --from DIR`: the same checks on an export, no database needed."""
    if not (folder / "entries.jsonl").is_file():
        raise InputError(f"--from {folder}", "holds no entries.jsonl", "give a folder `oaops journal export` wrote")
    try:
        entries = _jsonl(folder / "entries.jsonl")
        raw = _jsonl(folder / "decisions.jsonl")
    except ValueError:
        raise InputError(f"--from {folder}", "has a line that is not JSON", "export it again") from None
    chain = journal.verify_rows(entries)
    cps = checkpoints.read(folder / "checkpoints.jsonl")
    pub = folder / "site_key.pub"
    public = signing.parse_key(pub.read_text(encoding="ascii"), str(pub)) if pub.is_file() else None
    cp = cps[-1].label() if cps else ""
    if chain:
        return Trail(len(entries), 0, cp, chain)
    hashes = {int(e["seq"]): str(e["hash"]) for e in entries}
    first = int(entries[0]["seq"]) if entries else 1
    last = int(entries[-1]["seq"]) if entries else 0
    problem = check_checkpoint(cps, public, last, hashes.get, first)
    rows = [DecisionRow(**{**d, "at": datetime.fromisoformat(d["at"])}) for d in raw]
    journaled = {str(e["id"]): e for e in entries if e["kind"] == "decision"}
    for d in rows:
        if problem:
            break
        e = journaled.get(str(d.id))
        if e is not None and e["data"].get("digest") != d.digest:
            problem = f"decision {d.id} differs from its journal entry {e['seq']} (digest edited?)"
        elif e is None and d.journal_seq is not None and d.journal_seq >= first:
            problem = f"decision {d.id} has no journal entry in the export (entry {d.journal_seq})"
    count, signed = check_decisions(rows, public) if not problem else (len(rows), "")
    return Trail(len(entries), count, cp, problem or signed)
