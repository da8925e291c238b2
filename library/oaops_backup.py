#!/usr/bin/python
# Copyright (c) oaops contributors
# Apache License 2.0 (see pyproject.toml)
"""Back up an OA host's databases and files, verify them by a real restore, restore, copy (R3.3, R9)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: oaops_backup
short_description: Back up, restore-verify, restore or copy the backup sets of an OA host in one call
version_added: "0.1.0"
description:
  - "O(action=backup): dumps every target of the host in one call: PostgreSQL databases with
    C(pg_dump) (custom format, or directory format with parallel jobs) plus C(pg_dumpall --globals-only),
    MySQL / MariaDB databases with C(mariadb-dump) / C(mysqldump) C(--single-transaction --routines
    --triggers), and folders as a compressed tar archive with exclusions."
  - Every artefact is written as C(<name>.partial), checksummed (sha256) and renamed; a set is written
    in C(<dir>/<target>/<set_id>.partial/) and renamed to C(<set_id>/) when its C(manifest.json) is
    complete, or to C(<set_id>.failed/) with the reason when a step failed. A partial file is never
    reported good.
  - The manifest records target, sizes, sha256, durations, tool versions and, for databases, every
    table with its row count taken at backup time (PostgreSQL, in the snapshot pg_dump uses;
    MySQL / MariaDB, counted in the dump stream itself).
  - After a backup, retention (grandfather-father-son, O(keep_daily), O(keep_weekly), O(keep_monthly))
    prunes older sets of the same target, but only sets older than a set whose restore was verified.
  - "O(action=verify): checks each artefact's sha256, restores database dumps into a scratch database
    it creates and drops, and compares tables and row counts with the manifest; extracts archives into
    a scratch folder and compares file count and hashes. Writes C(verify.json) into the set."
  - "O(action=restore): a real restore of one set into a named database or folder; refuses to replace
    an existing one unless O(force)."
  - "O(action=copy): copies sets to a backup host over SSH (scp), checks them there with
    C(sha256sum -c SHA256SUMS) and renames them into place."
  - Credentials never appear on a command line; they go to the clients through a password file
    (PostgreSQL C(PGPASSFILE)) or C(--defaults-extra-file) (MySQL), mode 0600, removed afterwards.
options:
  action:
    description: What to do.
    type: str
    choices: [backup, verify, restore, copy]
    default: backup
  dir:
    description: Folder holding the backup sets of this host, C(<dir>/<target>/<set_id>/); created mode 0700.
    type: path
    required: true
  host_label:
    description: Name of the host recorded in manifests (the inventory name).
    type: str
    default: ""
  targets:
    description: What to back up on this host.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Target name, unique on the host; letters, digits, C(_), C(.), C(-).
        type: str
        required: true
      type:
        description: Kind of target; C(mysql) covers MariaDB.
        type: str
        required: true
        choices: [postgresql, mysql, files]
      host:
        description: Database server host, address or socket folder.
        type: str
        default: 127.0.0.1
      port:
        description: Database server port; 5432 or 3306 when left out.
        type: int
      user:
        description: Database user; C(postgres) or C(root) when left out.
        type: str
      password:
        description: Database password, handed over in a 0600 password file, never on a command line.
        type: str
      databases:
        description: Databases to dump; every database of the server (but system ones) when empty.
        type: list
        elements: str
        default: []
      exclude_databases:
        description: Databases left out when O(targets[].databases) is empty.
        type: list
        elements: str
        default: []
      globals:
        description:
          - PostgreSQL only; also dump roles and tablespaces with C(pg_dumpall --globals-only) (needs a superuser).
        type: bool
        default: true
      format:
        description: PostgreSQL only; C(directory) dumps with O(targets[].jobs) parallel jobs, for large databases.
        type: str
        choices: [custom, directory]
        default: custom
      jobs:
        description: Parallel jobs for C(pg_dump) directory format and for C(pg_restore).
        type: int
        default: 1
      compress:
        description: Compression level 0-9; the tool's default when left out.
        type: int
      bin_dir:
        description: Folder of the client tools (for example C(/usr/lib/postgresql/16/bin)); PATH when left out.
        type: path
      maintenance_db:
        description: PostgreSQL database to connect to for listing, creating and dropping databases.
        type: str
        default: postgres
      paths:
        description: C(files) only; absolute folders or files to archive.
        type: list
        elements: path
        default: []
      exclude:
        description:
          - C(files) only; glob patterns matched against each entry's path relative to the listed folder,
            its absolute path and its name; a matching folder is skipped whole.
        type: list
        elements: str
        default: []
      keep_daily:
        description: Overrides O(keep_daily) for this target.
        type: int
      keep_weekly:
        description: Overrides O(keep_weekly) for this target.
        type: int
      keep_monthly:
        description: Overrides O(keep_monthly) for this target.
        type: int
  only:
    description: Names of the targets to act on; all when empty.
    type: list
    elements: str
    default: []
  keep_daily:
    description: Keep the newest set of each of this many most recent days that have sets.
    type: int
    default: 7
  keep_weekly:
    description: Keep the newest set of each of this many most recent ISO weeks that have sets.
    type: int
    default: 4
  keep_monthly:
    description: Keep the newest set of each of this many most recent months that have sets.
    type: int
    default: 6
  prune:
    description: Apply retention after O(action=backup).
    type: bool
    default: true
  locked:
    description:
      - The caller holds a lock on each target for the whole call (oaops does), so what a killed
        run left for these targets is removed now rather than after a grace period. O(action=backup)
        removes every C(<set_id>.partial/) folder (reported under RV(oaops.pruned) with C(state=partial);
        otherwise such a folder waits a day); O(action=verify) drops every scratch database named for this
        host and target (otherwise one waits three step timeouts).
    type: bool
    default: false
  verify:
    description:
      - O(action=backup) only; restore-verify each new complete set in the same call, before retention,
        so a nightly run both proves its sets and prunes behind them.
    type: bool
    default: false
  sets:
    description:
      - Sets to verify, restore or copy. For verify, the newest complete set of each target when empty;
        for restore, the newest complete set of the one target in O(only).
    type: list
    elements: dict
    default: []
    suboptions:
      target:
        description: Target name.
        type: str
        required: true
      set_id:
        description: Set id (the folder name, such as C(20261128T013000Z)).
        type: str
        required: true
      manifest_sha256:
        description: sha256 the manifest must have (from the records); a differing manifest fails the verification.
        type: str
      host:
        description: Inventory host the set belongs to; informational (the role passes each host only its sets).
        type: str
  restore_to:
    description: O(action=restore) only; the database name, or the absolute folder for a C(files) set.
    type: str
  restore_database:
    description: O(action=restore) only; which database of the set, when it holds more than one.
    type: str
  force:
    description: O(action=restore) only; replace an existing database or non-empty folder.
    type: bool
    default: false
  copy_to:
    description: O(action=copy) only; the backup host.
    type: dict
    suboptions:
      host:
        description: Host name or address.
        type: str
        required: true
      path:
        description: Folder on the backup host; sets land in C(<path>/<target>/<set_id>/).
        type: str
        required: true
      user:
        description: SSH user.
        type: str
      port:
        description: SSH port.
        type: int
        default: 22
      identity_file:
        description: SSH private key.
        type: path
      ssh_options:
        description: Extra C(-o) options, for example C(StrictHostKeyChecking=accept-new).
        type: list
        elements: str
        default: []
  scratch_dir:
    description: Where archives are extracted to be verified; a private folder under O(dir) when left out.
    type: path
  timeout:
    description: Seconds each dump, restore or copy command may take.
    type: int
    default: 21600
attributes:
  check_mode:
    support: full
    description: Reports the sets it would write, verify, restore, copy or prune, and writes nothing.
  diff_mode:
    support: none
    description: Backups are new files; there is nothing to diff.
  platform:
    support: full
    platforms: posix
notes:
  - A set counts as good only when its restore was verified; pruning never removes a set unless a newer
    set of the same target is verified.
  - The host needs Python's standard library and the client tools of its targets.
requirements:
  - pg_dump, pg_dumpall, pg_restore and psql for PostgreSQL targets
  - mariadb-dump or mysqldump, and mariadb or mysql, for MySQL / MariaDB targets
  - ssh, scp, and sha256sum on the backup host, for O(action=copy)
author:
  - oaops contributors
"""

EXAMPLES = r"""
- name: Back up the OA database and attachment store
  oaops_backup:
    dir: /var/backups/oaops
    host_label: "{{ inventory_hostname }}"
    targets:
      - name: oa_pg
        type: postgresql
        user: oaops_backup
        password: "{{ vault_oaops_backup_password }}"
        databases: [oa]
      - name: oa_files
        type: files
        paths: [/srv/oa/attachments, /etc/oa]
        exclude: ["tmp", "*.part"]
  register: backup

- name: Prove the newest set of each target restores
  oaops_backup:
    action: verify
    dir: /var/backups/oaops
    targets: "{{ oa_backup_targets }}"
"""

