#!/usr/bin/python
# Copyright (c) oaops contributors
# Apache License 2.0 (see pyproject.toml)
"""Gather the evidence of a fault on one host, per cause category of R13, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: oaops_triage
short_description: Gather fault evidence on an OA host per cause category (power, server, storage, network, application)
version_added: "0.1.0"
description:
  - One call per host gathers what a technician looks at first when the OA system fails
    (regulation Art. 13, R13), grouped by the cause categories of the fault record.
  - "power: uptime and boot time, power-supply state, power and thermal lines of the kernel log."
  - "server: load per CPU, available memory, OOM kills and hardware errors in the kernel log."
  - "storage: used space and inodes per mount, read-only mounts, I/O and file-system errors."
  - "network: interfaces down, TCP reachability and latency of the other tiers, name resolution."
  - "application: service and process state, HTTP endpoints, database servers (TCP and
    C(pg_isready) / C(mysqladmin ping) when installed), and the tail of the application logs."
  - Every category lists C(findings), the lines that point at a cause, and C(weights), how much each
    says (1 weak, such as a recent boot or a high load; 2 normal; 3 strong, such as a failing
    application service, page, process or database); oaops suggests the category with the heaviest
    evidence as the fault's cause, and weighs a boot before the fault opened as weaker still.
  - Reads only; never changes the host. Returns C(changed=false), also in check mode.
options:
  categories:
    description: Categories to gather.
    type: list
    elements: str
    choices: [power, server, storage, network, application]
    default: [power, server, storage, network, application]
  peers:
    description: Other tiers that must accept TCP connections (the probe's C(oa_health_network_peers)).
    type: list
    elements: dict
    default: []
  databases:
    description: Database servers (the probe's C(oa_health_databases)); C(name), C(type), C(host), C(port).
    type: list
    elements: dict
    default: []
  http_endpoints:
    description: URLs of the OA application (the probe's C(oa_health_http_endpoints)); C(name), C(url).
    type: list
    elements: dict
    default: []
  processes:
    description: Processes that must run (the probe's C(oa_health_middleware)); C(name), C(process) regex.
    type: list
    elements: dict
    default: []
  services:
    description: systemd units whose state is reported.
    type: list
    elements: str
    default: []
  log_files:
    description: Application logs whose last lines are attached.
    type: list
    elements: path
    default: []
  log_lines:
    description: Lines of each log and of the kernel log to keep.
    type: int
    default: 40
  timeout:
    description: Seconds per network probe.
    type: float
    default: 3.0
  load_per_cpu:
    description: The 1-minute load per CPU at or above which the server category has a finding.
    type: float
    default: 2.0
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
author: oaops contributors
"""

EXAMPLES = r"""
- name: Gather the fault evidence of this host
  oaops_triage:
    peers: "{{ oa_health_network_peers | default([]) }}"
    log_files: [/var/log/oa/app.log]
"""

RETURN = r"""
oaops:
  description: C(kind=triage), C(host) and C(evidence) per category, each with C(findings), C(weights) and C(facts).
  returned: always
  type: dict
"""

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request

from ansible.module_utils.basic import AnsibleModule

CATEGORIES = ["power", "server", "storage", "network", "application"]
# How much a finding says about the cause: a failing application check names the cause outright;
# a recent boot only hints at lost power (the fault may have made someone reboot, or the boot came
# before the fault). The controller adds the weights per category and takes the heaviest.
WEAK, NORMAL, STRONG = 1, 2, 3
RECENT_BOOT_S = 3600

ARGUMENT_SPEC = dict(
    categories=dict(type="list", elements="str", choices=CATEGORIES, default=CATEGORIES),
    peers=dict(type="list", elements="dict", default=[]),
    databases=dict(type="list", elements="dict", default=[]),
    http_endpoints=dict(type="list", elements="dict", default=[]),
    processes=dict(type="list", elements="dict", default=[]),
    services=dict(type="list", elements="str", default=[]),
    log_files=dict(type="list", elements="path", default=[]),
    log_lines=dict(type="int", default=40),
    timeout=dict(type="float", default=3.0),
    load_per_cpu=dict(type="float", default=2.0),
)

