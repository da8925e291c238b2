#!/usr/bin/python
# Copyright (c) oaops contributors
# Apache License 2.0 (see pyproject.toml)
"""Gather every health check an OA host's maintenance layers need, in one call (R2, R3.1)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: oaops_probe
short_description: Gather the layered health checks of an OA host in one call
version_added: "0.1.0"
description:
  - Runs every health check that the listed maintenance layers need (regulation R2, R3.1) and
    returns them as one list under C(oaops), each check with its value, the thresholds applied
    and a status of C(ok), C(warning), C(critical) or C(unknown).
  - Reads C(/proc), calls C(os.statvfs), opens TCP, TLS and HTTP connections and runs the
    C(psql) or C(mariadb)/C(mysql) clients; the managed host needs only the Python standard library.
  - Never changes the host and always returns C(changed=false).
  - Independent network, database, TLS and HTTP probes run concurrently on a small pool of threads,
    each one bounded by O(timeout), so one slow peer does not hold up the others.
  - A listed layer with nothing configured gives one C(<layer>_configured) check with status
    C(unknown) that names the variable to set.
options:
  layers:
    description:
      - The maintenance layers to probe (regulation Art. 2).
    type: list
    elements: str
    choices: [hardware, network, os, database, middleware, application]
    default: [hardware, network, os, database, middleware, application]
  thresholds:
    description:
      - "Per-threshold overrides, C({name: {warning: N, critical: N}}); missing names or keys keep
        their defaults."
      - Names are C(load_per_cpu) (1-minute), C(load5_per_cpu), C(load15_per_cpu), C(memory_used_pct),
        C(swap_used_pct), C(disk_used_pct), C(inode_used_pct), C(failed_units), C(zombies),
        C(peer_latency_ms), C(dns_ms),
        C(db_connections_pct), C(db_replication_lag_s), C(cert_days_left), C(http_response_ms).
      - A higher value is worse for every name except C(cert_days_left), so warning must not be
        above critical (for C(cert_days_left), not below).
    type: dict
    default: {}
  network_peers:
    description: Peers whose TCP port must accept a connection (switches, firewalls, other tiers).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name shown as the check's target.
        type: str
        required: true
      host:
        description: Host name or address.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        required: true
  dns_names:
    description: Names that must resolve.
    type: list
    elements: str
    default: []
  databases:
    description: Database servers to check with their command-line client.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name shown as the check's target.
        type: str
        required: true
      type:
        description: Server kind; C(mysql) covers MariaDB too.
        type: str
        required: true
        choices: [postgresql, mysql]
      host:
        description: Host name, address, or (PostgreSQL) socket directory.
        type: str
        default: 127.0.0.1
      port:
        description: TCP port; 5432 for PostgreSQL and 3306 for MySQL when left out.
        type: int
      user:
        description: User; C(postgres) or C(root) when left out.
        type: str
      password:
        description: Password, handed over in C(PGPASSWORD) / C(MYSQL_PWD), never on the command line.
        type: str
      database:
        description: Database to connect to; C(postgres) for PostgreSQL when left out.
        type: str
      replica:
        description: Also check replication lag, and that the server is really replicating.
        type: bool
        default: false
  middleware:
    description: Middleware whose processes must run and whose ports must listen.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name shown as the check's target.
        type: str
        required: true
      type:
        description: C(nginx) also runs C(nginx -t).
        type: str
        default: process
        choices: [nginx, tomcat, process]
      process:
        description:
          - Regular expression searched in each process's command line.
          - Required for C(process); defaults to the master process for C(nginx) and the
            Catalina bootstrap class for C(tomcat).
        type: str
      ports:
        description: TCP ports that must be in LISTEN state on this host.
        type: list
        elements: int
        default: []
  tls_endpoints:
    description: TLS endpoints whose certificate expiry is checked.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name shown as the check's target.
        type: str
        required: true
      host:
        description: Host name or address to connect to.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        default: 443
      server_name:
        description: Name sent in SNI and checked against the certificate; O(tls_endpoints[].host) when left out.
        type: str
  http_endpoints:
    description: HTTP(S) pages of the OA application that must answer.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name shown as the check's target.
        type: str
        required: true
      url:
        description: C(http://) or C(https://) URL fetched with GET, redirects followed, proxies ignored.
        type: str
        required: true
      expect_status:
        description: Status code that counts as healthy.
        type: int
        default: 200
      expect_text:
        description: Text that must appear in the first MiB of the body.
        type: str
      validate_certs:
        description: Verify the server certificate of C(https://) URLs.
        type: bool
        default: true
  timeout:
    description: Seconds each probe may take (connect, query, handshake, request).
    type: int
    default: 5
  host:
    description:
      - The host's name in the inventory, for messages (the C(oa_health) role passes
        C(inventory_hostname)).
    type: str
  fail_on_critical:
    description:
      - Fail when any check is critical, naming each one; the checks are returned all the same.
        For gates such as the test before a restore (R13).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs the same way in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
  platform:
    support: full
    platforms: posix
    description: Linux only, since it reads C(/proc).
notes:
  - C(failed_units) is left out when PID 1 is not systemd.
  - PostgreSQL 10 or later is assumed for the replication query.
  - C(nginx -t) usually needs root to read certificates and logs; run with become where it does.
requirements:
  - Linux
  - psql for PostgreSQL targets; mariadb or mysql for MySQL and MariaDB targets
author:
  - oaops contributors
"""

EXAMPLES = r"""
- name: Probe the database layer of a PostgreSQL primary
  oaops_probe:
    layers: [hardware, os, database]
    databases:
      - name: oa_primary
        type: postgresql
        host: 127.0.0.1
        user: oaops_monitor
        password: "{{ vault_oaops_monitor_password }}"
    thresholds:
      disk_used_pct: {warning: 75, critical: 90}
  register: health

- name: Probe the OA login page
  oaops_probe:
    layers: [application]
    http_endpoints:
      - name: oa_login
        url: https://oa.example/login
        expect_text: OA
"""