RETURN = r"""
oaops:
  description: The backup payload oaops turns into Backup records.
  returned: always
  type: dict
  contains:
    kind:
      description: C(backup), C(backup_verify), C(backup_restore) or C(backup_copy).
      type: str
      returned: always
    version:
      description: Version of this return contract.
      type: int
      returned: always
    sets:
      description: O(action=backup); one manifest per target, with C(location) and C(manifest_sha256).
      type: list
      elements: dict
      returned: when action is backup
    verified:
      description: O(action=backup) with O(verify); the restore verification of each new set, as in C(results).
      type: list
      elements: dict
      returned: when action is backup
    pruned:
      description: Sets removed by retention, each with target, set_id, location and reason.
      type: list
      elements: dict
      returned: when action is backup
    results:
      description: O(action=verify), O(action=restore), O(action=copy); one entry per set with status and checks.
      type: list
      elements: dict
      returned: when action is verify, restore or copy
    existing:
      description: >-
        O(action=backup); the other complete sets of each target still on disk (manifest, location,
        manifest_sha256 and, when one was made, the last verification), so sets made without oaops are recorded.
      type: list
      elements: dict
      returned: when action is backup
    swept:
      description: >-
        Scratch and staging databases that a killed verify or restore left behind, dropped by this call
        (target and database); one younger than three step timeouts may still be in use and is kept.
      type: list
      elements: dict
      returned: when action is backup or verify
"""

import datetime
import errno
import fnmatch
import gzip
import hashlib
import json
import os
import posixpath
import re
import secrets
import shlex
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib

from ansible.module_utils.basic import AnsibleModule

RETURN_VERSION = 1
FORMAT = "oaops-backup-set"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VERIFY = "verify.json"
SUMS = "SHA256SUMS"
PARTIAL = ".partial"
FAILED = ".failed"
SET_ID_FORMAT = "%Y%m%dT%H%M%SZ"
CHUNK = 1 << 20
STALE_PARTIAL_S = 86400
SCRATCH_PREFIX = "oaops_verify_"
STAGING_PREFIX = "oaops_restore_"
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
SET_ID_RE = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
MYSQL_SYSTEM = frozenset(("information_schema", "performance_schema", "mysql", "sys"))
DB_DEFAULTS = {"postgresql": (5432, "postgres"), "mysql": (3306, "root")}
ERROR_WORDS = re.compile(r"(?i)error|fatal|denied|unknown|not exist|no space|could not|cannot|failed|refused")

# PostgreSQL tables (and partitioned parents) outside the system schemas, as quoted identifiers.
PG_TABLES = (
    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'"
    " ORDER BY 1;"
)
PG_DATABASES = "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1;"
# mariadb-dump's extended INSERTs: one line (older) or one row per line (10.11+), ending with ";".
# Strings (escaped, never holding a raw newline) may contain anything, so they are blanked first.
MY_INSERT = re.compile(rb"^INSERT INTO `((?:[^`]|``)+)` VALUES")
MY_STRING = re.compile(rb"'[^'\\]*(?:\\.[^'\\]*)*'", re.S)


class StepFailed(Exception):
    """A step of a target failed; the message names the target's item and the cause."""


# ---------------------------------------------------------------- small helpers


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment):
    return moment.isoformat(timespec="seconds")


def set_time(set_id):
    return datetime.datetime.strptime(set_id[:16], SET_ID_FORMAT).replace(tzinfo=datetime.timezone.utc)


def error_text(raw, limit=400):
    """The telling lines of a tool's stderr, in one line."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    lines = [line.strip() for line in (raw or "").splitlines() if line.strip()]
    picked = [line for line in lines if ERROR_WORDS.search(line)] or lines
    return (" ".join(picked[:2]) or "no message")[:limit]


def os_reason(exc, doing):
    if exc.errno == errno.ENOSPC:
        return f"no space left on device while {doing}"
    return f"{doing}: {exc.strerror or exc}"


def sha256_file(path):
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def tree_entries(root):
    """(relative path, sha256, size) of every file under root, sorted."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            digest, size = sha256_file(path)
            entries.append((os.path.relpath(path, root), digest, size))
    return sorted(entries)


def artefact_digest(path):
    """sha256 and size of a file, or of a folder (pg_dump -Fd): one sha256 over the sorted file list."""
    if os.path.isdir(path):
        entries = tree_entries(path)
        listing = "".join(f"{digest}  {rel}\n" for rel, digest, _ in entries)
        return hashlib.sha256(listing.encode("utf-8")).hexdigest(), sum(e[2] for e in entries), entries
    digest, size = sha256_file(path)
    return digest, size, None


def scratch_tag(host_label, target_name):
    """8 hex digits naming the (host, target) a scratch database belongs to: the run holding that
    pair's lock knows every database with its tag was left by a killed run."""
    return hashlib.sha256(f"{host_label}/{target_name}".encode()).hexdigest()[:8]


def scratch_name(prefix, tag=None):
    """`<prefix><unix time>_<random>[_<tag>]`: the birth time lets a later run drop one a killed run
    left; the tag lets the next run of the same target drop it at once."""
    return f"{prefix}{int(time.time())}_{secrets.token_hex(3)}" + (f"_{tag}" if tag else "")


SCRATCH_RE = re.compile(r"^oaops_(?:verify|restore)_(?:(\d{10})_[0-9a-f]{6}(?:_([0-9a-f]{8}))?|[0-9a-f]{8})$")


def abandoned(name, now, older_than, mine=None):
    """True for a scratch/staging database of a run that cannot still be working on it: old enough,
    or tagged `mine` (the caller holds that target's lock, so no live run uses it)."""
    m = SCRATCH_RE.match(name)
    if not m:
        return False
    if mine and m.group(2) == mine:
        return True
    # Names from before the birth time was recorded carry none: only a dead run leaves them.
    return m.group(1) is None or now - int(m.group(1)) > older_than


def _digest_into(path, out):
    try:
        out["value"] = artefact_digest(path)
    except OSError as exc:
        out["error"] = exc


def _raise(exc):
    raise exc


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, data):
    """Write bytes through `<path>.partial` + fsync + rename; returns their sha256."""
    tmp = path + PARTIAL
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def json_bytes(data):
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def read_json(path):
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        return json.loads(raw.decode("utf-8")), hashlib.sha256(raw).hexdigest()
    except (OSError, ValueError):
        return None, None