POWER_RE = re.compile(r"power|thermal|temperature|voltage|ac adapter|ups", re.I)
SERVER_RE = re.compile(
    r"out of memory|oom-kill|killed process|machine check|mce|hardware error|soft lockup|hung task", re.I
)
STORAGE_RE = re.compile(
    r"i/o error|ext4-fs error|xfs.*(error|corrupt)|blk_update_request|read-only file system|medium error", re.I
)
SPECIAL_FS = {
    "proc",
    "sysfs",
    "devpts",
    "tmpfs",
    "devtmpfs",
    "cgroup",
    "cgroup2",
    "overlay",
    "squashfs",
    "mqueue",
    "securityfs",
    "pstore",
    "debugfs",
    "tracefs",
    "configfs",
    "fusectl",
    "bpf",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "nsfs",
    "ramfs",
    "rpc_pipefs",
    "efivarfs",
}


def run(cmd, timeout=10):
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    return proc.returncode, (proc.stdout or "") + (proc.stderr or "")


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def tail(path, lines):
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return None, str(exc)
    return data.splitlines()[-lines:], ""


def kernel_log(lines):
    """Error-level kernel messages: journalctl -k, else dmesg; a note when neither may be read."""
    if shutil.which("journalctl"):
        rc, out = run(["journalctl", "-k", "-p", "warning", "-n", str(lines * 5), "--no-pager", "-q"])
        if rc == 0:
            return [ln for ln in out.splitlines() if ln.strip()], "journalctl -k"
    if shutil.which("dmesg"):
        rc, out = run(["dmesg", "--level=emerg,alert,crit,err,warn", "-T"])
        if rc == 0:
            return out.splitlines()[-lines * 5 :], "dmesg"
        return [], "kernel log not readable here (" + out.strip().splitlines()[0][
            :120
        ] + ")" if out.strip() else "dmesg failed"
    return [], "no journalctl or dmesg"


def tcp(host, port, timeout):
    start = time.monotonic()
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True, round((time.monotonic() - start) * 1000, 1), ""
    except OSError as exc:
        return False, None, str(exc)


def uptime_seconds():
    uptime = read("/proc/uptime")
    return float(uptime.split()[0]) if uptime else None