RETURN = r"""
msg:
  description: A one-line count of the checks by status (the critical ones, when O(fail_on_critical) fails).
  returned: always
  type: str
  sample: "10 checks in 231 ms: 9 ok, 1 warning, 0 critical, 0 unknown"
oaops:
  description: The health payload.
  returned: always
  type: dict
  contains:
    kind:
      description: Always C(health).
      type: str
      returned: always
      sample: health
    probe_version:
      description: Version of this return contract.
      type: int
      returned: always
      sample: 1
    layers:
      description: The layers probed, in the order of regulation Art. 2.
      type: list
      elements: str
      returned: always
      sample: [hardware, os, database]
    duration_ms:
      description: Wall time of the whole probe.
      type: int
      returned: always
      sample: 231
    checks:
      description: One entry per check and target.
      type: list
      elements: dict
      returned: always
      contains:
        layer:
          description: hardware, network, os, database, middleware or application.
          type: str
        name:
          description: Stable check name, for example C(disk_used_pct) or C(db_up).
          type: str
        target:
          description:
            - Mount point, peer, DNS name, database, C(<middleware>) or C(<middleware>:<port>),
              endpoint, or empty.
          type: str
        value:
          description: Measured number, or null when it could not be measured.
          type: raw
        unit:
          description: One of C(%), C(ms), C(s), C(days), C(count), C(per_cpu), C(MB) (MiB), or empty.
          type: str
        warning:
          description: Warning threshold applied, or null when the check has none.
          type: raw
        critical:
          description: Critical threshold applied, or null when the check has none.
          type: raw
        status:
          description: ok, warning, critical or unknown.
          type: str
        detail:
          description: One line saying what was observed, or the error.
          type: str
      sample:
        - layer: database
          name: db_up
          target: oa_primary
          value: 1
          unit: ""
          warning: null
          critical: null
          status: ok
          detail: accepting connections as postgres@127.0.0.1:5432/postgres (41 ms)
"""

import ctypes
import ctypes.util
import datetime
import os
import re
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request

from ansible.module_utils.basic import AnsibleModule

PROBE_VERSION = 1
LAYERS = ("hardware", "network", "os", "database", "middleware", "application")
STATUSES = ("ok", "warning", "critical", "unknown")

# name -> (warning, critical, higher_is_worse). roles/oa_health/defaults/main.yml is the source
# of truth; tests/content/test_module.py keeps this copy equal to it, for ad hoc use.
THRESHOLDS = {
    # load averages per CPU over 1, 5 and 15 minutes: the longer the average, the lower the bar
    # (a spike of an install is normal, a quarter of an hour of queueing is not)
    "load_per_cpu": (2.0, 4.0, True),
    "load5_per_cpu": (1.5, 3.0, True),
    "load15_per_cpu": (1.0, 2.0, True),
    "memory_used_pct": (85, 95, True),
    "swap_used_pct": (50, 80, True),
    "disk_used_pct": (80, 90, True),
    "inode_used_pct": (80, 90, True),
    "failed_units": (1, 5, True),
    "zombies": (5, 20, True),
    "peer_latency_ms": (100, 500, True),
    "dns_ms": (200, 1000, True),
    "db_connections_pct": (80, 95, True),
    "db_replication_lag_s": (30, 300, True),
    "cert_days_left": (30, 7, False),
    "http_response_ms": (1000, 3000, True),
}

LOAD_CHECKS = {"load_per_cpu": 1, "load5_per_cpu": 5, "load15_per_cpu": 15}

# What to set when a layer is listed but nothing is configured for it.
UNCONFIGURED = {
    "network": "no network targets: set oa_health_network_peers or oa_health_dns_names",
    "database": "no database targets: set oa_health_databases",
    "middleware": "no middleware targets: set oa_health_middleware or oa_health_tls_endpoints",
    "application": "no application targets: set oa_health_http_endpoints",
}

# Filesystems that hold no data of their own, or are full by design (images): no disk checks.
PSEUDO_FS = frozenset((
    "autofs", "binfmt_misc", "bpf", "configfs", "debugfs", "devpts", "devtmpfs", "efivarfs",
    "fuse.gvfsd-fuse", "fuse.lxcfs", "fuse.portal", "fuse.snapfuse", "fusectl", "hugetlbfs",
    "iso9660", "mqueue", "nfsd", "nsfs", "proc", "pstore", "ramfs", "rpc_pipefs", "securityfs",
    "selinuxfs", "squashfs", "sysfs", "tmpfs", "tracefs", "udf",
))
# Remote filesystems: a stat can hang on a dead server, so these skip the up-front stat.
REMOTE_FS = frozenset(("9p", "ceph", "cifs", "fuse.sshfs", "glusterfs", "lustre", "nfs", "nfs4", "smb3", "smbfs"))

DEFAULT_PROCESS = {"nginx": r"nginx: master process", "tomcat": r"org\.apache\.catalina\.startup\.Bootstrap"}
DB_DEFAULTS = {"postgresql": (5432, "postgres", "postgres"), "mysql": (3306, "root", None)}
MAX_BODY = 1024 * 1024
MIB = 1024.0 * 1024
WORKERS = 8
TCP_LISTEN = "0A"

PG_SQL = (
    "SELECT 'version', version();\n"
    "SELECT 'connections', (SELECT sum(numbackends) FROM pg_stat_database), current_setting('max_connections');\n"
    "SELECT 'size_bytes', sum(pg_database_size(oid)) FROM pg_database"
    " WHERE has_database_privilege(oid, 'CONNECT');\n"
)
# Lag is 0 when everything received has been replayed: an idle primary must not look like lag.
PG_REPLICA_SQL = (
    "SELECT 'replica', pg_is_in_recovery(), CASE WHEN NOT pg_is_in_recovery() THEN NULL"
    " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    " ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END;\n"
)
MYSQL_SQL = (
    "SELECT 'version' AS probe, VERSION() AS value; "
    "SHOW GLOBAL STATUS LIKE 'Threads_connected'; "
    "SHOW GLOBAL VARIABLES LIKE 'max_connections'; "
    "SELECT 'size_bytes' AS probe, COALESCE(SUM(data_length + index_length), 0) AS value"
    " FROM information_schema.tables; "
)
# Old servers know only the SLAVE spelling and MySQL 8.4 only the REPLICA one: ask both (--force).
MYSQL_REPLICA_SQL = "SHOW REPLICA STATUS; SHOW SLAVE STATUS; "


# ---------------------------------------------------------------- check records