def file_name(name, suffix, used):
    """A safe, unique artefact file name for a database name."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "db"
    candidate, n = base + suffix, 2
    while candidate in used:
        candidate, n = f"{base}-{n}{suffix}", n + 1
    used.add(candidate)
    return candidate


def wait(proc, timeout, what):
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise StepFailed(f"{what}: no answer within {timeout} s (timeout)") from None


class HashingWriter:
    """A file object that hashes and counts what is written through it."""

    def __init__(self, raw):
        self.raw, self.sha, self.size = raw, hashlib.sha256(), 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def tell(self):
        return self.size

    def flush(self):
        self.raw.flush()


class HashingReader:
    def __init__(self, raw):
        self.raw, self.sha, self.size = raw, hashlib.sha256(), 0

    def read(self, n=-1):
        data = self.raw.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data


# ---------------------------------------------------------------- retention (grandfather-father-son)
# oaops/rules/backup.py holds the same rule for the records; tests/content keeps the two equal.


def gfs_plan(sets, daily, weekly, monthly, tz=datetime.timezone.utc):
    """Decide retention for one target's sets.

    sets: dicts with id, at (aware datetime), good (complete and not failed verification), verified
    (restore verified). Returns (slots: {id: [daily|weekly|monthly]}, prune: [(id, reason)]).
    Like restic's keep-daily: the newest good set of each of the N most recent days (weeks, months)
    that have good sets is kept. The newest good set and the newest verified set are always kept,
    and nothing is pruned unless a newer set is verified.
    """
    ordered = sorted(sets, key=lambda s: (s["at"], s["id"]), reverse=True)
    good = [s for s in ordered if s["good"]]
    slots = {s["id"]: [] for s in ordered}
    periods = (
        ("daily", daily, lambda t: t.date()),
        ("weekly", weekly, lambda t: tuple(t.isocalendar())[:2]),
        ("monthly", monthly, lambda t: (t.year, t.month)),
    )
    for kind, count, key in periods:
        seen = set()
        for s in good:
            period = key(s["at"].astimezone(tz))
            if period in seen:
                continue
            if len(seen) >= count:
                break
            seen.add(period)
            slots[s["id"]].append(kind)
    verified = [s for s in ordered if s["good"] and s["verified"]]
    newest_verified = verified[0] if verified else None
    always = {x["id"] for x in (good[:1] + verified[:1])}
    prune = []
    for s in ordered:
        if slots[s["id"]] or s["id"] in always or newest_verified is None:
            continue
        if (s["at"], s["id"]) >= (newest_verified["at"], newest_verified["id"]):
            continue
        why = "outside the kept daily/weekly/monthly sets" if s["good"] else s.get("bad", "not a good backup")
        prune.append((s["id"], f"{why}; newer set {newest_verified['id']} is verified"))
    return slots, prune


# ---------------------------------------------------------------- the job


class Job:
    def __init__(self, module, private):
        self.module = module
        self.params = module.params
        self.check = module.check_mode
        self.private = private  # 0700 folder for password files, removed at the end
        self.dir = module.params["dir"]
        self.timeout = module.params["timeout"]
        self.targets = {t["name"]: t for t in module.params["targets"]}
        self.changed = False
        self.failures = []
        self.creds = {}  # (kind, target) -> password file in the private folder
        self.swept_targets = set()
        self.swept = []  # scratch databases of killed runs, dropped by this call

    def selected(self):
        only = self.params["only"]
        return [t for t in self.params["targets"] if not only or t["name"] in only]

    # ---- tools and credentials

    @staticmethod
    def tool(target, names, package):
        bin_dir = target.get("bin_dir")
        for name in names:
            path = os.path.join(bin_dir, name) if bin_dir else shutil.which(name)
            if path and os.access(path, os.X_OK):
                return path
        where = f"in {bin_dir}" if bin_dir else "on PATH"
        raise StepFailed(f"{' / '.join(names)} not found {where}: install {package}")

    def secret_file(self, text):
        fd, path = tempfile.mkstemp(dir=self.private, prefix="cred-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, 0o600)
        return path

    def pg_env(self, target, database=None):
        port, user = DB_DEFAULTS["postgresql"]
        env = dict(os.environ)
        env.update(
            PGHOST=target["host"],
            PGPORT=str(target.get("port") or port),
            PGUSER=target.get("user") or user,
            PGCONNECT_TIMEOUT="10",
            PGAPPNAME="oaops_backup",
            PGCLIENTENCODING="UTF8",
            PGDATABASE=database or target["maintenance_db"],
        )
        if target.get("password"):
            key = ("pgpass", target["name"])
            if key not in self.creds:
                escaped = target["password"].replace("\\", "\\\\").replace(":", "\\:")
                login = env["PGUSER"].replace("\\", "\\\\").replace(":", "\\:")
                self.creds[key] = self.secret_file(f"*:*:*:{login}:{escaped}\n")
            env["PGPASSFILE"] = self.creds[key]
        return env

    def my_cnf(self, target):
        key = ("cnf", target["name"])
        if key not in self.creds:
            port, user = DB_DEFAULTS["mysql"]
            lines = ["[client]", f"user={target.get('user') or user}"]
            if target["host"].startswith("/"):
                lines.append(f"socket={target['host']}")
            else:
                lines += [f"host={target['host']}", f"port={target.get('port') or port}", "protocol=tcp"]
            if target.get("password"):
                quoted = target["password"].replace("\\", "\\\\").replace('"', '\\"')
                lines.append(f'password="{quoted}"')
            lines += ["[mysql]", "connect-timeout=10"]  # the dump tools do not know the option
            self.creds[key] = self.secret_file("\n".join(lines) + "\n")
        return self.creds[key]

    def run(self, argv, what, env=None, data=None):
        try:
            proc = subprocess.run(argv, env=env, input=data, capture_output=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise StepFailed(f"{what}: no answer within {self.timeout} s (timeout)") from None
        except OSError as exc:
            raise StepFailed(f"{what}: cannot run {argv[0]}: {exc.strerror}") from None
        if proc.returncode != 0:
            raise StepFailed(f"{what}: {error_text(proc.stderr)}")
        return proc.stdout.decode("utf-8", "replace")

    # ---- PostgreSQL

    def psql(self, target, sql, database=None, what="psql"):
        argv = [
            self.tool(target, ["psql"], "the PostgreSQL client (postgresql-client)"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
        ]
        out = self.run(argv, what, env=self.pg_env(target, database), data=sql.encode("utf-8"))
        return [line for line in out.splitlines() if line]

    def pg_databases(self, target):
        if target["databases"]:
            return list(target["databases"])
        names = self.psql(target, PG_DATABASES, what=f"listing the databases of {target['name']}")
        skip = set(target["exclude_databases"]) | {"postgres"}
        return [n for n in names if n not in skip]

    def pg_counts(self, target, database):
        tables = self.psql(target, PG_TABLES, database, f"listing the tables of {database}")
        if not tables:
            return {}
        counts = self.psql(
            target,
            "\n".join(f"SELECT count(*) FROM {t};" for t in tables),
            database,
            f"counting the rows of {database}",
        )
        return dict(zip(tables, (int(c) for c in counts)))

    def pg_dump_database(self, target, database, work, used):
        pg_dump = self.tool(target, ["pg_dump"], "the PostgreSQL client (postgresql-client)")
        psql = self.tool(target, ["psql"], "the PostgreSQL client (postgresql-client)")
        fmt = target["format"]
        name = file_name(database, ".dump" if fmt == "custom" else ".dir", used)
        partial = os.path.join(work, name + PARTIAL)
        started = time.monotonic()
        env = self.pg_env(target, database)
        # One session exports the snapshot pg_dump uses and counts rows in it, while pg_dump runs.
        session = PsqlSession(psql, env, self.timeout, f"pg_dump {database}")
        try:
            snapshot = session.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\nSELECT pg_export_snapshot();")[
                -1
            ]
            server = session.query("SHOW server_version;")[-1]
            tables = session.query(PG_TABLES)
            argv = [pg_dump, f"--format={fmt}", f"--snapshot={snapshot}", f"--file={partial}"]
            if fmt == "directory":
                argv.append(f"--jobs={target['jobs']}")
            if target.get("compress") is not None:
                argv.append(f"--compress={target['compress']}")
            with tempfile.TemporaryFile() as err:
                dump = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
                if wait(dump, self.timeout, f"pg_dump {database}") != 0:
                    err.seek(0)
                    raise StepFailed(f"pg_dump {database}: {error_text(err.read())}")
            # The snapshot is still held: count the rows pg_dump saw while the file is hashed (two
            # cores: the server counts, this process hashes). Counting during the dump would slow it.
            hashed = {}

            def digest():
                try:
                    hashed["value"] = artefact_digest(partial)
                except OSError as exc:
                    hashed["error"] = exc

            hasher = threading.Thread(target=digest, daemon=True)
            hasher.start()
            try:
                counts = session.query("\n".join(f"SELECT count(*) FROM {t};" for t in tables)) if tables else []
            finally:
                hasher.join()
        finally:
            session.close()
        if "error" in hashed:
            raise hashed["error"]
        digest, size, entries = hashed["value"]
        final = os.path.join(work, name)
        os.replace(partial, final)
        rows = [{"table": t, "rows": int(c)} for t, c in zip(tables, counts)]
        return {
            "name": database,
            "kind": "database",
            "format": fmt,
            "file": name,
            "size_bytes": size,
            "sha256": digest,
            "_tree": [[e[0], e[1]] for e in entries] if entries is not None else None,
            "duration_s": round(time.monotonic() - started, 3),
            "tables": rows,
            "rows": sum(r["rows"] for r in rows),
            "server_version": server,
        }

    def pg_globals(self, target, work, used):
        started = time.monotonic()
        tool = self.tool(target, ["pg_dumpall"], "the PostgreSQL client (postgresql-client)")
        name = file_name("globals", ".sql", used)
        partial = os.path.join(work, name + PARTIAL)
        try:
            self.run(
                [tool, "--globals-only", f"--file={partial}"], "pg_dumpall --globals-only", env=self.pg_env(target)
            )
        except StepFailed as exc:
            hint = " (set globals: false for a user that is not a superuser)" if "permission" in str(exc) else ""
            raise StepFailed(f"{exc}{hint}") from None
        digest, size = sha256_file(partial)
        os.replace(partial, os.path.join(work, name))
        return {
            "name": "globals",
            "kind": "globals",
            "format": "plain",
            "file": name,
            "size_bytes": size,
            "sha256": digest,
            "duration_s": round(time.monotonic() - started, 3),
        }

    def pg_drop(self, target, name):
        sql_force = f"DROP DATABASE IF EXISTS {pg_ident(name)} WITH (FORCE);"
        try:
            self.psql(target, sql_force, what=f"dropping database {name}")
        except StepFailed:  # before PostgreSQL 13
            self.psql(target, f"DROP DATABASE IF EXISTS {pg_ident(name)};", what=f"dropping database {name}")

    def tag(self, target):
        return scratch_tag(self.params["host_label"], target["name"])

    def sweep_scratch(self, target, kind):
        """Drop scratch and staging databases a killed verify or restore left behind (once per
        target and call). One still in use is younger than a few step timeouts: it is kept."""
        if target["name"] in self.swept_targets:
            return
        self.swept_targets.add(target["name"])
        if kind == "postgresql":
            names = self.psql(
                target,
                "SELECT datname FROM pg_database WHERE datname LIKE 'oaops\\_%';",
                what=f"listing scratch databases of {target['name']}",
            )
        else:
            rows = self.mysql(
                target, "SHOW DATABASES LIKE 'oaops\\_%';", f"listing scratch databases of {target['name']}"
            )
            names = [row[0] for row in rows]
        now = int(time.time())
        mine = self.tag(target) if self.params["locked"] else None
        for name in names:
            if abandoned(name, now, 3 * self.timeout, mine):
                (self.pg_drop if kind == "postgresql" else self.my_drop)(target, name)
                self.swept.append({"target": target["name"], "database": name})
                self.changed = True

    def pg_exists(self, target, name):
        return bool(
            self.psql(
                target,
                f"SELECT 1 FROM pg_database WHERE datname = {pg_lit(name)};",
                what=f"looking for database {name}",
            )
        )

    def pg_restore(self, target, path, database, owners):
        tool = self.tool(target, ["pg_restore"], "the PostgreSQL client (postgresql-client)")
        argv = [tool, "--exit-on-error", f"--dbname={database}", f"--jobs={target['jobs']}"]
        if not owners:
            argv += ["--no-owner", "--no-acl"]
        self.run([*argv, path], f"pg_restore into {database}", env=self.pg_env(target, database))

    # ---- MySQL / MariaDB

    def my_base(self, target, names, package):
        tool = self.tool(target, names, package)
        return [tool, f"--defaults-extra-file={self.my_cnf(target)}", "--default-character-set=utf8mb4"]

    def my_client(self, target):
        return self.my_base(target, ["mariadb", "mysql"], "the MariaDB / MySQL client (mariadb-client)")

    def mysql(self, target, sql, what, database=None):
        argv = [*self.my_client(target), "--batch", "--skip-column-names"]
        if database:
            argv.append(f"--database={database}")
        out = self.run(argv, what, data=sql.encode("utf-8"))
        return [line.split("\t") for line in out.splitlines() if line]

    def my_databases(self, target):
        if target["databases"]:
            return list(target["databases"])
        rows = self.mysql(target, "SHOW DATABASES;", f"listing the databases of {target['name']}")
        skip = MYSQL_SYSTEM | set(target["exclude_databases"])
        return [r[0] for r in rows if r[0] not in skip]

    def my_tables(self, target, database):
        sql = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            f"{my_lit(database)} AND table_type = 'BASE TABLE' ORDER BY 1;"
        )
        return [r[0] for r in self.mysql(target, sql, f"listing the tables of {database}")]

    def my_counts(self, target, database):
        tables = self.my_tables(target, database)
        if not tables:
            return {}
        sql = " UNION ALL ".join(f"SELECT {my_lit(t)}, COUNT(*) FROM {my_ident(t)}" for t in tables) + ";"
        return {r[0]: int(r[1]) for r in self.mysql(target, sql, f"counting the rows of {database}", database)}

    def my_dump_database(self, target, database, work, used):
        started = time.monotonic()
        base = self.my_base(target, ["mariadb-dump", "mysqldump"], "the MariaDB / MySQL client (mariadb-client)")
        tool = os.path.basename(base[0])
        tables = self.my_tables(target, database)
        server = self.mysql(target, "SELECT VERSION();", "asking the server version")[0][0]
        name = file_name(database, ".sql.gz", used)
        partial = os.path.join(work, name + PARTIAL)
        argv = [*base, "--single-transaction", "--routines", "--triggers", "--hex-blob", database]
        counts = {t: 0 for t in tables}
        level = target.get("compress")
        with tempfile.TemporaryFile() as err, open(partial, "wb") as raw:
            out = HashingWriter(raw)
            try:
                dump = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
            except OSError as exc:
                raise StepFailed(f"{tool} {database}: cannot run: {exc.strerror}") from None
            try:
                with gzip.GzipFile(
                    filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6 if level is None else level
                ) as gz:
                    table = None  # inside a (possibly multi-line) INSERT of this table
                    for line in dump.stdout:
                        if table is None and line.startswith(b"INSERT INTO `"):
                            match = MY_INSERT.match(line)
                            if match:
                                table = match.group(1).replace(b"``", b"`").decode("utf-8", "replace")
                                counts.setdefault(table, 0)
                                rest = line[match.end() :]
                        else:
                            rest = line
                        if table is not None:
                            # strings blanked, every "(" opens one row: values are literals only
                            body = MY_STRING.sub(b"''", rest)
                            counts[table] += body.count(b"(")
                            if body.rstrip().endswith(b";"):
                                table = None
                        gz.write(line)
            except BaseException:
                dump.kill()
                dump.wait()
                raise
            if wait(dump, self.timeout, f"{tool} {database}") != 0:
                err.seek(0)
                raise StepFailed(f"{tool} {database}: {error_text(err.read())}")
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, os.path.join(work, name))
        rows = [{"table": t, "rows": n} for t, n in sorted(counts.items())]
        return {
            "name": database,
            "kind": "database",
            "format": "sql.gz",
            "file": name,
            "size_bytes": out.size,
            "sha256": out.sha.hexdigest(),
            "duration_s": round(time.monotonic() - started, 3),
            "tables": rows,
            "rows": sum(counts.values()),
            "server_version": server,
        }

    def my_exists(self, target, name):
        sql = f"SELECT 1 FROM information_schema.schemata WHERE schema_name = {my_lit(name)};"
        return bool(self.mysql(target, sql, f"looking for database {name}"))

    def my_drop(self, target, name):
        self.mysql(target, f"DROP DATABASE IF EXISTS {my_ident(name)};", f"dropping database {name}")

    def my_create(self, target, name):
        self.mysql(target, f"CREATE DATABASE {my_ident(name)} CHARACTER SET utf8mb4;", f"creating database {name}")

    def my_restore(self, target, path, database):
        argv = [*self.my_client(target), f"--database={database}"]
        what = f"restoring into {database}"
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
            try:
                with gzip.open(path, "rb") as source:
                    while True:
                        chunk = source.read(CHUNK)
                        if not chunk:
                            break
                        proc.stdin.write(chunk)
                proc.stdin.close()
            except BrokenPipeError:
                pass  # the client stopped on an error: its stderr says which
            except (OSError, EOFError, zlib.error) as exc:
                proc.kill()
                proc.wait()
                raise StepFailed(f"{what}: cannot read {os.path.basename(path)}: {exc}") from None
            if wait(proc, self.timeout, what) != 0:
                err.seek(0)
                raise StepFailed(f"{what}: {error_text(err.read())}")

    # ---- files

    def files_archive(self, target, work, used):
        started = time.monotonic()
        roots = [os.path.abspath(p) for p in target["paths"]]
        for root in roots:
            if not os.path.lexists(root):
                raise StepFailed(f"path {root} does not exist")
        name = file_name("files", ".tar.gz", used)
        contents_name = file_name("files", ".contents.jsonl", used)
        partial = os.path.join(work, name + PARTIAL)
        contents_partial = os.path.join(work, contents_name + PARTIAL)
        level = target.get("compress")
        stats = {"files": 0, "links": 0, "special": 0, "excluded": 0, "bytes": 0}
        with open(partial, "wb") as raw, open(contents_partial, "w", encoding="utf-8") as contents:
            out = HashingWriter(raw)
            with tarfile.open(
                fileobj=out, mode="w:gz", compresslevel=6 if level is None else level, format=tarfile.PAX_FORMAT
            ) as tar:
                for root in roots:
                    self._archive_root(tar, root, target["exclude"], contents, stats)
            raw.flush()
            os.fsync(raw.fileno())
            contents.flush()
            os.fsync(contents.fileno())
        contents_digest, _ = sha256_file(contents_partial)
        os.replace(partial, os.path.join(work, name))
        os.replace(contents_partial, os.path.join(work, contents_name))
        return {
            "name": "files",
            "kind": "archive",
            "format": "tar.gz",
            "file": name,
            "size_bytes": out.size,
            "sha256": out.sha.hexdigest(),
            "duration_s": round(time.monotonic() - started, 3),
            "files": stats["files"],
            "links": stats["links"],
            "skipped_special": stats["special"],
            "excluded": stats["excluded"],
            "bytes": stats["bytes"],
            "contents": {"file": contents_name, "sha256": contents_digest},
            "paths": roots,
            "exclude": list(target["exclude"]),
        }

    def _archive_root(self, tar, root, patterns, contents, stats):
        def excluded(path):
            rel = os.path.relpath(path, root)
            return any(
                fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(path, p) or fnmatch.fnmatch(os.path.basename(path), p)
                for p in patterns
            )

        if not os.path.isdir(root) or os.path.islink(root):
            self._archive_entry(tar, root, contents, stats)
            return
        for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
            kept = []
            for d in sorted(dirnames):
                if excluded(os.path.join(dirpath, d)):
                    stats["excluded"] += 1
                else:
                    kept.append(d)
            dirnames[:] = kept
            tar.add(dirpath, arcname=dirpath.lstrip("/"), recursive=False)
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if excluded(path):
                    stats["excluded"] += 1
                    continue
                self._archive_entry(tar, path, contents, stats)

    @staticmethod
    def _archive_entry(tar, path, contents, stats):
        mode = os.lstat(path).st_mode
        arcname = path.lstrip("/")
        if stat.S_ISREG(mode):
            info = tar.gettarinfo(path, arcname=arcname)
            with open(path, "rb") as handle:
                reader = HashingReader(handle)
                try:
                    tar.addfile(info, reader)
                except OSError as exc:
                    if "unexpected end of data" in str(exc):
                        raise StepFailed(f"{path} shrank while it was archived; run the backup again") from None
                    raise
            contents.write(json.dumps({"path": arcname, "sha256": reader.sha.hexdigest(), "size": info.size}) + "\n")
            stats["files"] += 1
            stats["bytes"] += info.size
        elif stat.S_ISLNK(mode) or stat.S_ISDIR(mode):
            tar.add(path, arcname=arcname, recursive=False)
            stats["links"] += int(stat.S_ISLNK(mode))
        else:
            stats["special"] += 1  # sockets, fifos, devices: nothing to restore

    # ---- sets on disk

    def target_dir(self, name):
        return os.path.join(self.dir, name)

    def list_sets(self, name):
        """Every set of a target on disk: id, path, state (ok / failed / partial), time, verified."""
        folder = self.target_dir(name)
        try:
            entries = os.listdir(folder)
        except FileNotFoundError:
            return []
        out = []
        for entry in entries:
            path = os.path.join(folder, entry)
            if entry.startswith(".") or not os.path.isdir(path):
                continue
            set_id, state = entry, "ok"
            for suffix, kind in ((PARTIAL, "partial"), (FAILED, "failed")):
                if entry.endswith(suffix):
                    set_id, state = entry[: -len(suffix)], kind
            if not SET_ID_RE.match(set_id):
                continue
            manifest, digest = read_json(os.path.join(path, MANIFEST)) if state == "ok" else (None, None)
            if state == "ok" and (manifest is None or manifest.get("status") != "ok"):
                state = "failed"
            checked, _ = read_json(os.path.join(path, VERIFY))
            verified = None if checked is None else checked.get("status") == "ok"
            out.append(
                {
                    "id": set_id,
                    "path": path,
                    "state": state,
                    "at": set_time(set_id),
                    "verified": verified,
                    "verify_record": checked,
                    "manifest": manifest,
                    "manifest_sha256": digest,
                }
            )
        return sorted(out, key=lambda s: (s["at"], s["id"]))

    def existing_sets(self, name, new_id):
        """The other complete sets of a target still on disk, with their last verification, so the
        records learn of sets made by plain ansible-playbook (or by another control node)."""
        out = []
        for s in self.list_sets(name):
            if s["state"] != "ok" or s["id"] == new_id or s["manifest"] is None:
                continue
            entry = dict(s["manifest"], location=s["path"], manifest_sha256=s["manifest_sha256"])
            record = s["verify_record"]
            if isinstance(record, dict) and record.get("manifest_sha256") in (None, s["manifest_sha256"]):
                entry["verify"] = {
                    k: record.get(k) for k in ("status", "reason", "checks", "verified_at", "duration_s")
                }
            out.append(entry)
        return out

    def new_set_id(self, name):
        base = utcnow().strftime(SET_ID_FORMAT)
        folder, candidate, n = self.target_dir(name), base, 2
        while any(os.path.lexists(os.path.join(folder, candidate + s)) for s in ("", PARTIAL, FAILED)):
            candidate, n = f"{base}-{n}", n + 1
        return candidate

    def keep(self, target):
        return {
            k: target.get(f"keep_{k}") if target.get(f"keep_{k}") is not None else self.params[f"keep_{k}"]
            for k in ("daily", "weekly", "monthly")
        }

    # ---- action: backup

    def backup(self):
        sets, verified, pruned, would_prune, existing = [], [], [], [], []
        targets = self.selected()
        for target in targets:
            summary = self.plan_target(target) if self.check else self.backup_target(target)
            sets.append(summary)
            if summary["status"] == "failed":
                self.failures.append(f"backup of target {target['name']} failed: {summary['reason']}")
            elif summary["status"] == "ok" and self.params["verify"]:
                result = self.verify_set(target["name"], summary["set_id"], summary["manifest_sha256"])
                verified.append(result)
                if result["status"] != "ok":
                    self.failures.append(
                        f"verify of target {target['name']} set {summary['set_id']} failed: {result['reason']}"
                    )
        # Retention only once every new set is written and verified: a call killed mid-way (any
        # target's dump or verify) has pruned nothing, so no recorded set is gone behind the records.
        for target, summary in zip(targets, sets):
            if self.params["prune"]:
                for item in self.retention(target):
                    (would_prune if self.check else pruned).append(item)
            if not self.check:
                existing += self.existing_sets(target["name"], summary.get("set_id"))
        payload = {
            "kind": "backup",
            "version": RETURN_VERSION,
            "dir": self.dir,
            "check_mode": self.check,
            "sets": sets,
            "verified": verified,
            "pruned": pruned,
            "swept": self.swept,
            "existing": existing,
        }
        if self.check:
            payload["would_prune"] = would_prune
        return payload

    def plan_target(self, target):
        """Check mode: what would be written; reads the server (lists databases), writes nothing."""
        set_id = self.new_set_id(target["name"])
        summary = {
            "target": target["name"],
            "type": target["type"],
            "set_id": set_id,
            "status": "planned",
            "reason": "",
            "location": os.path.join(self.target_dir(target["name"]), set_id),
            "artefacts": [],
        }
        try:
            if target["type"] == "postgresql":
                items = self.pg_databases(target) + (["globals"] if target["globals"] else [])
            elif target["type"] == "mysql":
                items = self.my_databases(target)
            else:
                items = [os.path.abspath(p) for p in target["paths"]]
                missing = [p for p in items if not os.path.lexists(p)]
                if missing:
                    raise StepFailed(f"path {missing[0]} does not exist")
            summary["artefacts"] = [{"name": i} for i in items]
            self.changed = True
        except StepFailed as exc:
            summary.update(status="failed", reason=str(exc))
        return summary

    def backup_target(self, target):
        name, kind = target["name"], target["type"]
        started, clock = utcnow(), time.monotonic()
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "target": name,
            "type": kind,
            "host": self.params["host_label"],
            "started_at": iso(started),
            "status": "running",
            "reason": "",
            "keep": self.keep(target),
            "artefacts": [],
            "tool_versions": {},
        }
        folder = self.target_dir(name)
        work = None
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            set_id = self.new_set_id(name)
            manifest["set_id"] = set_id
            work = os.path.join(folder, set_id + PARTIAL)
            os.mkdir(work, 0o700)
            self.changed = True
            used = set()
            if kind == "postgresql":
                manifest["tool_versions"]["pg_dump"] = self.version(target, ["pg_dump"])
                for database in self.pg_databases(target) or _none(f"no databases to back up on {target['host']}"):
                    manifest["artefacts"].append(self.pg_dump_database(target, database, work, used))
                if target["globals"]:
                    manifest["artefacts"].append(self.pg_globals(target, work, used))
            elif kind == "mysql":
                manifest["tool_versions"]["dump"] = self.version(target, ["mariadb-dump", "mysqldump"])
                for database in self.my_databases(target) or _none(f"no databases to back up on {target['host']}"):
                    manifest["artefacts"].append(self.my_dump_database(target, database, work, used))
            else:
                manifest["tool_versions"] = {"python": sys.version.split()[0], "zlib": zlib.ZLIB_VERSION}
                manifest["artefacts"].append(self.files_archive(target, work, used))
            manifest["status"] = "ok"
        except StepFailed as exc:
            manifest.update(status="failed", reason=str(exc))
        except OSError as exc:
            manifest.update(status="failed", reason=os_reason(exc, f"writing {exc.filename or folder}"))
        for art in manifest["artefacts"]:
            if art["kind"] == "database" and art.get("server_version"):
                manifest["tool_versions"]["server"] = art["server_version"]
        finished = utcnow()
        manifest.update(
            finished_at=iso(finished),
            duration_s=round(time.monotonic() - clock, 3),
            size_bytes=sum(a["size_bytes"] for a in manifest["artefacts"]),
        )
        return self.finish_set(manifest, folder, work)

    def version(self, target, names):
        tool = self.tool(target, names, "the client tools")
        return self.run([tool, "--version"], f"{tool} --version").strip().splitlines()[0]

    def finish_set(self, manifest, folder, work):
        """Rename a complete set into place; a failed one keeps only its manifest, as `<id>.failed`."""
        summary = dict(manifest, location="", manifest_sha256="")
        if work is None:
            return summary
        set_id = manifest["set_id"]
        try:
            if manifest["status"] == "ok":
                sums = []
                for art in manifest["artefacts"]:
                    tree = art.pop("_tree", None)
                    if tree is not None:
                        sums += [(posixpath.join(art["file"], rel), digest) for rel, digest in tree]
                    else:
                        sums.append((art["file"], art["sha256"]))
                    if art.get("contents"):
                        sums.append((art["contents"]["file"], art["contents"]["sha256"]))
                data = json_bytes(manifest)
                digest = write_atomic(os.path.join(work, MANIFEST), data)
                sums.append((MANIFEST, digest))
                write_atomic(os.path.join(work, SUMS), "".join(f"{d}  {p}\n" for p, d in sums).encode("utf-8"))
                final = os.path.join(folder, set_id)
                os.replace(work, final)
                fsync_path(folder)
                summary = dict(manifest, location=final, manifest_sha256=digest)
                return summary
        except OSError as exc:
            manifest.update(status="failed", reason=os_reason(exc, f"writing the manifest in {work}"))
            summary = dict(manifest, location="", manifest_sha256="")
        for art in manifest["artefacts"]:
            art.pop("_tree", None)
        # Failed: drop every artefact (a partial file is never kept as if good), keep the reason.
        for entry in os.listdir(work):
            path = os.path.join(work, entry)
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
        try:
            write_atomic(os.path.join(work, MANIFEST), json_bytes(manifest))
            final = os.path.join(folder, set_id + FAILED)
            os.replace(work, final)
            summary.update(location=final)
        except OSError:
            shutil.rmtree(work, ignore_errors=True)
        summary["artefacts"] = manifest["artefacts"]
        return summary

    def retention(self, target):
        keep = self.keep(target)
        sets = self.list_sets(target["name"])
        now = utcnow()
        view, prune = [], []
        for s in sets:
            if s["state"] == "partial" and self.params["locked"]:
                # the caller holds the target's lock: no live backup writes this folder
                prune.append((s["id"], "incomplete set left by an interrupted backup"))
                continue
            if s["state"] == "partial" and (now - s["at"]).total_seconds() < STALE_PARTIAL_S:
                continue  # maybe still being written (by a run that holds no lock on the target)
            bad = {"partial": "incomplete set left by an interrupted backup", "failed": "failed backup"}.get(s["state"])
            if s["verified"] is False:
                bad = "restore verification failed"
            view.append(
                {"id": s["id"], "at": s["at"], "good": bad is None, "verified": bool(s["verified"]), "bad": bad}
            )
        prune += gfs_plan(view, keep["daily"], keep["weekly"], keep["monthly"], _local_zone())[1]
        paths = {s["id"]: s["path"] for s in sets}
        states = {s["id"]: s["state"] for s in sets}
        out = []
        for set_id, reason in prune:
            item = {"target": target["name"], "set_id": set_id, "location": paths[set_id], "reason": reason}
            if states[set_id] != "ok":
                item.update(state=states[set_id], started_at=iso(set_time(set_id)), type=target["type"])
            if not self.check:
                shutil.rmtree(paths[set_id])
                self.changed = True
            out.append(item)
        return out

    # ---- action: verify

    def chosen_sets(self, latest_of):
        """The sets named in `sets`, else the newest complete set of each target in `latest_of`."""
        if self.params["sets"]:
            return [(s["target"], s["set_id"], s.get("manifest_sha256")) for s in self.params["sets"]]
        chosen = []
        for target in latest_of:
            good = [s for s in self.list_sets(target["name"]) if s["state"] == "ok"]
            chosen.append((target["name"], good[-1]["id"] if good else None, None))
        return chosen

    def verify(self):
        results = []
        for name, set_id, expected in self.chosen_sets(self.selected()):
            result = self.verify_set(name, set_id, expected)
            results.append(result)
            if result["status"] != "ok":
                self.failures.append(f"verify of target {name} set {set_id or '-'} failed: {result['reason']}")
        return {
            "kind": "backup_verify",
            "version": RETURN_VERSION,
            "dir": self.dir,
            "check_mode": self.check,
            "results": results,
            "swept": self.swept,
        }

    def open_set(self, name, set_id, expected, checks):
        """The set's folder and manifest, after checking the manifest is the recorded one."""
        if set_id is None:
            raise StepFailed(f"no complete backup set of target {name} in {self.target_dir(name)}")
        path = os.path.join(self.target_dir(name), set_id)
        manifest, digest = read_json(os.path.join(path, MANIFEST))
        if manifest is None:
            raise StepFailed(f"{path}/{MANIFEST} is missing or unreadable")
        if expected and digest != expected:
            checks.append(check_entry(MANIFEST, "sha256", False, expected, digest, "differs from the record"))
            raise StepFailed(f"{MANIFEST}: sha256 differs from the record (altered or replaced)")
        if manifest.get("status") != "ok":
            raise StepFailed(f"the backup itself failed: {manifest.get('reason') or 'no reason recorded'}")
        return path, manifest, digest

    def verify_set(self, name, set_id, expected):
        clock = time.monotonic()
        result = {
            "target": name,
            "set_id": set_id,
            "status": "failed",
            "reason": "",
            "checks": [],
            "location": os.path.join(self.target_dir(name), set_id) if set_id else "",
            "verified_at": iso(utcnow()),
            "manifest_sha256": None,
            "type": None,
        }
        checks = result["checks"]
        try:
            path, manifest, digest = self.open_set(name, set_id, expected, checks)
            result.update(manifest_sha256=digest, type=manifest["type"])
            target = self.targets.get(name)
            if target is None and manifest["type"] != "files":
                raise StepFailed(f"target {name} is not in this host's targets: its connection is needed to restore")
            for art in manifest["artefacts"]:
                self.verify_artefact(target, manifest, path, art, checks)
            failed = [c for c in checks if not c["ok"]]
            if failed:
                raise StepFailed("; ".join(_failed_text(c) for c in failed[:3]))
            result.update(status="ok" if not self.check else "planned")
        except StepFailed as exc:
            result["reason"] = str(exc)
        except OSError as exc:
            result["reason"] = os_reason(exc, f"reading {exc.filename or result['location']}")
        result["duration_s"] = round(time.monotonic() - clock, 3)
        if not self.check and set_id and os.path.isdir(result["location"]):
            record = {
                k: result[k] for k in ("status", "reason", "checks", "verified_at", "manifest_sha256", "duration_s")
            }
            try:
                write_atomic(os.path.join(result["location"], VERIFY), json_bytes(record))
                self.changed = True
            except OSError as exc:
                result.update(status="failed", reason=os_reason(exc, f"writing {VERIFY}"))
        return result

    def verify_artefact(self, target, manifest, path, art, checks):
        item, where = art["name"], os.path.join(path, art["file"])
        if not os.path.lexists(where):
            checks.append(check_entry(item, "present", False, art["file"], None, f"{art['file']} is missing"))
            return
        restores = art["kind"] == "database" and not self.check and target is not None
        # A database dump is hashed while it restores into the scratch database (the dump is read
        # twice either way; this way the two reads overlap). The sha256 check still comes first in
        # the result, and a restore of a corrupted dump counts for nothing.
        hashed = {}
        hasher = threading.Thread(target=_digest_into, args=(where, hashed), daemon=True)
        hasher.start()
        restore_checks = []
        try:
            if restores:
                self.restore_scratch(target, manifest, where, art, restore_checks)
        finally:
            hasher.join()
        if "error" in hashed:
            raise hashed["error"]
        digest, size, _ = hashed["value"]
        ok = digest == art["sha256"]
        checks.append(
            check_entry(
                item,
                "sha256",
                ok,
                art["sha256"],
                digest,
                f"{size} bytes" if ok else f"{art['file']} is corrupted or altered ({size} bytes)",
            )
        )
        if not ok or self.check:
            return
        if restores:
            checks.extend(restore_checks)
        elif art["kind"] == "globals":
            checks.append(
                check_entry(
                    item, "restore", True, None, None, "cluster-wide roles are not restored into a scratch database"
                )
            )
        elif art["kind"] == "archive":
            self.verify_archive(path, art, checks)

    def restore_scratch(self, target, manifest, where, art, checks):
        """Restore a dump into a scratch database created for it, count, compare, drop it."""
        item = art["name"]
        self.sweep_scratch(target, manifest["type"])
        scratch = scratch_name(SCRATCH_PREFIX, self.tag(target))
        if manifest["type"] == "postgresql":
            self.psql(
                target,
                f"CREATE DATABASE {pg_ident(scratch)} TEMPLATE template0;",
                what=f"creating scratch database {scratch}",
            )
            try:
                self.restore_check(
                    item,
                    checks,
                    lambda: self.pg_restore(target, where, scratch, owners=False),
                    lambda: self.pg_counts(target, scratch),
                    art,
                )
            finally:
                self.pg_drop(target, scratch)
        else:
            self.my_create(target, scratch)
            try:
                self.restore_check(
                    item,
                    checks,
                    lambda: self.my_restore(target, where, scratch),
                    lambda: self.my_counts(target, scratch),
                    art,
                )
            finally:
                self.my_drop(target, scratch)

    @staticmethod
    def restore_check(item, checks, restore, count, art):
        clock = time.monotonic()
        try:
            restore()
        except StepFailed as exc:
            checks.append(check_entry(item, "restore", False, None, None, str(exc)))
            return False
        checks.append(check_entry(item, "restore", True, None, None, f"restored in {time.monotonic() - clock:.1f} s"))
        checks.extend(compare_tables(item, art["tables"], count()))
        return all(c["ok"] for c in checks if c["item"] == item)

    def verify_archive(self, path, art, checks, into=None):
        """Extract into a scratch folder (or `into`), hashing every file; compare with the contents list."""
        item = art["name"]
        contents_path = os.path.join(path, art["contents"]["file"])
        digest, _ = sha256_file(contents_path)
        if digest != art["contents"]["sha256"]:
            checks.append(
                check_entry(
                    item,
                    "contents",
                    False,
                    art["contents"]["sha256"],
                    digest,
                    f"{art['contents']['file']} is corrupted or altered",
                )
            )
            return False
        expected = {}
        with open(contents_path, encoding="utf-8") as handle:
            for line in handle:
                entry = json.loads(line)
                expected[entry["path"]] = entry["sha256"]
        scratch = into or self.params["scratch_dir"] or os.path.join(self.dir, f".verify-{secrets.token_hex(4)}")
        os.makedirs(scratch, mode=0o700, exist_ok=bool(into))
        got, members = {}, 0
        try:
            with tarfile.open(os.path.join(path, art["file"]), "r:gz") as tar:
                for member in tar:
                    members += 1
                    name = posixpath.normpath(member.name)
                    if name.startswith(("/", "../")) or name == "..":
                        raise StepFailed(f"unsafe member name {member.name!r}")
                    dest = os.path.join(scratch, name)
                    if member.isdir():
                        os.makedirs(dest, exist_ok=True)
                    elif member.issym():
                        os.makedirs(os.path.dirname(dest), exist_ok=True)
                        os.symlink(member.linkname, dest)
                    elif member.isreg():
                        os.makedirs(os.path.dirname(dest), exist_ok=True)
                        source, sha = tar.extractfile(member), hashlib.sha256()
                        with open(dest, "wb") as out:
                            while True:
                                chunk = source.read(CHUNK)
                                if not chunk:
                                    break
                                sha.update(chunk)
                                out.write(chunk)
                        os.chmod(dest, member.mode & 0o7777)
                        got[member.name] = sha.hexdigest()
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            checks.append(check_entry(item, "extract", False, art["files"], len(got), f"archive unreadable: {exc}"))
            if into is None:
                shutil.rmtree(scratch, ignore_errors=True)
            return False
        finally:
            if into is None:
                shutil.rmtree(scratch, ignore_errors=True)
        checks.append(check_entry(item, "list", True, None, members, f"{members} members"))
        count_ok = len(got) == art["files"] == len(expected)
        checks.append(
            check_entry(
                item,
                "files",
                count_ok,
                art["files"],
                len(got),
                f"{len(got)} files extracted"
                if count_ok
                else f"{len(got)} files extracted, the manifest says {art['files']}",
            )
        )
        differ = sorted(p for p in expected if got.get(p) != expected[p])
        extra = sorted(set(got) - set(expected))
        detail = (
            "every file's sha256 matches"
            if not differ and not extra
            else "; ".join(
                part
                for part in (
                    f"{len(differ)} missing or different: {', '.join(differ[:5])}" if differ else "",
                    f"{len(extra)} unexpected: {', '.join(extra[:5])}" if extra else "",
                )
                if part
            )
        )
        checks.append(
            check_entry(item, "hashes", not differ and not extra, len(expected), len(expected) - len(differ), detail)
        )
        return count_ok and not differ and not extra

    # ---- action: restore

    def restore(self):
        only = self.selected()
        name, set_id, expected = self.chosen_sets(only)[0]
        clock = time.monotonic()
        to, force = self.params["restore_to"], self.params["force"]
        result = {
            "target": name,
            "set_id": set_id,
            "to": to,
            "force": force,
            "status": "failed",
            "reason": "",
            "refused": False,
            "replaced": False,
            "kept": "",
            "item": None,
            "checks": [],
            "location": os.path.join(self.target_dir(name), set_id) if set_id else "",
        }
        try:
            path, manifest, _ = self.open_set(name, set_id, expected, result["checks"])
            result["type"] = manifest["type"]
            target = self.targets.get(name)
            if target is None and manifest["type"] != "files":
                raise StepFailed(f"target {name} is not in this host's targets: its connection is needed to restore")
            art = self.restore_item(manifest)
            result["item"] = art["name"]
            digest, _, _ = artefact_digest(os.path.join(path, art["file"]))
            if digest != art["sha256"]:
                result["checks"].append(check_entry(art["name"], "sha256", False, art["sha256"], digest, "corrupted"))
                raise StepFailed(f"{art['file']}: sha256 check failed (corrupted or altered); not restored")
            result["checks"].append(check_entry(art["name"], "sha256", True, art["sha256"], digest, ""))
            if art["kind"] == "archive":
                self.restore_files(path, art, to, force, result)
            else:
                self.restore_database(target, manifest["type"], path, art, to, force, result)
        except Refused as exc:
            result.update(reason=str(exc), refused=True)
        except StepFailed as exc:
            result["reason"] = str(exc)
        except OSError as exc:
            result["reason"] = os_reason(exc, f"restoring into {to}")
        result["duration_s"] = round(time.monotonic() - clock, 3)
        if result["status"] not in ("ok", "planned"):
            self.failures.append(
                f"restore of target {name} set {set_id or '-'} into {to} "
                f"{'refused' if result['refused'] else 'failed'}: {result['reason']}"
            )
        return {"kind": "backup_restore", "version": RETURN_VERSION, "check_mode": self.check, "results": [result]}

    def restore_item(self, manifest):
        wanted = self.params["restore_database"]
        items = [a for a in manifest["artefacts"] if a["kind"] in ("database", "archive")]
        if wanted:
            items = [a for a in items if a["name"] == wanted]
            if not items:
                names = ", ".join(a["name"] for a in manifest["artefacts"] if a["kind"] == "database")
                raise StepFailed(f"the set holds no database {wanted!r} (it holds: {names})")
        if len(items) != 1:
            names = ", ".join(a["name"] for a in items)
            raise StepFailed(f"the set holds several databases ({names}): name one with restore_database")
        return items[0]

    def restore_database(self, target, kind, path, art, to, force, result):
        source = os.path.join(path, art["file"])
        exists = self.pg_exists(target, to) if kind == "postgresql" else self.my_exists(target, to)
        server = f"{target['host']}:{target.get('port') or DB_DEFAULTS[kind][0]}"
        if exists and not force:
            raise Refused(
                f"database {to} exists on {server}; pass force (oaops backup restore --force) "
                "to replace it, or restore to another name"
            )
        if self.check:
            result.update(status="planned", replaced=exists)
            return
        checks = result["checks"]
        if kind == "postgresql":
            # Into a staging database first; the live one is replaced only once the counts match.
            staging = scratch_name(STAGING_PREFIX) if exists else to
            self.psql(
                target, f"CREATE DATABASE {pg_ident(staging)} TEMPLATE template0;", what=f"creating database {staging}"
            )
            self.changed = True
            good = False
            try:
                good = self.restore_check(
                    art["name"],
                    checks,
                    lambda: self.pg_restore(target, source, staging, True),
                    lambda: self.pg_counts(target, staging),
                    art,
                )
            finally:
                if not good:
                    self.pg_drop(target, staging)
            if not good:
                raise StepFailed(_first_failed(checks))
            if exists:
                self.pg_drop(target, to)
                self.psql(
                    target,
                    f"ALTER DATABASE {pg_ident(staging)} RENAME TO {pg_ident(to)};",
                    what=f"renaming {staging} to {to}",
                )
        else:
            if exists:  # prove the dump restores before the live database is dropped
                staging = scratch_name(STAGING_PREFIX)
                self.my_create(target, staging)
                try:
                    good = self.restore_check(
                        art["name"],
                        checks,
                        lambda: self.my_restore(target, source, staging),
                        lambda: self.my_counts(target, staging),
                        art,
                    )
                finally:
                    self.my_drop(target, staging)
                if not good:
                    raise StepFailed(_first_failed(checks))
                self.my_drop(target, to)
            self.my_create(target, to)
            self.changed = True
            del checks[1:]
            if not self.restore_check(
                art["name"],
                checks,
                lambda: self.my_restore(target, source, to),
                lambda: self.my_counts(target, to),
                art,
            ):
                raise StepFailed(_first_failed(checks))
        result.update(status="ok", replaced=exists)

    def restore_files(self, path, art, to, force, result):
        if not os.path.isabs(to):
            raise StepFailed(f"restore_to {to!r} must be an absolute folder for a files set")
        to = to.rstrip("/") or "/"
        if os.path.normpath(to) != to or os.path.realpath(to) != to:
            # "/srv/new/../oa" or a link would land on another, maybe live, folder than the one named
            raise Refused(
                f"restore_to {to!r} resolves to {os.path.realpath(to)!r}; name that folder itself "
                "(no '..', no symbolic links)"
            )
        exists = os.path.lexists(to) and (not os.path.isdir(to) or bool(os.listdir(to)))
        if exists and not force:
            raise Refused(
                f"folder {to} exists and is not empty; pass force (oaops backup restore --force) "
                "to replace it (the old one is kept beside it), or restore to another folder"
            )
        if self.check:
            result.update(status="planned", replaced=exists)
            return
        partial = to + ".oaops-restore" + PARTIAL
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(os.path.dirname(to) or "/", exist_ok=True)
        os.mkdir(partial, 0o700)
        self.changed = True
        if not self.verify_archive(path, art, result["checks"], into=partial):
            shutil.rmtree(partial, ignore_errors=True)
            raise StepFailed(_first_failed(result["checks"]))
        if os.path.lexists(to):
            kept = f"{to}.before-restore-{utcnow().strftime(SET_ID_FORMAT)}"
            os.replace(to, kept)
            result["kept"] = kept
        os.replace(partial, to)
        os.chmod(to, 0o755)
        result.update(status="ok", replaced=exists)

    # ---- action: copy

    def copy(self):
        dest = self.params["copy_to"]
        results = []
        for name, set_id, _ in self.chosen_sets(self.selected()):
            clock = time.monotonic()
            result = {"target": name, "set_id": set_id, "status": "failed", "reason": "", "location": ""}
            try:
                if set_id is None:
                    raise StepFailed(f"no complete backup set of target {name} to copy")
                result["location"] = self.copy_set(name, set_id, dest)
                result["status"] = "planned" if self.check else "ok"
            except StepFailed as exc:
                result["reason"] = str(exc)
                self.failures.append(f"copy of target {name} set {set_id or '-'} to {dest['host']} failed: {exc}")
            result["duration_s"] = round(time.monotonic() - clock, 3)
            results.append(result)
        return {"kind": "backup_copy", "version": RETURN_VERSION, "check_mode": self.check, "results": results}

    def copy_set(self, name, set_id, dest):
        local = os.path.join(self.target_dir(name), set_id)
        if not os.path.isfile(os.path.join(local, SUMS)):
            raise StepFailed(f"{local} is not a complete set (no {SUMS})")
        remote = f"{dest['user']}@{dest['host']}" if dest.get("user") else dest["host"]
        folder = posixpath.join(dest["path"], name)
        final, partial = posixpath.join(folder, set_id), posixpath.join(folder, set_id + PARTIAL)
        location = f"{remote}:{final}"
        if self.check:
            return location
        plain = {"host": "127.0.0.1", "bin_dir": None}
        ssh = self.tool(plain, ["ssh"], "the OpenSSH client (openssh-client)")
        scp = self.tool(plain, ["scp"], "the OpenSSH client (openssh-client)")
        options = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        for option in dest["ssh_options"]:
            options += ["-o", option]
        if dest.get("identity_file"):
            options += ["-i", dest["identity_file"]]
        port = str(dest["port"])
        q = shlex.quote
        self.run(
            [ssh, *options, "-p", port, remote, f"mkdir -p {q(folder)} && rm -rf {q(partial)}"], f"preparing {location}"
        )
        self.changed = True
        self.run([scp, "-q", "-r", "-p", *options, "-P", port, local, f"{remote}:{partial}"], f"copying to {location}")
        self.run(
            [
                ssh,
                *options,
                "-p",
                port,
                remote,
                f"cd {q(partial)} && sha256sum --quiet --strict -c {SUMS} && cd .. && rm -rf {q(final)}"
                f" && mv {q(partial)} {q(final)}",
            ],
            f"checking the copy at {location} (sha256sum -c)",
        )
        return location