def power(kernel, lines, uptime_s=None, now=None):
    """`uptime_s` and `now` (epoch seconds) come from the caller, so a test does not depend on
    when this machine booted."""
    findings, weights, facts = [], [], {}
    if uptime_s is not None:
        now = time.time() if now is None else now
        facts["uptime_s"] = int(uptime_s)
        facts["booted_epoch"] = round(now - uptime_s, 3)
        facts["booted_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now - uptime_s))
        if uptime_s < RECENT_BOOT_S:
            text = f"host booted {int(uptime_s // 60)} min ago: was power lost?"
            findings.append(text)
            weights.append(WEAK)
            facts["boot_finding"] = text  # the controller weighs it against the fault's opening time
    supplies = {}
    base = "/sys/class/power_supply"
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        online = read(os.path.join(base, name, "online"))
        status = read(os.path.join(base, name, "status"))
        supplies[name] = (status or online or "").strip()
        if online is not None and online.strip() == "0" and name.upper().startswith(("AC", "ADP", "PSU")):
            findings.append(f"power supply {name} is offline")
            weights.append(STRONG)
    facts["power_supplies"] = supplies
    matched = [ln for ln in kernel if POWER_RE.search(ln)][-lines:]
    findings += matched[-5:]
    weights += [NORMAL] * len(matched[-5:])
    facts["kernel_lines"] = matched
    return {"findings": findings, "weights": weights, "facts": facts}


def server(kernel, lines, load_limit):
    findings, facts = [], {}
    load = read("/proc/loadavg")
    cpus = os.cpu_count() or 1
    if load:
        one = float(load.split()[0])
        facts["load_per_cpu"] = round(one / cpus, 2)
        if one / cpus >= load_limit:
            findings.append("load %.1f per CPU" % (one / cpus))  # busy, which a fault often is: weak
    meminfo = read("/proc/meminfo") or ""
    mem = {k: int(v.split()[0]) for k, v in (ln.split(":", 1) for ln in meminfo.splitlines() if ":" in ln)}
    if mem.get("MemTotal"):
        pct = 100.0 * mem.get("MemAvailable", 0) / mem["MemTotal"]
        facts["memory_available_pct"] = round(pct, 1)
        if pct < 5:
            findings.append(f"only {pct:.1f}% memory available")
    matched = [ln for ln in kernel if SERVER_RE.search(ln)][-lines:]
    findings += matched[-5:]
    facts["kernel_lines"] = matched
    weights = [WEAK if f.startswith("load ") else NORMAL for f in findings]
    return {"findings": findings, "weights": weights, "facts": facts}


def storage(kernel, lines):
    findings, facts = [], {}
    mounts = []
    for ln in (read("/proc/mounts") or "").splitlines():
        parts = ln.split()
        if len(parts) < 4 or parts[2] in SPECIAL_FS:
            continue
        mount, opts = parts[1], parts[3].split(",")
        try:
            st = os.statvfs(mount)
        except OSError:
            continue
        if not st.f_blocks:
            continue
        used = 100.0 * (st.f_blocks - st.f_bfree) / st.f_blocks
        inodes = 100.0 * (st.f_files - st.f_ffree) / st.f_files if st.f_files else 0.0
        mounts.append(
            {
                "mount": mount,
                "fs": parts[2],
                "used_pct": round(used, 1),
                "inode_pct": round(inodes, 1),
                "read_only": "ro" in opts,
            }
        )
        if used >= 95:
            findings.append(f"{mount} is {used:.0f}% full")
        if inodes >= 95:
            findings.append(f"{mount} has {inodes:.0f}% inodes used")
        if "ro" in opts and mount in ("/", "/var", "/srv", "/home", "/data"):
            findings.append(f"{mount} is mounted read-only")
    facts["mounts"] = mounts
    matched = [ln for ln in kernel if STORAGE_RE.search(ln)][-lines:]
    findings += matched[-5:]
    facts["kernel_lines"] = matched
    return {"findings": findings, "weights": [NORMAL] * len(findings), "facts": facts}


def network(peers, timeout):
    findings, facts = [], {}
    down = []
    base = "/sys/class/net"
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        state = (read(os.path.join(base, name, "operstate")) or "").strip()
        if name != "lo" and state == "down":
            down.append(name)
    facts["interfaces_down"] = down
    results = []
    for p in peers:
        ok, ms, err = tcp(p.get("host", "127.0.0.1"), p.get("port", 0), timeout)
        results.append(
            {
                "name": p.get("name", ""),
                "host": p.get("host"),
                "port": p.get("port"),
                "reachable": ok,
                "ms": ms,
                "error": err,
            }
        )
        if not ok:
            findings.append(
                "tier {} ({}:{}) unreachable: {}".format(p.get("name", ""), p.get("host"), p.get("port"), err)
            )
    facts["peers"] = results
    try:
        socket.getaddrinfo("localhost", None)
        facts["resolver"] = "ok"
    except OSError as exc:
        facts["resolver"] = str(exc)
        findings.append(f"name resolution fails: {exc}")
    return {"findings": findings, "weights": [NORMAL] * len(findings), "facts": facts}


def application(params, timeout):
    findings, facts = [], {}
    services = {}
    if params["services"] and shutil.which("systemctl"):
        for unit in params["services"]:
            rc, out = run(["systemctl", "is-active", unit])
            services[unit] = out.strip() or "unknown"
            if rc != 0:
                findings.append(f"service {unit} is {services[unit]}")
    facts["services"] = services
    procs = []
    cmdlines = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():  # not this module, whose arguments name the pattern
            raw = read(f"/proc/{pid}/cmdline")
            if raw:
                cmdlines.append(raw.replace("\0", " ").strip())
    for item in params["processes"]:
        pattern = item.get("process") or item.get("name") or ""
        try:
            rx = re.compile(pattern)
        except re.error:
            continue
        count = sum(1 for c in cmdlines if rx.search(c))
        procs.append({"name": item.get("name", pattern), "running": count})
        if not count:
            findings.append("process {} is not running".format(item.get("name", pattern)))
    facts["processes"] = procs
    http = []
    for ep in params["http_endpoints"]:
        url = ep.get("url", "")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                status, err = resp.status, ""
        except urllib.error.HTTPError as exc:
            status, err = exc.code, str(exc)
        except (OSError, ValueError) as exc:
            status, err = None, str(getattr(exc, "reason", exc))
        http.append({"name": ep.get("name", url), "url": url, "status": status, "error": err})
        if status is None or status >= 500:
            findings.append("{} ({}) answers {}".format(ep.get("name", url), url, status if status else err))
    facts["http"] = http
    dbs = []
    for db in params["databases"]:
        kind = db.get("type", "postgresql")
        host, port = db.get("host", "127.0.0.1"), db.get("port", 5432 if kind == "postgresql" else 3306)
        ok, _ms, err = tcp(host, port, timeout)
        state = "accepting" if ok else "unreachable"
        if ok and kind == "postgresql" and shutil.which("pg_isready"):
            rc, out = run(["pg_isready", "-h", str(host), "-p", str(port), "-t", str(int(timeout) or 1)])
            state = out.strip() or state
            ok = rc == 0
        elif ok and kind == "mysql" and (shutil.which("mariadb-admin") or shutil.which("mysqladmin")):
            tool = shutil.which("mariadb-admin") or shutil.which("mysqladmin")
            rc, out = run([tool, "-h", str(host), "-P", str(port), f"--connect-timeout={int(timeout) or 1}", "ping"])
            state = out.strip().splitlines()[-1] if out.strip() else state
        dbs.append(
            {
                "name": db.get("name", ""),
                "type": kind,
                "host": host,
                "port": port,
                "ok": ok,
                "state": state,
                "error": err,
            }
        )
        if not ok:
            findings.append("database {} ({}:{}) {}".format(db.get("name", ""), host, port, err or state))
    facts["databases"] = dbs
    weights = [STRONG] * len(findings)  # a service, process, page or database of the application fails
    logs = {}
    for path in params["log_files"]:
        lines, err = tail(path, params["log_lines"])
        logs[path] = lines if lines is not None else [f"<not readable: {err}>"]
        if lines:
            errors = [ln for ln in lines if re.search(r"\b(ERROR|FATAL|CRITICAL|Exception)\b", ln)]
            findings += [f"{os.path.basename(path)}: {ln[:300]}" for ln in errors[-3:]]
            weights += [NORMAL] * len(errors[-3:])
    facts["log_tails"] = logs
    return {"findings": findings, "weights": weights, "facts": facts}


def gather(params):
    cats = params["categories"]
    lines = params["log_lines"]
    kernel, source = kernel_log(lines) if {"power", "server", "storage"} & set(cats) else ([], "")
    out = {}
    if "power" in cats:
        out["power"] = power(kernel, lines, uptime_seconds(), time.time())
    if "server" in cats:
        out["server"] = server(kernel, lines, params["load_per_cpu"])
    if "storage" in cats:
        out["storage"] = storage(kernel, lines)
    if "network" in cats:
        out["network"] = network(params["peers"], params["timeout"])
    if "application" in cats:
        out["application"] = application(params, params["timeout"])
    return out, source


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    started = time.time()
    evidence, kernel_source = gather(module.params)
    module.exit_json(
        changed=False,
        oaops={
            "kind": "triage",
            "host": socket.gethostname(),
            "kernel_log": kernel_source,
            "evidence": evidence,
            "duration_s": round(time.time() - started, 3),
        },
    )


if __name__ == "__main__":
    main()