def _num(value):
    """Return a JSON-friendly number: floats rounded to 2 places, integral floats as ints."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        value = round(value, 2)
        if value.is_integer():
            return int(value)
    return value


def check(layer, name, target, value, unit, status, detail, warning=None, critical=None):
    return {
        "layer": layer, "name": name, "target": target, "value": _num(value), "unit": unit,
        "warning": _num(warning), "critical": _num(critical), "status": status, "detail": detail,
    }


def classify(value, warning, critical, higher_is_worse=True):
    if value is None:
        return "unknown"
    if higher_is_worse:
        if value >= critical:
            return "critical"
        return "warning" if value >= warning else "ok"
    if value <= critical:
        return "critical"
    return "warning" if value <= warning else "ok"


def _error_text(exc):
    if isinstance(exc, socket.timeout):
        return "no answer (timed out)"
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return _error_text(exc.reason) if isinstance(exc.reason, BaseException) else str(exc.reason)
    return str(exc) or type(exc).__name__


def _first_lines(text, limit=300):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return " ".join(lines)[:limit] or "no output"


class Job:
    """One bounded unit of probing; `fallback(reason)` gives its checks when it fails or overruns."""

    __slots__ = ("budget", "fallback", "run")

    def __init__(self, run, fallback, budget):
        self.run, self.fallback, self.budget = run, fallback, budget


def fallback_for(layer, names, target, status="unknown"):
    """Checks to report when a job raised or overran: one per (name, unit)."""
    def build(reason):
        return [check(layer, name, target, None, unit, status, reason) for name, unit in names]
    return build


def run_jobs(jobs, workers=WORKERS):
    """Run jobs on at most `workers` daemon threads and return their checks in job order.

    Daemon threads rather than concurrent.futures: a call that ignores its own timeout (getaddrinfo,
    statvfs on a dead NFS server) is abandoned at its deadline instead of holding the module at exit.
    """
    results = [None] * len(jobs)
    abandoned = set()
    cond = threading.Condition()

    def work(index, job):
        try:
            out = job.run()
        except Exception as exc:  # a bug or an odd host must cost one check, not the whole probe
            out = job.fallback(f"probe error: {type(exc).__name__}: {exc}")
        with cond:
            if index not in abandoned:
                results[index] = out
            cond.notify_all()

    waiting = list(range(len(jobs)))
    running = {}  # index -> deadline
    with cond:
        while waiting or running:
            while waiting and len(running) < workers:
                index = waiting.pop(0)
                threading.Thread(target=work, args=(index, jobs[index]), daemon=True).start()
                running[index] = time.monotonic() + jobs[index].budget
            now = time.monotonic()
            for index, deadline in list(running.items()):
                if results[index] is not None:
                    del running[index]
                elif now >= deadline:
                    abandoned.add(index)
                    results[index] = jobs[index].fallback(f"no answer within {jobs[index].budget} s")
                    del running[index]
            if running and (not waiting or len(running) >= workers):
                cond.wait(max(0.01, min(running.values()) - time.monotonic()))
    return [item for out in results for item in out]


# ---------------------------------------------------------------- host readers


def read_meminfo():
    info = {}
    with open("/proc/meminfo") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            fields = rest.split()
            if fields:
                info[key] = int(fields[0]) * 1024
    return info


def _unescape_mount(field):
    """/proc/self/mounts writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def read_mounts():
    """Real mounts as (mount point, fstype, source), one per local filesystem."""
    mounts, seen = [], set()
    with open("/proc/self/mounts") as handle:
        lines = handle.read().splitlines()
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        source, point, fstype = (_unescape_mount(field) for field in fields[:3])
        if fstype in PSEUDO_FS or fstype.startswith("cgroup"):
            continue
        if fstype not in REMOTE_FS:
            try:
                stat = os.stat(point)
            except OSError:
                continue
            # File bind mounts (/etc/hosts in containers) and repeated binds repeat a filesystem.
            if not os.path.isdir(point) or stat.st_dev in seen:
                continue
            seen.add(stat.st_dev)
        mounts.append((point, fstype, source))
    return mounts


def read_processes():
    """(pid, ppid, state, cmdline) of every process; kernel threads have an empty cmdline."""
    procs = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read().decode("utf-8", "replace")
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").strip().decode("utf-8", "replace")
        except OSError:
            continue  # the process ended between listdir and open
        fields = stat[stat.rfind(")") + 2:].split()  # the command name may contain spaces and ")"
        procs.append((int(entry), int(fields[1]), fields[0], cmdline))
    return procs


def _proc_net_address(text):
    """Decode a /proc/net/tcp{,6} address: hex, each 32-bit word in host byte order."""
    raw = bytes.fromhex(text)
    if sys.byteorder == "little":
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def read_listening_ports():
    """port -> sorted "address:port" strings of the TCP sockets in LISTEN state."""
    ports = {}
    for path, brackets in (("/proc/net/tcp", "{}:{}"), ("/proc/net/tcp6", "[{}]:{}")):
        try:
            with open(path) as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue  # no IPv6 on this host
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == TCP_LISTEN:
                address, port_hex = fields[1].split(":")
                port = int(port_hex, 16)
                ports.setdefault(port, set()).add(brackets.format(_proc_net_address(address), port))
    return {port: sorted(addresses) for port, addresses in ports.items()}


def _der_items(data, start, end):
    """Yield (tag, content start, content end) for each DER element in data[start:end]."""
    pos = start
    while pos < end:
        tag, length = data[pos], data[pos + 1]
        pos += 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(data[pos:pos + count], "big")
            pos += count
        yield tag, pos, pos + length
        pos += length


def cert_not_after(der):
    """notAfter of a DER certificate; the ssl module parses no certificate it has not verified."""
    _, start, end = next(_der_items(der, 0, len(der)))
    _, start, end = next(_der_items(der, start, end))  # tbsCertificate
    fields = list(_der_items(der, start, end))
    if fields[0][0] == 0xA0:  # explicit version tag
        fields = fields[1:]
    _, start, end = fields[3]  # after serial, signature and issuer comes validity
    tag, start, end = list(_der_items(der, start, end))[1]
    text = der[start:end].decode("ascii").rstrip("Z")
    if tag == 0x17:  # UTCTime: two-digit year, 50-99 meaning 19xx (RFC 5280)
        text = ("19" if int(text[:2]) >= 50 else "20") + text
    stamp = datetime.datetime.strptime(text[:14], "%Y%m%d%H%M%S")
    return stamp.replace(tzinfo=datetime.timezone.utc)


class Timex(ctypes.Structure):
    # Leading fields of struct timex; the tail is room for the kernel to write the rest.
    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 256),
    ]