class Refused(StepFailed):
    """A restore that would replace something live without force."""


class PsqlSession:
    """One psql process fed statements over stdin; a sentinel line ends each answer."""

    SENTINEL = "__oaops_end__"

    def __init__(self, psql, env, timeout, what):
        self.what, self.timeout = what, timeout
        self.err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
            encoding="utf-8",
        )

    def query(self, sql):
        try:
            self.proc.stdin.write(f"{sql}\n\\echo {self.SENTINEL}\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise StepFailed(f"{self.what}: {self.error()}") from None
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if line == "":
                raise StepFailed(f"{self.what}: {self.error()}")
            line = line.rstrip("\n")
            if line == self.SENTINEL:
                return lines
            lines.append(line)

    def error(self):
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.err.seek(0)
        return error_text(self.err.read())

    def close(self):
        try:
            self.proc.stdin.write("COMMIT;\n\\q\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.err.close()


def check_entry(item, name, ok, expected, got, detail):
    return {"item": item, "check": name, "ok": bool(ok), "expected": expected, "got": got, "detail": detail}


def compare_tables(item, expected_rows, got):
    expected = {t["table"]: t["rows"] for t in expected_rows}
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    differ = [(t, expected[t], got[t]) for t in sorted(set(expected) & set(got)) if expected[t] != got[t]]
    tables_detail = (
        "; ".join(
            part
            for part in (
                f"missing: {', '.join(missing[:5])}" if missing else "",
                f"unexpected: {', '.join(extra[:5])}" if extra else "",
            )
            if part
        )
        or "same tables"
    )
    rows_detail = "; ".join(f"{t}: expected {e}, got {g}" for t, e, g in differ[:5]) or "same row count in every table"
    return [
        check_entry(item, "tables", not missing and not extra, len(expected), len(got), tables_detail),
        check_entry(item, "rows", not differ, sum(expected.values()), sum(got.values()), rows_detail),
    ]


def _failed_text(c):
    return f"{c['item']}: {c['check']} check failed ({c['detail']})"


def _first_failed(checks):
    failed = [c for c in checks if not c["ok"]]
    return _failed_text(failed[0]) if failed else "failed"


def _none(reason):
    raise StepFailed(reason)


def _local_zone():
    return datetime.datetime.now().astimezone().tzinfo


def pg_ident(name):
    return '"' + name.replace('"', '""') + '"'


def pg_lit(text):
    return "'" + text.replace("'", "''") + "'"


def my_ident(name):
    return "`" + name.replace("`", "``") + "`"


def my_lit(text):
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---------------------------------------------------------------- parameters

TARGET_OPTIONS = dict(
    name=dict(type="str", required=True),
    type=dict(type="str", required=True, choices=["postgresql", "mysql", "files"]),
    host=dict(type="str", default="127.0.0.1"),
    port=dict(type="int"),
    user=dict(type="str"),
    password=dict(type="str", no_log=True),
    databases=dict(type="list", elements="str", default=[]),
    exclude_databases=dict(type="list", elements="str", default=[]),
    globals=dict(type="bool", default=True),
    format=dict(type="str", default="custom", choices=["custom", "directory"]),
    jobs=dict(type="int", default=1),
    compress=dict(type="int"),
    bin_dir=dict(type="path"),
    maintenance_db=dict(type="str", default="postgres"),
    paths=dict(type="list", elements="path", default=[]),
    exclude=dict(type="list", elements="str", default=[]),
    keep_daily=dict(type="int"),
    keep_weekly=dict(type="int"),
    keep_monthly=dict(type="int"),
)

ARGUMENT_SPEC = dict(
    action=dict(type="str", default="backup", choices=["backup", "verify", "restore", "copy"]),
    dir=dict(type="path", required=True),
    host_label=dict(type="str", default=""),
    targets=dict(type="list", elements="dict", default=[], options=TARGET_OPTIONS),
    only=dict(type="list", elements="str", default=[]),
    keep_daily=dict(type="int", default=7),
    keep_weekly=dict(type="int", default=4),
    keep_monthly=dict(type="int", default=6),
    prune=dict(type="bool", default=True),
    locked=dict(type="bool", default=False),
    verify=dict(type="bool", default=False),
    sets=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(
            target=dict(type="str", required=True),
            set_id=dict(type="str", required=True),
            manifest_sha256=dict(type="str"),
            host=dict(type="str"),
        ),
    ),
    restore_to=dict(type="str"),
    restore_database=dict(type="str"),
    force=dict(type="bool", default=False),
    copy_to=dict(
        type="dict",
        options=dict(
            host=dict(type="str", required=True),
            path=dict(type="str", required=True),
            user=dict(type="str"),
            port=dict(type="int", default=22),
            identity_file=dict(type="path"),
            ssh_options=dict(type="list", elements="str", default=[]),
        ),
    ),
    scratch_dir=dict(type="path"),
    timeout=dict(type="int", default=21600),
)


def validate(module):
    """What the argument spec cannot check; every message names the target and the fix."""
    p = module.params
    fail = module.fail_json
    names = [t["name"] for t in p["targets"]]
    for index, t in enumerate(p["targets"]):
        where = f"targets[{index}] ({t['name']})"
        if not NAME_RE.match(t["name"]):
            fail(msg=f"{where}: name may hold only letters, digits, _ . - and must not start with . or -")
        if names.count(t["name"]) > 1:
            fail(msg=f"{where}: the name {t['name']!r} is used twice; give each target its own name")
        if t["type"] == "files":
            if not t["paths"]:
                fail(msg=f"{where}: a files target needs paths (the folders to archive)")
            relative = [x for x in t["paths"] if not os.path.isabs(x)]
            if relative:
                fail(msg=f"{where}: paths must be absolute, got {relative[0]!r}")
            if t["databases"]:
                fail(msg=f"{where}: a files target takes paths, not databases")
        else:
            if t["paths"]:
                fail(msg=f"{where}: paths are for files targets; a {t['type']} target takes databases")
            bad = [d for d in t["databases"] if not d or d.startswith("-")]
            if bad:
                fail(msg=f"{where}: database name {bad[0]!r} is not valid")
        if t["format"] == "directory" and t["type"] != "postgresql":
            fail(msg=f"{where}: format directory is for postgresql targets only")
        if t["jobs"] < 1:
            fail(msg=f"{where}: jobs must be at least 1, got {t['jobs']}")
        if t["compress"] is not None and not 0 <= t["compress"] <= 9:
            fail(msg=f"{where}: compress must be 0-9, got {t['compress']}")
        if t["port"] is not None and not 0 < t["port"] < 65536:
            fail(msg=f"{where}: port {t['port']} is not between 1 and 65535")
        for key in ("keep_daily", "keep_weekly", "keep_monthly"):
            if t[key] is not None and t[key] < 0:
                fail(msg=f"{where}: {key} must be 0 or more, got {t[key]}")
    for key in ("keep_daily", "keep_weekly", "keep_monthly"):
        if p[key] < 0:
            fail(msg=f"{key} must be 0 or more, got {p[key]}")
    unknown = [n for n in p["only"] if n not in names]
    if unknown:
        fail(msg=f"only: no target named {unknown[0]!r} on this host (targets: {', '.join(names) or 'none'})")
    for index, s in enumerate(p["sets"]):
        if not NAME_RE.match(s["target"]) or not SET_ID_RE.match(s["set_id"]):
            fail(msg=f"sets[{index}]: {s['target']}/{s['set_id']} is not a target name and set id")
    if p["action"] == "restore":
        if not p["restore_to"] or p["restore_to"].startswith("-"):
            fail(msg="restore_to: name the database (or absolute folder, for files) to restore into")
        if len(p["sets"]) > 1 or (not p["sets"] and len(p["only"]) != 1):
            fail(msg="restore takes one set: give sets with one entry, or only with one target (its newest set)")
    if p["action"] == "copy" and not p["copy_to"]:
        fail(msg="copy_to: give the backup host (host, path)")
    if p["timeout"] < 1:
        fail(msg=f"timeout must be at least 1 second, got {p['timeout']}")


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    validate(module)
    umask = os.umask(0o077)  # sets are readable by their owner only: dumps hold personal data (R11)
    private = tempfile.mkdtemp(prefix="oaops-backup-")
    job = Job(module, private)
    try:
        payload = getattr(job, module.params["action"])()
    finally:
        shutil.rmtree(private, ignore_errors=True)
        os.umask(umask)
    if job.failures:
        module.fail_json(msg="; ".join(job.failures), changed=job.changed, oaops=payload)
    module.exit_json(changed=job.changed, oaops=payload)


if __name__ == "__main__":
    main()