def kernel_clock_synced():
    """(synced, detail) from adjtimex(2) with modes=0, which only reads; None when unavailable."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    timex = Timex()
    state = ctypes.CDLL(libc_name, use_errno=True).adjtimex(ctypes.byref(timex))
    if state < 0:
        return None
    unsync = bool(timex.status & 0x40)  # STA_UNSYNC
    synced = state != 5 and not unsync  # 5 is TIME_ERROR
    detail = f"kernel adjtimex: clock state {state}{' (TIME_ERROR)' if state == 5 else ''}"
    detail += f", max error {timex.maxerror} us{', STA_UNSYNC set' if unsync else ''}"
    return synced, detail


def _duration(seconds):
    days, rest = divmod(int(seconds), 86400)
    return f"{days} d {rest // 3600:02d}:{rest % 3600 // 60:02d}"


def _parse_vertical(text):
    """Rows of `mariadb -E` output as dicts; continuation lines belong to the previous field."""
    rows, row, key = [], None, None
    for line in text.splitlines():
        if line.startswith("*" * 10):
            row, key = {}, None
            rows.append(row)
            continue
        match = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*): ?(.*)$", line)
        if row is not None and match:
            key = match.group(1)
            row[key] = match.group(2)
        elif row is not None and key:
            row[key] += "\n" + line
    return rows


# ---------------------------------------------------------------- parameters


def _number(value):
    if isinstance(value, bool):
        raise ValueError
    return float(value)


def resolve_thresholds(module):
    """Defaults overlaid with `thresholds`, checked for names, numbers and order."""
    given = module.params["thresholds"] or {}
    for name in sorted(given):
        if name not in THRESHOLDS:
            module.fail_json(msg=f"thresholds: unknown check name {name!r}; use one of: {', '.join(THRESHOLDS)}")
    resolved = {}
    for name, (warning, critical, higher) in THRESHOLDS.items():
        entry = given.get(name) or {}
        extra = set(entry) - {"warning", "critical"} if isinstance(entry, dict) else {"(not a dict)"}
        if extra:
            module.fail_json(msg=f"thresholds.{name}: only the keys warning and critical are allowed, "
                                 f"got {', '.join(sorted(map(str, extra)))}")
        try:
            warning = _number(entry.get("warning", warning))
            critical = _number(entry.get("critical", critical))
        except (TypeError, ValueError):
            module.fail_json(msg=f"thresholds.{name}: warning and critical must be numbers, got {entry!r}")
        if (higher and warning > critical) or (not higher and warning < critical):
            worse, order = ("higher", "<=") if higher else ("lower", ">=")
            module.fail_json(msg=(
                f"thresholds.{name}: warning {_num(warning)} is {'above' if higher else 'below'} critical "
                f"{_num(critical)}, but a {worse} value is worse for this check; set warning {order} critical "
                f"(role variables oa_health_{name}_warning and oa_health_{name}_critical)"))
        resolved[name] = (warning, critical, higher)
    return resolved


def validate(module):
    """Fail on what the argument spec cannot check; return the resolved thresholds."""
    params = module.params
    if params["timeout"] < 1:
        module.fail_json(msg=f"timeout: must be at least 1 second, got {params['timeout']}")
    for index, item in enumerate(params["middleware"]):
        where = f"middleware[{index}] ({item['name']})"
        pattern = item["process"] or DEFAULT_PROCESS.get(item["type"])
        if not pattern:
            module.fail_json(msg=f"{where}: type process needs `process`, a regular expression searched "
                                 "in process command lines")
        try:
            re.compile(pattern)
        except re.error as exc:
            module.fail_json(msg=f"{where}: process {pattern!r} is not a valid regular expression: {exc}")
    for key in ("network_peers", "databases", "tls_endpoints", "middleware"):
        for index, item in enumerate(params[key]):
            for port in item.get("ports") or [item.get("port")]:
                if port is not None and not 0 < port < 65536:
                    module.fail_json(msg=f"{key}[{index}] ({item['name']}): port {port} is not between 1 and 65535")
    for index, item in enumerate(params["http_endpoints"]):
        if not re.match(r"^https?://", item["url"]):
            module.fail_json(msg=f"http_endpoints[{index}] ({item['name']}): url {item['url']!r} must start "
                                 "with http:// or https://")
    return resolve_thresholds(module)


# ---------------------------------------------------------------- the probe


class Probe:
    def __init__(self, module, thresholds):
        self.module = module
        self.params = module.params
        self.thresholds = thresholds
        self.timeout = module.params["timeout"]
        self.timeout_bin = module.get_bin_path("timeout")
        self._procs = None
        self._procs_lock = threading.Lock()

    # ---- helpers

    def measured(self, layer, name, target, value, unit, key, detail):
        warning, critical, higher = self.thresholds[key]
        status = classify(value, warning, critical, higher)
        return check(layer, name, target, value, unit, status, detail, warning, critical)

    def failed(self, layer, name, target, unit, key, detail, status="critical"):
        """A measurement that could not be taken, keeping the thresholds it would have had."""
        warning, critical, _ = self.thresholds[key]
        return check(layer, name, target, None, unit, status, detail, warning, critical)

    def command(self, args, seconds, env=None, data=None):
        """run_command bounded by coreutils timeout, since run_command itself has no timeout."""
        if self.timeout_bin:
            args = [self.timeout_bin, "-k", "2", str(seconds), *args]
        rc, out, err = self.module.run_command(args, environ_update=env or {}, data=data,
                                               expand_user_and_vars=False)
        if rc == 124 and self.timeout_bin:
            err = f"no answer within {seconds} s"
        return rc, out, err

    def processes(self):
        with self._procs_lock:
            if self._procs is None:
                self._procs = read_processes()
            return self._procs

    def own_lineage(self):
        """This module and its ancestors, whose command lines may contain the patterns searched for."""
        parents = {pid: ppid for pid, ppid, _, _ in self.processes()}
        lineage, pid = set(), os.getpid()
        while pid and pid not in lineage:
            lineage.add(pid)
            pid = parents.get(pid, 0)
        return lineage

    def jobs(self, layers):
        builders = {
            "hardware": self.hardware_jobs, "network": self.network_jobs, "os": self.os_jobs,
            "database": self.database_jobs, "middleware": self.middleware_jobs,
            "application": self.application_jobs,
        }
        jobs = []
        for layer in layers:
            layer_jobs = builders[layer]()
            if not layer_jobs:
                checks = [check(layer, f"{layer}_configured", "", None, "", "unknown", UNCONFIGURED[layer])]
                layer_jobs = [Job(lambda checks=checks: checks, fallback_for(layer, [], ""), self.timeout)]
            jobs.extend(layer_jobs)
        return jobs

    # ---- hardware

    def hardware_jobs(self):
        jobs = [
            Job(self.load_checks, fallback_for("hardware", [(name, "per_cpu") for name in LOAD_CHECKS], ""),
                self.timeout),
            Job(self.memory_checks, fallback_for("hardware", [("memory_used_pct", "%"), ("swap_used_pct", "%")], ""),
                self.timeout),
        ]
        for point, fstype, source in read_mounts():
            jobs.append(Job(lambda p=point, f=fstype, s=source: self.filesystem_checks(p, f, s),
                            fallback_for("hardware", [("disk_used_pct", "%"), ("inode_used_pct", "%")], point),
                            self.timeout))
        return jobs

    def load_checks(self, loadavg=None, cpus=None):
        """The 1-, 5- and 15-minute load averages per CPU, each judged by its own thresholds."""
        loads = os.getloadavg() if loadavg is None else loadavg
        cpus = cpus or os.cpu_count() or 1
        return [self.measured("hardware", name, "", load / cpus, "per_cpu", name,
                              f"{minutes}-minute load {load:.2f} on {cpus} CPUs")
                for (name, minutes), load in zip(LOAD_CHECKS.items(), loads)]

    def memory_checks(self):
        info = read_meminfo()
        total = info["MemTotal"]
        # Kernels before 3.14 have no MemAvailable; free memory plus page cache is the usual stand-in.
        available = info.get("MemAvailable", info.get("MemFree", 0) + info.get("Buffers", 0) + info.get("Cached", 0))
        used = total - available
        detail = f"{used / MIB:.0f} MB used of {total / MIB:.0f} MB, {available / MIB:.0f} MB available"
        pct = 100.0 * used / total
        checks = [self.measured("hardware", "memory_used_pct", "", pct, "%", "memory_used_pct", detail)]
        swap_total, swap_free = info.get("SwapTotal", 0), info.get("SwapFree", 0)
        if swap_total:
            swap_used = swap_total - swap_free
            checks.append(self.measured("hardware", "swap_used_pct", "", 100.0 * swap_used / swap_total, "%",
                                        "swap_used_pct",
                                        f"{swap_used / MIB:.0f} MB of {swap_total / MIB:.0f} MB used"))
        else:
            checks.append(self.measured("hardware", "swap_used_pct", "", 0, "%", "swap_used_pct", "no swap"))
        return checks

    def filesystem_checks(self, point, fstype, source):
        st = os.statvfs(point)
        if not st.f_blocks:
            return []
        used = st.f_blocks - st.f_bfree
        # As df does: blocks reserved for root count as neither used nor available.
        pct = 100.0 * used / (used + st.f_bavail) if used + st.f_bavail else 0.0
        gib = 1024.0 ** 3 / st.f_frsize
        detail = f"{used / gib:.1f} GB used, {st.f_bavail / gib:.1f} GB available ({fstype} on {source})"
        checks = [self.measured("hardware", "disk_used_pct", point, pct, "%", "disk_used_pct", detail)]
        if st.f_files:
            inodes_used = st.f_files - st.f_ffree
            checks.append(self.measured("hardware", "inode_used_pct", point, 100.0 * inodes_used / st.f_files, "%",
                                        "inode_used_pct", f"{inodes_used} of {st.f_files} inodes used"))
        return checks

    # ---- network

    def network_jobs(self):
        jobs = []
        for peer in self.params["network_peers"]:
            jobs.append(Job(lambda p=peer: [self.peer_check(p)], lambda reason, p=peer: [
                self.failed("network", "peer_reachable", p["name"], "ms", "peer_latency_ms", reason)],
                self.timeout + 1))
        for name in self.params["dns_names"]:
            jobs.append(Job(lambda n=name: [self.dns_check(n)], lambda reason, n=name: [
                self.failed("network", "dns_resolve", n, "ms", "dns_ms", reason)], self.timeout + 1))
        return jobs

    def peer_check(self, peer):
        where = f"{peer['host']}:{peer['port']}"
        start = time.monotonic()
        try:
            socket.create_connection((peer["host"], peer["port"]), timeout=self.timeout).close()
        except OSError as exc:
            return self.failed("network", "peer_reachable", peer["name"], "ms", "peer_latency_ms",
                               f"TCP connect to {where} failed: {_error_text(exc)}")
        elapsed = (time.monotonic() - start) * 1000
        return self.measured("network", "peer_reachable", peer["name"], elapsed, "ms", "peer_latency_ms",
                             f"TCP connect to {where} in {elapsed:.1f} ms")

    def dns_check(self, name):
        start = time.monotonic()
        try:
            infos = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)
        except OSError as exc:
            return self.failed("network", "dns_resolve", name, "ms", "dns_ms",
                               f"{name} does not resolve: {_error_text(exc)}")
        elapsed = (time.monotonic() - start) * 1000
        addresses = ", ".join(sorted({info[4][0] for info in infos})[:4])
        return self.measured("network", "dns_resolve", name, elapsed, "ms", "dns_ms",
                             f"{name} resolves to {addresses} in {elapsed:.1f} ms")

    # ---- os

    def os_jobs(self):
        jobs = [
            Job(self.uptime_check, fallback_for("os", [("uptime", "s")], ""), self.timeout),
            Job(self.clock_check, fallback_for("os", [("clock_sync", "")], ""), 3 * self.timeout + 2),
        ]
        if self.systemd_is_init():
            jobs.append(Job(self.failed_units_check, fallback_for("os", [("failed_units", "count")], ""),
                            self.timeout + 1))
        jobs.append(Job(self.zombie_check, fallback_for("os", [("zombies", "count")], ""), self.timeout))
        return jobs

    @staticmethod
    def systemd_is_init():
        try:
            with open("/proc/1/comm") as handle:
                return handle.read().strip() == "systemd"
        except OSError:
            return False

    def uptime_check(self):
        with open("/proc/uptime") as handle:
            seconds = float(handle.read().split()[0])
        return [check("os", "uptime", "", int(seconds), "s", "ok", f"up {_duration(seconds)}")]

    def clock_check(self):
        synced, detail = self.clock_state()
        if synced is None:
            return [check("os", "clock_sync", "", None, "", "unknown", detail)]
        return [check("os", "clock_sync", "", int(synced), "", "ok" if synced else "warning", detail)]

    def clock_state(self):
        """(synced or None, detail): the time daemons first, the kernel's own flag last."""
        timedatectl = self.systemd_is_init() and self.module.get_bin_path("timedatectl")
        if timedatectl:
            rc, out, _ = self.command([timedatectl, "show", "-p", "NTPSynchronized", "--value"], self.timeout)
            if rc == 0 and out.strip() in ("yes", "no"):
                return out.strip() == "yes", f"timedatectl: NTPSynchronized={out.strip()}"
        chronyc = self.module.get_bin_path("chronyc")
        if chronyc:
            rc, out, _ = self.command([chronyc, "-n", "tracking"], self.timeout)
            pairs = (line.partition(":") for line in out.splitlines())
            fields = {key.strip(): value.strip() for key, _, value in pairs}
            leap = fields.get("Leap status", "")
            if rc == 0 and leap:
                return leap != "Not synchronised", f"chronyc: leap status {leap}"
        ntpq = self.module.get_bin_path("ntpq")
        if ntpq:
            rc, out, _ = self.command([ntpq, "-pn"], self.timeout)
            if rc == 0 and "remote" in out:
                peers = [line.split()[0][1:] for line in out.splitlines() if line.startswith("*")]
                return bool(peers), f"ntpq: system peer {peers[0]}" if peers else "ntpq: no system peer selected"
        kernel = kernel_clock_synced()
        if kernel is not None:
            return kernel
        if os.path.exists("/run/systemd/timesync/synchronized"):
            return True, "systemd-timesyncd: /run/systemd/timesync/synchronized exists"
        return None, "cannot tell: no timedatectl, chronyc or ntpq answered, and adjtimex is unavailable"

    def failed_units_check(self):
        systemctl = self.module.get_bin_path("systemctl")
        if not systemctl:
            return [self.failed("os", "failed_units", "", "count", "failed_units", "systemctl not found", "unknown")]
        rc, out, err = self.command(
            [systemctl, "list-units", "--state=failed", "--plain", "--no-legend", "--no-pager"], self.timeout)
        if rc != 0:
            return [self.failed("os", "failed_units", "", "count", "failed_units",
                                f"systemctl failed: {_first_lines(err)}", "unknown")]
        units = [line.split()[0] for line in out.splitlines() if line.strip()]
        more = f" and {len(units) - 5} more" if len(units) > 5 else ""
        detail = f"failed: {', '.join(units[:5])}{more}" if units else "no failed units"
        return [self.measured("os", "failed_units", "", len(units), "count", "failed_units", detail)]

    def zombie_check(self):
        zombies = [(pid, ppid) for pid, ppid, state, _ in self.processes() if state == "Z"]
        detail = "no zombie processes"
        if zombies:
            pids = ", ".join(str(pid) for pid, _ in zombies[:5])
            parents = ", ".join(sorted({str(ppid) for _, ppid in zombies})[:5])
            detail = f"zombie pids {pids} (parents {parents})"
        return [self.measured("os", "zombies", "", len(zombies), "count", "zombies", detail)]

    # ---- database

    def database_jobs(self):
        return [Job(lambda d=db: self.database_checks(d),
                    lambda reason, d=db: self.database_result(d, {"up": False, "error": reason}),
                    2 * self.timeout + 3)
                for db in self.params["databases"]]

    def database_checks(self, db):
        port, user, database = DB_DEFAULTS[db["type"]]
        db = dict(db, port=db["port"] or port, user=db["user"] or user, database=db["database"] or database)
        if db["type"] == "postgresql":
            client = self.module.get_bin_path("psql")
        else:
            client = self.module.get_bin_path("mariadb") or self.module.get_bin_path("mysql")
        if not client:
            facts = self.port_only_facts(db)
        elif db["type"] == "postgresql":
            facts = self.postgresql_facts(db, client)
        else:
            facts = self.mysql_facts(db, client)
        return self.database_result(db, facts)

    def port_only_facts(self, db):
        """Without a client the port still tells a closed server from an open one."""
        client = "psql (PostgreSQL client)" if db["type"] == "postgresql" else "mariadb or mysql client"
        if db["host"].startswith("/"):
            return {"up": None, "error": f"{client} not installed on this host"}
        try:
            socket.create_connection((db["host"], db["port"]), timeout=self.timeout).close()
        except OSError as exc:
            return {"up": False, "error": f"TCP connect to {db['host']}:{db['port']} failed: {_error_text(exc)}"}
        return {"up": None, "error": f"port {db['port']} is open, but no {client} is installed on this host to log in"}

    def postgresql_facts(self, db, client):
        env = {
            "PGCONNECT_TIMEOUT": str(max(2, self.timeout)), "PGAPPNAME": "oaops_probe",
            "PGOPTIONS": f"-c statement_timeout={self.timeout * 1000}",
        }
        if db["password"]:
            env["PGPASSWORD"] = db["password"]
        args = [client, "-X", "-At", "-F|", "-q", "-w", "-v", "ON_ERROR_STOP=1", "-h", db["host"],
                "-p", str(db["port"]), "-U", db["user"], "-d", db["database"], "-f", "-"]
        start = time.monotonic()
        rc, out, err = self.command(args, 2 * self.timeout + 1, env=env,
                                    data=PG_SQL + (PG_REPLICA_SQL if db["replica"] else ""))
        rows = {}
        for line in out.splitlines():
            tag, _, rest = line.partition("|")
            rows[tag] = rest.split("|")
        if "version" not in rows:
            return {"up": False, "error": _first_lines(err if rc else out)}
        facts = {
            "up": True, "ms": (time.monotonic() - start) * 1000, "version": rows["version"][0],
            "where": f"{db['user']}@{db['host']}:{db['port']}/{db['database']}",
            "error": _first_lines(err) if rc else "",
        }
        if "connections" in rows:
            facts["connections"], facts["max_connections"] = int(rows["connections"][0]), int(rows["connections"][1])
        if rows.get("size_bytes", [""])[0]:
            facts["size_bytes"] = int(rows["size_bytes"][0])
        if db["replica"] and "replica" in rows:
            in_recovery, lag = rows["replica"][0], rows["replica"][1]
            if in_recovery != "t":
                facts["replica"] = ("critical", "configured as a replica, but pg_is_in_recovery() is false: "
                                                "it is not replicating (promoted?)")
            elif lag == "":
                facts["replica"] = ("unknown", "in recovery, but no transaction has been replayed yet")
            else:
                facts["lag_s"] = float(lag)
        return facts

    def mysql_facts(self, db, client):
        env = {"MYSQL_PWD": db["password"]} if db["password"] else {}
        # -E prints "column: value" rows, so SHOW REPLICA STATUS parses by name, not by position.
        args = [client, "-B", "-E", "--force", f"--connect-timeout={self.timeout}", "-h", db["host"],
                "-P", str(db["port"]), "-u", db["user"]]
        if db["database"]:
            args += ["-D", db["database"]]
        args += ["-e", MYSQL_SQL + (MYSQL_REPLICA_SQL if db["replica"] else "")]
        start = time.monotonic()
        rc, out, err = self.command(args, 2 * self.timeout + 1, env=env)
        rows = _parse_vertical(out)
        values = {row["probe"]: row.get("value") for row in rows if "probe" in row}
        values.update({row["Variable_name"]: row.get("Value") for row in rows if "Variable_name" in row})
        if "version" not in values:
            return {"up": False, "error": _first_lines(err if rc else out)}
        facts = {
            "up": True, "ms": (time.monotonic() - start) * 1000, "version": values["version"],
            "where": f"{db['user']}@{db['host']}:{db['port']}", "error": _first_lines(err) if rc else "",
        }
        if values.get("Threads_connected") and values.get("max_connections"):
            facts["connections"] = int(values["Threads_connected"])
            facts["max_connections"] = int(values["max_connections"])
        if values.get("size_bytes"):
            facts["size_bytes"] = int(values["size_bytes"])
        if db["replica"]:
            facts.update(self.mysql_replica(rows))
        return facts

    @staticmethod
    def mysql_replica(rows):
        status = next((row for row in rows if "Slave_IO_Running" in row or "Replica_IO_Running" in row), None)
        if status is None:
            return {"replica": ("critical", "configured as a replica, but SHOW REPLICA STATUS is empty: "
                                            "it is not replicating")}
        io = status.get("Slave_IO_Running", status.get("Replica_IO_Running"))
        sql = status.get("Slave_SQL_Running", status.get("Replica_SQL_Running"))
        lag = status.get("Seconds_Behind_Master", status.get("Seconds_Behind_Source"))
        if io != "Yes" or sql != "Yes" or lag in (None, "", "NULL"):
            error = status.get("Last_IO_Error") or status.get("Last_SQL_Error") or status.get("Last_Error") or ""
            return {"replica": ("critical", f"replication stopped: IO thread {io}, SQL thread {sql}"
                                            + (f"; last error: {error}" if error else ""))}
        return {"lag_s": float(lag)}

    def database_result(self, db, facts):
        name, layer = db["name"], "database"
        if facts["up"]:
            checks = [check(layer, "db_up", name, 1, "", "ok",
                            f"accepting connections as {facts['where']} ({facts['ms']:.0f} ms)"),
                      check(layer, "db_version", name, None, "", "ok", facts["version"])]
        else:
            down = facts["up"] is False
            checks = [check(layer, "db_up", name, 0 if down else None, "", "critical" if down else "unknown",
                            facts["error"])]
            facts = dict(facts, error="not checked: " + (
                "the database is not accepting connections" if down else facts["error"]))
            checks.append(check(layer, "db_version", name, None, "", "unknown", facts["error"]))
        why = facts["error"] or "the query gave no answer"
        if "connections" in facts:
            used, limit = facts["connections"], facts["max_connections"]
            checks.append(self.measured(layer, "db_connections_pct", name, 100.0 * used / limit if limit else 0.0,
                                        "%", "db_connections_pct", f"{used} of {limit} connections in use"))
        else:
            checks.append(self.failed(layer, "db_connections_pct", name, "%", "db_connections_pct", why, "unknown"))
        if db["replica"]:
            if "lag_s" in facts:
                checks.append(self.measured(layer, "db_replication_lag_s", name, facts["lag_s"], "s",
                                            "db_replication_lag_s", f"replica is {facts['lag_s']:.1f} s behind"))
            else:
                status, detail = facts.get("replica", ("unknown", why))
                checks.append(self.failed(layer, "db_replication_lag_s", name, "s", "db_replication_lag_s",
                                          detail, status))
        if "size_bytes" in facts:
            size_mb = facts["size_bytes"] / MIB
            checks.append(check(layer, "db_size_mb", name, size_mb, "MB", "ok",
                                f"{size_mb:.1f} MB in all databases the user can see"))
        else:
            checks.append(check(layer, "db_size_mb", name, None, "MB", "unknown", why))
        return checks

    # ---- middleware

    def middleware_jobs(self):
        jobs = []
        for item in self.params["middleware"]:
            jobs.append(Job(lambda i=item: self.middleware_checks(i),
                            fallback_for("middleware", [("process_running", "count")], item["name"]), self.timeout))
            if item["type"] == "nginx":
                jobs.append(Job(lambda i=item: [self.nginx_check(i)],
                                fallback_for("middleware", [("nginx_config_test", "")], item["name"], "critical"),
                                self.timeout + 3))
        for endpoint in self.params["tls_endpoints"]:
            jobs.append(Job(lambda e=endpoint: [self.tls_check(e)], lambda reason, e=endpoint: [
                self.failed("middleware", "cert_days_left", e["name"], "days", "cert_days_left", reason)],
                2 * self.timeout + 1))
        return jobs

    def middleware_checks(self, item):
        pattern = item["process"] or DEFAULT_PROCESS[item["type"]]
        regex = re.compile(pattern)
        lineage = self.own_lineage()
        pids = sorted(pid for pid, _, state, cmdline in self.processes()
                      if cmdline and state != "Z" and pid not in lineage and regex.search(cmdline))
        if pids:
            verb = "process matches" if len(pids) == 1 else "processes match"
            detail = f"{len(pids)} {verb} {pattern!r} (pids {', '.join(map(str, pids[:5]))})"
        else:
            detail = f"no process matches {pattern!r}"
        checks = [check("middleware", "process_running", item["name"], len(pids), "count",
                        "ok" if pids else "critical", detail)]
        listening = read_listening_ports() if item["ports"] else {}
        for port in item["ports"]:
            addresses = listening.get(port)
            detail = f"listening on {', '.join(addresses)}" if addresses else f"nothing listens on TCP port {port}"
            checks.append(check("middleware", "port_listening", f"{item['name']}:{port}", int(bool(addresses)), "",
                                "ok" if addresses else "critical", detail))
        return checks

    def nginx_check(self, item):
        nginx = self.module.get_bin_path("nginx", opt_dirs=["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"])
        if not nginx:
            return check("middleware", "nginx_config_test", item["name"], None, "", "unknown", "nginx binary not found")
        rc, out, err = self.command([nginx, "-t"], self.timeout)
        lines = [line.strip() for line in (err + "\n" + out).splitlines() if line.strip()]
        if rc == 0:
            return check("middleware", "nginx_config_test", item["name"], 1, "", "ok", lines[-1] if lines else "ok")
        problems = [line for line in lines if any(level in line for level in ("[emerg]", "[alert]", "[crit]"))]
        detail = (problems or lines or [f"nginx -t failed with rc {rc}"])[0][:300]
        return check("middleware", "nginx_config_test", item["name"], 0, "", "critical", detail)

    def tls_check(self, endpoint):
        host, port = endpoint["host"], endpoint["port"]
        server_name = endpoint["server_name"] or host
        # The first handshake does not verify: an untrusted certificate's expiry still matters.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection((host, port), timeout=self.timeout) as sock, \
                    context.wrap_socket(sock, server_hostname=server_name) as tls:
                der = tls.getpeercert(binary_form=True)
        except (OSError, ssl.SSLError) as exc:
            return self.failed("middleware", "cert_days_left", endpoint["name"], "days", "cert_days_left",
                               f"TLS handshake with {host}:{port} failed: {_error_text(exc)}")
        try:
            not_after = cert_not_after(der)
        except (ValueError, IndexError, StopIteration, UnicodeDecodeError) as exc:
            return self.failed("middleware", "cert_days_left", endpoint["name"], "days", "cert_days_left",
                               f"cannot read the certificate's expiry: {exc}", "unknown")
        days = (not_after - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400
        trust = self.tls_trust(host, port, server_name)
        return self.measured("middleware", "cert_days_left", endpoint["name"], days, "days", "cert_days_left",
                             f"certificate for {server_name} expires {not_after:%Y-%m-%d %H:%M} UTC "
                             f"({days:.1f} days); {trust}")

    def tls_trust(self, host, port, server_name):
        """Whether chain and name verify, as a note: the expiry alone sets the status."""
        try:
            with socket.create_connection((host, port), timeout=self.timeout) as sock, \
                    ssl.create_default_context().wrap_socket(sock, server_hostname=server_name):
                return "chain and name verified"
        except ssl.SSLCertVerificationError as exc:
            return f"not trusted: {exc.verify_message or exc}"
        except (OSError, ssl.SSLError) as exc:
            return f"not verified: {_error_text(exc)}"

    # ---- application

    def application_jobs(self):
        return [Job(lambda e=endpoint: self.http_checks(e),
                    lambda reason, e=endpoint: self.http_result(e, None, None, b"", f"GET {e['url']}: {reason}"),
                    self.timeout + 2)
                for endpoint in self.params["http_endpoints"]]

    def http_checks(self, endpoint):
        if endpoint["validate_certs"]:
            context = ssl.create_default_context()
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        # Proxies are ignored: the probe checks the OA server itself, not the road through a proxy.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=context))
        request = urllib.request.Request(endpoint["url"], headers={"User-Agent": f"oaops-probe/{PROBE_VERSION}"})
        start = time.monotonic()
        status, body, error = None, b"", None
        try:
            with opener.open(request, timeout=self.timeout) as response:
                status, body = response.status, response.read(MAX_BODY)
        except urllib.error.HTTPError as exc:
            status = exc.code
            try:
                body = exc.read(MAX_BODY)
            except OSError:
                body = b""
        except (OSError, ValueError) as exc:  # URLError and socket errors are OSErrors
            error = f"GET {endpoint['url']} failed: {_error_text(exc)}"
        except Exception as exc:  # http.client.HTTPException and the like: a broken server
            error = f"GET {endpoint['url']} failed: {type(exc).__name__}: {exc}"
        return self.http_result(endpoint, status, (time.monotonic() - start) * 1000, body, error)

    def http_result(self, endpoint, status, elapsed, body, error):
        name, layer = endpoint["name"], "application"
        if error:
            checks = [check(layer, "http_status", name, None, "", "critical", error),
                      self.failed(layer, "http_response_ms", name, "ms", "http_response_ms",
                                  f"no response: {error}", "unknown")]
        else:
            expected = endpoint["expect_status"]
            checks = [check(layer, "http_status", name, status, "", "ok" if status == expected else "critical",
                            f"GET {endpoint['url']} answered {status} (expected {expected})"),
                      self.measured(layer, "http_response_ms", name, elapsed, "ms", "http_response_ms",
                                    f"{len(body)} bytes in {elapsed:.0f} ms")]
        text = endpoint["expect_text"]
        if text and error:
            checks.append(check(layer, "http_expected_text", name, None, "", "unknown", "no response to search"))
        elif text:
            found = text in body.decode("utf-8", "replace")
            detail = f"found {text!r}" if found else f"{text!r} not found in the first {len(body)} bytes of the body"
            checks.append(check(layer, "http_expected_text", name, int(found), "", "ok" if found else "critical",
                                detail))
        return checks


ARGUMENT_SPEC = dict(
    layers=dict(type="list", elements="str", choices=list(LAYERS), default=list(LAYERS)),
    thresholds=dict(type="dict", default={}),
    network_peers=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True), host=dict(type="str", required=True),
        port=dict(type="int", required=True))),
    dns_names=dict(type="list", elements="str", default=[]),
    databases=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True),
        type=dict(type="str", required=True, choices=["postgresql", "mysql"]),
        host=dict(type="str", default="127.0.0.1"),
        port=dict(type="int"),
        user=dict(type="str"),
        password=dict(type="str", no_log=True),
        database=dict(type="str"),
        replica=dict(type="bool", default=False))),
    middleware=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True),
        type=dict(type="str", default="process", choices=["nginx", "tomcat", "process"]),
        process=dict(type="str"),
        ports=dict(type="list", elements="int", default=[]))),
    tls_endpoints=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True), host=dict(type="str", required=True),
        port=dict(type="int", default=443), server_name=dict(type="str"))),
    http_endpoints=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True), url=dict(type="str", required=True),
        expect_status=dict(type="int", default=200), expect_text=dict(type="str"),
        validate_certs=dict(type="bool", default=True))),
    timeout=dict(type="int", default=5),
    host=dict(type="str"),
    fail_on_critical=dict(type="bool", default=False),
)


def main():
    # The role's whole per-host work is this one call: its input checks and its critical gate are
    # here rather than tasks of their own, since every task costs the controller a fork per host
    # (docs/performance.md, "Over real SSH").
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not module.params["layers"]:
        module.fail_json(msg=(
            f"{module.params['host'] or 'this host'} is in none of the layer groups "
            f"{', '.join(LAYERS)} (regulation R2): add it to the groups it belongs to in the "
            "inventory, or set oa_health_layers."))
    started = time.monotonic()
    probe = Probe(module, validate(module))
    layers = [layer for layer in LAYERS if layer in module.params["layers"]]
    checks = run_jobs(probe.jobs(layers))
    payload = {
        "kind": "health", "probe_version": PROBE_VERSION, "layers": layers,
        "duration_ms": int((time.monotonic() - started) * 1000), "checks": checks,
    }
    count = {status: sum(1 for c in checks if c["status"] == status) for status in STATUSES}
    summary = (f"{len(checks)} checks in {payload['duration_ms']} ms: {count['ok']} ok, "
               f"{count['warning']} warning, {count['critical']} critical, {count['unknown']} unknown")
    critical = [c for c in checks if c["status"] == "critical"]
    if critical and module.params["fail_on_critical"]:
        lines = "; ".join(" | ".join(str(c[k]) for k in ("status", "layer", "name", "target", "detail"))
                          for c in critical)
        module.fail_json(msg=f"Critical checks ({len(critical)}): {lines}", oaops=payload)
    module.exit_json(changed=False, msg=summary, oaops=payload)


if __name__ == "__main__":
    main()
