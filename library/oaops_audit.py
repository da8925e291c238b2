#!/usr/bin/python
# Copyright (c) oaops contributors
# Apache License 2.0 (see pyproject.toml)
"""Evaluate every selected compliance control on a host in one call (R3.3, R10, R11)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: oaops_audit
short_description: Evaluate a profile's compliance controls on a host in one call
version_added: "0.1.0"
description:
  - Evaluates every control of the catalog that the profile selects (regulation R3.3, R10) and
    returns one result per control under C(oaops.results) with a status of C(pass), C(fail),
    C(error) or C(not_applicable), the observed value as evidence and what was expected.
  - Reads effective configuration where the software can print it (C(sshd -T), C(nginx -T),
    C(SHOW) and C(pg_hba_file_rules) in the database), files, C(/proc) and package databases.
  - Strictly read-only, in check mode and out of it; always returns C(changed=false).
  - Controls of kind C(records) (backup and health-run age) are listed under C(oaops.deferred);
    oaops evaluates them from its records after the run.
options:
  catalog:
    description: The controls of the catalog (roles/oa_audit/files/catalog.yml C(controls)).
    type: list
    elements: dict
    required: true
  profile:
    description: The profile (select, include, exclude, parameters); none selects every control.
    type: dict
    default: {}
  parameters:
    description: The host's parameter overrides (C(oa_audit_params)), above the profile's.
    type: dict
    default: {}
  groups:
    description: The host's inventory groups; a control of a layer the host is not in is not applicable.
    type: list
    elements: str
    default: []
  databases:
    description: Database servers for C(sql) and C(pg_hba) controls (same shape as oa_health_databases).
    type: list
    elements: dict
    default: []
  only:
    description: Evaluate only these control ids (after the profile's selection).
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds allowed for each command, connection or query.
    type: int
    default: 20
  root:
    description:
      - Prefix of every host file the checks read (C(/etc), C(/proc/sys), C(/proc/mounts)...).
        Tests audit a scratch tree with it; on a managed host it stays C(/).
    type: path
    default: /
author: oaops contributors
notes:
  - Reading C(/etc/shadow) and running C(sshd -T) need root; run with C(become) where needed.
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Evaluate the baseline profile on the host
  oaops_audit:
    catalog: "{{ (lookup('ansible.builtin.file', 'catalog.yml') | from_yaml).controls }}"
    profile: "{{ lookup('ansible.builtin.file', 'profiles/baseline.yml') | from_yaml }}"
    groups: "{{ group_names }}"
"""

RETURN = r"""
oaops:
  description: The audit payload oaops records as ControlResult rows.
  returned: always
  type: dict
  contains:
    kind:
      description: Always C(audit).
      type: str
    results:
      description: One entry per control, with id, status, observed, expected and layer.
      type: list
      elements: dict
    deferred:
      description: Ids of controls that oaops evaluates from its records.
      type: list
      elements: str
    counts:
      description: Number of results per status.
      type: dict
"""

import fnmatch
import glob
import grp
import http.client
import ipaddress
import os
import pwd
import re
import socket
import ssl
import stat
import subprocess
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

LAYERS = ("hardware", "network", "os", "database", "middleware", "application")
SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}
PARAM = re.compile(r"\$\{([a-z][a-z0-9_]*)\}")
# Fields where an empty parameter means "use the default source", not "not applicable".
OPTIONAL_FIELDS = {("pg_hba", "file")}
PAM_DEFAULTS = {
    ("pam_pwquality.so", "minlen"): "8",
    ("pam_pwquality.so", "minclass"): "0",
    ("pam_faillock.so", "deny"): "3",
    ("pam_faillock.so", "unlock_time"): "600",
}
SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")
MODPROBE_DIRS = (
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/usr/lib/modprobe.d",
    "/lib/modprobe.d",
)
NOLOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false", "/bin/sync")
SYSTEM_EXEMPT = {"root", "sync", "shutdown", "halt"}
DB_DEFAULTS = {"postgresql": (5432, "postgres", "postgres"), "mysql": (3306, "root", ""), "redis": (6379, "", "")}
MAX_LISTED = 20
# accounts test -> (/etc/shadow field, comparison, what it is)
SHADOW_AGEING = {
    "password_max_days": (4, "le", "maximum password age"),
    "password_min_days": (3, "ge", "minimum password age"),
    "password_warn_days": (5, "ge", "warning days"),
    "password_inactive": (6, "le", "inactive days after expiry"),
}


class NotApplicable(Exception):
    """The control does not apply to this host; the message says why."""


class CheckError(Exception):
    """The check could not be evaluated; the message says why."""


# ---- selection and parameters (a copy of oaops.rules.audit: the module stands alone) ----------


def select(catalog, profile):
    s = profile.get("select") or {}
    include = set(profile.get("include") or ())
    exclude = set(profile.get("exclude") or ())
    chosen = []
    for c in catalog:
        ok = True
        if s.get("min_severity"):
            ok = ok and SEVERITY_RANK[c["severity"]] >= SEVERITY_RANK[s["min_severity"]]
        if s.get("layers"):
            ok = ok and c["layer"] in s["layers"]
        if s.get("tags"):
            ok = ok and bool(set(c.get("tags") or ()) & set(s["tags"]))
        if s.get("references"):
            ok = ok and any((c.get("references") or {}).get(r) for r in s["references"])
        if s.get("ids"):
            ok = ok and c["id"] in s["ids"]
        if s.get("all") is False:
            ok = False
        if (ok or c["id"] in include) and c["id"] not in exclude:
            chosen.append(c)
    return chosen


def parameters_for(control, profile, host_params):
    out = dict(control.get("parameters") or {})
    for source in (profile.get("parameters") or {}, host_params or {}):
        for k, v in source.items():
            if k in out:
                out[k] = v
    return out


def _text(value):
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def substitute(value, params):
    if isinstance(value, str):
        whole = PARAM.fullmatch(value)
        if whole:
            return params.get(whole.group(1))
        return PARAM.sub(lambda m: _text(params.get(m.group(1))), value)
    if isinstance(value, dict):
        return {k: substitute(v, params) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        out = []
        for item in value:
            sub = substitute(item, params)
            if isinstance(item, str) and PARAM.fullmatch(item) and isinstance(sub, list):
                out.extend(sub)
            else:
                out.append(sub)
        return out
    return value


def empty_params(check, params):
    """Parameters the check needs that the host left empty: the control is not applicable."""
    out = []
    for key, value in check.items():
        if (check.get("kind"), key) in OPTIONAL_FIELDS:
            continue
        names = set()
        stack = [value]
        while stack:
            v = stack.pop()
            if isinstance(v, str):
                names.update(PARAM.findall(v))
            elif isinstance(v, (list, tuple)):
                stack.extend(v)
            elif isinstance(v, dict):
                stack.extend(v.values())
        out.extend(n for n in names if params.get(n) in (None, "", [], {}))
    return sorted(set(out))


# ---- comparisons ------------------------------------------------------------------------------


def _num(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None


def _norm(value):
    return str(value).strip().lower()


def compare(observed, op, value):
    """True when the observed value satisfies `op value`. None observed (not set) never does,
    except for ne / not_in / not_match."""
    if observed is None:
        return op in ("ne", "not_in", "not_match")
    if op in ("match", "not_match"):
        found = re.search(str(value), str(observed), re.I | re.M) is not None
        return found if op == "match" else not found
    if op in ("in", "not_in"):
        inside = _norm(observed) in [_norm(v) for v in value]
        return inside if op == "in" else not inside
    if op == "between":
        n, low, high = _num(observed), _num(value[0]), _num(value[1])
        if n is None or low is None or high is None:
            return False
        return low <= n <= high
    a, b = _num(observed), _num(value)
    if op in ("eq", "ne"):
        same = a == b if a is not None and b is not None else _norm(observed) == _norm(value)
        return same if op == "eq" else not same
    if a is None or b is None:
        return False
    return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]


def expectation(name, op, value):
    words = {
        "eq": "=",
        "ne": "!=",
        "lt": "<",
        "le": "<=",
        "gt": ">",
        "ge": ">=",
        "in": "in",
        "not_in": "not in",
        "match": "matches",
        "not_match": "does not match",
    }
    if op == "between":
        return f"{name} between {value[0]} and {value[1]}"
    if op in ("in", "not_in"):
        return "{} {} [{}]".format(name, words[op], ", ".join(str(v) for v in value))
    if op in ("match", "not_match"):
        return f"{name} {words[op]} /{value}/"
    return f"{name} {words[op]} {value}"


def _listed(items, total=None):
    items = list(items)
    total = len(items) if total is None else total
    more = f" and {total - MAX_LISTED} more" if total > MAX_LISTED else ""
    return ", ".join(str(i) for i in items[:MAX_LISTED]) + more


# ---- the evaluator -----------------------------------------------------------------------------


class Auditor:
    def __init__(self, module):
        self.module = module
        self.timeout = module.params["timeout"]
        self.databases = module.params["databases"]
        self.root = module.params.get("root") or "/"
        self._cache = {}
        self._locks = {}
        self._guard = threading.Lock()

    def p(self, path):
        """A host path under the root prefix (tests audit a scratch tree; "/" on a real host)."""
        if self.root == "/" or not path.startswith("/"):
            return path
        return os.path.join(self.root, path.lstrip("/"))

    # shared gathers: computed once per call, whichever control asks first
    def cached(self, key, fn):
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._cache:
                try:
                    self._cache[key] = ("ok", fn())
                except (NotApplicable, CheckError) as exc:
                    self._cache[key] = (type(exc), str(exc))
            kind, value = self._cache[key]
        if kind == "ok":
            return value
        raise kind(value)

    def run(self, argv, data=None, env=None, timeout=None):
        full_env = dict(os.environ, LC_ALL="C", **(env or {}))
        try:
            proc = subprocess.run(
                argv,
                input=data,
                capture_output=True,
                text=True,
                env=full_env,
                timeout=timeout or self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise CheckError(f"{os.path.basename(argv[0])} did not answer within {timeout or self.timeout}s") from None
        except OSError as exc:
            raise CheckError(f"{argv[0]}: {exc.strerror or exc}") from None
        return proc.returncode, proc.stdout, proc.stderr

    def binary(self, name, dirs=("/usr/sbin", "/sbin")):
        return self.module.get_bin_path(name, opt_dirs=list(dirs))

    def evaluate(self, check):
        """(status, observed, expected) for one resolved check."""
        handler = getattr(self, "check_" + check["kind"], None)
        if handler is None:
            raise CheckError("this module does not know check kind {!r}".format(check["kind"]))
        return handler(check)

    # -- sshd / sysctl / login.defs / PAM

    def sshd_settings(self, config):
        if not os.path.exists(config):
            raise NotApplicable(f"{config} does not exist (sshd not configured here)")
        sshd = self.binary("sshd")
        if not sshd:
            raise NotApplicable("sshd is not installed")
        rc, out, err = self.run([sshd, "-T", "-f", config])
        if rc != 0:
            raise CheckError(f"sshd -T -f {config} failed: {(err or out).strip().splitlines()[-1:] or rc}")
        settings = {}
        for line in out.splitlines():
            key, _, value = line.strip().partition(" ")
            if key:
                settings.setdefault(key.lower(), value.strip())
        return settings

    def sshd_explicit(self, config):
        """option -> (value, file:line) as written, first one wins like sshd; Include followed,
        Match blocks left out (they apply per connection, sshd -T shows the global values)."""
        found = {}

        def read(path, depth):
            for n, line in enumerate(_read(path).splitlines(), 1):
                parts = line.split("#", 1)[0].strip().split(None, 1)
                if not parts:
                    continue
                key, value = parts[0].lower(), (parts[1].strip() if len(parts) > 1 else "")
                if key == "match":
                    return
                if key == "include" and depth < 8:
                    for pattern in value.split():
                        full = self.p(pattern) if pattern.startswith("/") else os.path.join(self.p("/etc/ssh"), pattern)
                        for inc in sorted(glob.glob(full)):
                            read(inc, depth + 1)
                    continue
                found.setdefault(key, (value, f"{path}:{n}"))

        read(config, 0)
        return found

    def check_sshd(self, check):
        config = self.p(check.get("config") or "/etc/ssh/sshd_config")
        settings = self.cached(("sshd", config), lambda: self.sshd_settings(config))
        explicit = self.cached(("sshd-explicit", config), lambda: self.sshd_explicit(config))
        wanted = [(check["option"], check["op"], check["value"])]
        wanted += [(a["option"], a["op"], a["value"]) for a in check.get("also") or ()]
        ok, shown, expected = True, [], []
        for option, op, value in wanted:
            observed = settings.get(option)
            ok = compare(observed, op, value) and ok
            written = explicit.get(option)
            how = "explicit {} ({})".format(*written) if written else "not set explicitly: sshd default"
            shown.append(
                "{} {} (sshd -T -f {}; {})".format(
                    option, observed if observed is not None else "(not set)", config, how
                )
            )
            expected.append(expectation(option, op, value))
        return ok, "; ".join(shown), " and ".join(expected)

    def sysctl_persisted(self):
        """key -> (value, file:line) as `sysctl --system` applies them at boot: sysctl.d files by
        name (a file of /etc hides the same name further down), then /etc/sysctl.conf; last wins."""
        files = {}
        for folder in reversed(SYSCTL_DIRS):
            for path in glob.glob(self.p(folder) + "/*.conf"):
                files[os.path.basename(path)] = path
        ordered = [files[name] for name in sorted(files)]
        if os.path.isfile(self.p("/etc/sysctl.conf")):
            ordered.append(self.p("/etc/sysctl.conf"))
        values = {}
        for path in ordered:
            for n, line in enumerate(_read(path).splitlines(), 1):
                text = line.strip()
                if not text or text[0] in "#;":
                    continue
                key, eq, value = text.lstrip("-").partition("=")
                if eq:
                    values[key.strip().replace("/", ".")] = (" ".join(value.split()), f"{path}:{n}")
        return values

    def check_sysctl(self, check):
        key = check["key"]
        path = self.p("/proc/sys/" + key.replace(".", "/"))
        try:
            with open(path) as f:
                running = " ".join(f.read().split())
        except FileNotFoundError:
            raise NotApplicable(f"kernel has no {key}") from None
        except OSError as exc:
            raise CheckError(f"cannot read {path}: {exc.strerror}") from None
        ok = compare(running, check["op"], check["value"])
        expected = expectation(key, check["op"], check["value"])
        if check.get("persisted", True) is False:
            return ok, f"{key} = {running} (running)", expected
        saved = self.cached("sysctl.d", self.sysctl_persisted).get(key)
        if saved is None:
            return (
                False,
                f"{key} = {running} (running); not persisted in sysctl.conf or sysctl.d: lost at reboot",
                (expected + ", running and persisted"),
            )
        ok = compare(saved[0], check["op"], check["value"]) and ok
        return (
            ok,
            f"{key} = {running} (running); {saved[0]} persisted ({saved[1]})",
            (expected + ", running and persisted"),
        )

    def login_defs(self):
        values = {}
        try:
            with open(self.p("/etc/login.defs")) as f:
                for line in f:
                    parts = line.split()
                    if parts and not parts[0].startswith("#") and len(parts) >= 2:
                        values[parts[0]] = parts[1]
        except FileNotFoundError:
            raise NotApplicable("/etc/login.defs does not exist") from None
        return values

    def check_login_defs(self, check):
        values = self.cached("login.defs", self.login_defs)
        observed = values.get(check["key"])
        ok = compare(observed, check["op"], check["value"])
        shown = observed if observed is not None else "(not set)"
        return (
            ok,
            "{} {} (/etc/login.defs)".format(check["key"], shown),
            expectation(check["key"], check["op"], check["value"]),
        )

    def pam_stack(self):
        lines = []
        for path in sorted(glob.glob(self.p("/etc/pam.d/*"))):
            try:
                with open(path) as f:
                    for n, line in enumerate(f, 1):
                        text = line.split("#", 1)[0].strip()
                        if text:
                            lines.append((path, n, text))
            except OSError:
                continue
        return lines

    def check_pam(self, check):
        module_name, option = check["module"], check["option"]
        stack = self.cached("pam", self.pam_stack)
        uses = [(p, n, t) for p, n, t in stack if re.search(rf"(^|\s|/){re.escape(module_name)}(\s|$)", t)]
        expected = expectation(f"{module_name} {option}", check["op"], check["value"])
        if not uses:
            return False, f"{module_name} is not in the PAM stack (/etc/pam.d)", expected
        observed, where = None, ""
        for path, n, text in uses:
            tokens = text.split()
            at = next(i for i, t in enumerate(tokens) if t == module_name or t.endswith("/" + module_name))
            for arg in tokens[at + 1 :]:
                key, eq, value = arg.partition("=")
                if eq and key == option:
                    observed, where = value, f"{path}:{n}"
        conf = self.p(check.get("conf") or "")
        if observed is None and conf and os.path.exists(conf):
            with open(conf) as f:
                for n, line in enumerate(f, 1):
                    text = line.split("#", 1)[0].strip()
                    key, eq, value = text.partition("=")
                    if eq and key.strip() == option:
                        observed, where = value.strip(), f"{conf}:{n}"
        if observed is None and (module_name, option) in PAM_DEFAULTS:
            observed, where = PAM_DEFAULTS[(module_name, option)], "module default"
        ok = compare(observed, check["op"], check["value"])
        return (
            ok,
            "{} {} = {} ({})".format(
                module_name, option, observed if observed is not None else "(not set)", where or "not set"
            ),
            expected,
        )

    # -- files

    def check_file(self, check):
        pattern = self.p(check["path"])
        paths = sorted(glob.glob(pattern)) or [pattern]
        missing = check.get("missing", "fail")
        expected = []
        if check.get("exists", True) is False:
            present = [p for p in paths if os.path.lexists(p)]
            return (
                not present,
                ("exists: " + _listed(present)) if present else "{} absent".format(check["path"]),
                "{} absent".format(check["path"]),
            )
        if check.get("mode_max"):
            expected.append("mode <= {}".format(check["mode_max"]))
        if check.get("owner"):
            expected.append("owner {}".format(check["owner"]))
        if check.get("group"):
            expected.append("group {}".format(check["group"]))
        expected_text = "{}: {}".format(check["path"], ", ".join(expected) or "exists")
        observed, ok = [], True
        for path in paths:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                if missing == "not_applicable":
                    raise NotApplicable(f"{path} does not exist") from None
                if missing == "pass":
                    continue
                return False, f"{path} does not exist", expected_text
            mode = stat.S_IMODE(st.st_mode)
            owner = _user(st.st_uid)
            group = _group(st.st_gid)
            if check.get("mode_max") and mode & ~int(check["mode_max"], 8):
                ok = False
            if check.get("owner") and owner != check["owner"]:
                ok = False
            if check.get("group") and group != check["group"]:
                ok = False
            observed.append(f"{path} {mode:04o} {owner}:{group}")
        return ok, "; ".join(observed) or "no file matches {}".format(check["path"]), expected_text

    def check_file_content(self, check):
        files = []
        for pattern in check["paths"]:
            files.extend(p for p in sorted(glob.glob(self.p(pattern))) if os.path.isfile(p))
        expected = "{} /{}/ in {}".format(
            "a line matches" if check["expect"] == "match" else "no line matches",
            check["pattern"],
            ", ".join(check["paths"]),
        )
        if not files:
            missing = check.get("missing", "fail")
            if missing == "not_applicable":
                raise NotApplicable("none of {} exists".format(", ".join(check["paths"])))
            return missing == "pass", "none of {} exists".format(", ".join(check["paths"])), expected
        rx = re.compile(check["pattern"], re.M)
        hits = []
        for path in files:
            try:
                with open(path, errors="replace") as f:
                    for n, line in enumerate(f, 1):
                        if rx.search(line.rstrip("\n")):
                            hits.append(f"{path}:{n}: {line.strip()[:160]}")
            except OSError as exc:
                raise CheckError(f"cannot read {path}: {exc.strerror}") from None
        if check["expect"] == "match":
            return bool(hits), _listed(hits) if hits else f"no matching line in {len(files)} file(s)", expected
        return not hits, _listed(hits) if hits else f"no matching line in {len(files)} file(s)", expected

    def check_shell_timeout(self, check):
        limit = _num(check["max_seconds"])
        rx = re.compile(r"^\s*(?:readonly\s+|export\s+|declare\s+-[a-z]*\s+)*TMOUT=(\d+)")
        found = []
        for pattern in check["paths"]:
            for path in sorted(glob.glob(self.p(pattern))):
                try:
                    with open(path, errors="replace") as f:
                        for n, line in enumerate(f, 1):
                            m = rx.match(line)
                            if m:
                                found.append((int(m.group(1)), f"{path}:{n}"))
                except OSError:
                    continue
        expected = "TMOUT between 1 and {} in {}".format(limit, ", ".join(check["paths"]))
        if not found:
            return False, "TMOUT is not set in {}".format(", ".join(check["paths"])), expected
        ok = all(0 < v <= limit for v, _ in found)
        return ok, "; ".join("TMOUT={} ({})".format(*f) for f in found), expected

    def check_find(self, check):
        allow = {self.p(a) for a in check.get("allow") or ()}
        offenders, total, scanned = [], 0, 0
        for root in map(self.p, check["paths"]):
            if not os.path.isdir(root):
                continue
            device = os.stat(root).st_dev
            for dirpath, dirnames, filenames in os.walk(root):
                keep = []
                for d in dirnames:
                    full = os.path.join(dirpath, d)
                    try:
                        st = os.lstat(full)
                    except OSError:
                        continue
                    if stat.S_ISLNK(st.st_mode) or st.st_dev != device:
                        continue  # stay on the file system, never follow links
                    if (
                        check["test"] == "world_writable"
                        and st.st_mode & stat.S_IWOTH
                        and not st.st_mode & stat.S_ISVTX
                    ):
                        total += 1
                        offenders.append(f"{full}/ {stat.S_IMODE(st.st_mode):04o}")
                    keep.append(d)
                dirnames[:] = keep
                for name in filenames:
                    full = os.path.join(dirpath, name)
                    try:
                        st = os.lstat(full)
                    except OSError:
                        continue
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    scanned += 1
                    if check["test"] == "world_writable":
                        bad = st.st_mode & stat.S_IWOTH
                    else:
                        bad = st.st_mode & (stat.S_ISUID | stat.S_ISGID) and full not in allow
                    if bad:
                        total += 1
                        offenders.append(f"{full} {stat.S_IMODE(st.st_mode):04o} {_user(st.st_uid)}")
        what = "world-writable files" if check["test"] == "world_writable" else "SUID/SGID files not on the allow-list"
        expected = "no {} under {}".format(what, ", ".join(check["paths"]))
        if total:
            return False, f"{total} {what}: {_listed(offenders, total)}", expected
        return True, "none among {} files under {}".format(scanned, ", ".join(check["paths"])), expected

    def check_file_age(self, check):
        files = []
        for pattern in check["paths"]:
            files.extend(p for p in glob.glob(self.p(pattern)) if os.path.isfile(p))
        limit = _num(check["max_days"])
        expected = "newest of {} at most {} days old".format(", ".join(check["paths"]), check["max_days"])
        if not files:
            return False, "no file matches {}".format(", ".join(check["paths"])), expected
        newest = max(files, key=os.path.getmtime)
        age = (time.time() - os.path.getmtime(newest)) / 86400.0
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(os.path.getmtime(newest)))
        return age <= limit, f"{newest} modified {stamp} UTC ({age:.1f} days ago)", expected

    def check_logrotate(self, check):
        log, need = check["log"], _num(check["min_days"])
        expected = "{} kept >= {} days (rotate x period)".format(log, check["min_days"])
        main = self.p("/etc/logrotate.conf")
        if not os.path.exists(main):
            return False, f"logrotate is not configured ({main} missing)", expected
        global_d = _logrotate_directives(_read(main).split("{", 1)[0])
        stanza, where = None, ""
        for path in [main, *sorted(glob.glob(self.p("/etc/logrotate.d/*")))]:
            text = _read(path)
            for m in re.finditer(r"([^{}]+)\{([^}]*)\}", text):
                names = m.group(1).split()
                if any(fnmatch.fnmatchcase(log, n) for n in names):
                    stanza, where = m.group(2), path
                    break
            if stanza is not None:
                break
        if stanza is None:
            return False, f"no logrotate stanza names {log}", expected
        d = dict(global_d, **_logrotate_directives(stanza))
        period = {"daily": 1, "weekly": 7, "monthly": 30, "yearly": 365}.get(d.get("period", "weekly"), 7)
        rotate = int(d.get("rotate", "1"))
        days = rotate * period
        if "maxage" in d:
            days = min(days, int(d["maxage"]))
        observed = "{}: rotate {} x {} = {} days ({})".format(log, rotate, d.get("period", "weekly"), days, where)
        return days >= need, observed, expected

    # -- accounts

    def accounts(self):
        users = []
        with open(self.p("/etc/passwd")) as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 7:
                    users.append(
                        {"name": parts[0], "uid": int(parts[2]), "gid": parts[3], "home": parts[5], "shell": parts[6]}
                    )
        shadow = {}
        try:
            with open(self.p("/etc/shadow")) as f:
                for line in f:
                    parts = line.rstrip("\n").split(":")
                    if len(parts) >= 8:
                        shadow[parts[0]] = parts
        except PermissionError:
            raise CheckError("cannot read /etc/shadow: run the audit with become (root)") from None
        except FileNotFoundError:
            pass
        return users, shadow

    def check_accounts(self, check):
        users, shadow = self.cached("accounts", self.accounts)
        test = check["test"]
        if test in SHADOW_AGEING and not check.get("max_days") and not check.get("min_days"):
            raise CheckError(f"accounts test {test} needs max_days or min_days")
        if test == "empty_password":
            bad = [u["name"] for u in users if u["name"] in shadow and shadow[u["name"]][1] == ""]
            return (
                not bad,
                ("empty password field: " + _listed(bad))
                if bad
                else f"{len(shadow)} accounts, none with an empty password",
                "no empty password field in /etc/shadow",
            )
        if test in ("duplicate_uid", "duplicate_name"):
            key = "uid" if test == "duplicate_uid" else "name"
            seen = {}
            for u in users:
                seen.setdefault(u[key], []).append(u["name"])
            dup = ["{}: {}".format(k, "/".join(v)) for k, v in sorted(seen.items()) if len(v) > 1]
            return (
                not dup,
                (f"shared {key} " + _listed(dup)) if dup else f"{len(users)} accounts, every {key} unique",
                f"unique {key}s in /etc/passwd",
            )
        if test == "uid0_only_root":
            zero = [u["name"] for u in users if u["uid"] == 0]
            return zero == ["root"], "UID 0: " + (", ".join(zero) or "none"), "only root has UID 0"
        uid_min = int(self.cached("login.defs", self.login_defs).get("UID_MIN", "1000"))
        system = [u for u in users if u["uid"] < uid_min and u["name"] not in SYSTEM_EXEMPT and u["uid"] != 0]
        if test == "system_nologin":
            # CIS asks for a nologin shell: a locked password still lets keys or su - in
            bad = ["{} ({})".format(u["name"], u["shell"]) for u in system if u["shell"] not in NOLOGIN_SHELLS]
            return (
                not bad,
                ("login shell: " + _listed(bad))
                if bad
                else f"{len(system)} system accounts, every one with a nologin shell",
                "system accounts (UID < {}) have a shell of {}".format(uid_min, ", ".join(NOLOGIN_SHELLS[:3])),
            )
        if test == "system_locked":
            bad = [u["name"] for u in system if u["name"] in shadow and shadow[u["name"]][1][:1] not in ("!", "*")]
            return (
                not bad,
                ("password usable: " + _listed(bad)) if bad else f"{len(system)} system accounts, passwords locked",
                f"system accounts (UID < {uid_min}) have a locked password (! or *)",
            )
        humans = [
            u
            for u in users
            if u["name"] in shadow
            and shadow[u["name"]][1][:1] not in ("!", "*", "")
            and u["shell"] not in NOLOGIN_SHELLS
        ]
        if test in SHADOW_AGEING:
            index, op, what = SHADOW_AGEING[test]
            limit = _num(check.get("max_days") if op == "le" else check.get("min_days"))
            bad = []
            for u in humans:
                field_ = shadow[u["name"]][index] if len(shadow[u["name"]]) > index else ""
                if field_ == "" or not compare(field_, op, limit):
                    bad.append("{} {}".format(u["name"], field_ or "(unset)"))
            expected = "every account with a password: {} {} {}".format(what, {"le": "<=", "ge": ">="}[op], limit)
            names = ", ".join(u["name"] for u in humans) or "none"
            return (
                not bad,
                (f"{what} out of bounds (/etc/shadow): " + _listed(bad)) if bad else f"{what} in bounds for: {names}",
                expected,
            )
        if test == "password_change_past":
            today = time.time() / 86400.0
            bad = [u["name"] for u in humans if (_num(shadow[u["name"]][2]) or 0) > today + 1]
            return (
                not bad,
                ("last password change in the future: " + _listed(bad)) if bad else "every last change is in the past",
                "no last password change date in the future",
            )
        if test in ("home_permissions", "dot_files"):
            return self.homes(test, users, uid_min)
        if test in ("group_exists", "shadow_group_empty", "root_gid"):
            return self.groups_test(test, users)
        if test == "idle":
            return self.idle_accounts(users, shadow, uid_min, int(_num(check.get("max_days")) or 90))
        raise CheckError(f"unknown accounts test {test!r}")

    def homes(self, test, users, uid_min):
        bad, seen = [], 0
        for u in users:
            if (u["uid"] < uid_min and u["uid"] != 0) or u["shell"] in NOLOGIN_SHELLS or not u["home"].startswith("/"):
                continue
            home = self.p(u["home"])
            try:
                st = os.stat(home)
            except OSError:
                if test == "home_permissions":
                    bad.append("{} {} missing".format(u["name"], home))
                continue
            seen += 1
            if test == "home_permissions":
                mode = stat.S_IMODE(st.st_mode)
                if mode & 0o027 or st.st_uid != u["uid"]:
                    bad.append(f"{home} {mode:04o} {_user(st.st_uid)}")
                continue
            for name in sorted(os.listdir(home)):
                full = os.path.join(home, name)
                if not name.startswith(".") or os.path.islink(full):
                    continue
                if name in (".rhosts", ".netrc", ".forward", ".shosts"):
                    bad.append(f"{full} exists")
                elif os.path.isfile(full) and stat.S_IMODE(os.stat(full).st_mode) & 0o022:
                    bad.append(f"{full} {stat.S_IMODE(os.stat(full).st_mode):04o}")
        if test == "home_permissions":
            expected = "interactive users' homes exist, are owned by them, mode <= 0750"
            return (
                not bad,
                ("homes: " + _listed(bad)) if bad else f"{seen} home(s), all owned and 0750 or tighter",
                expected,
            )
        expected = "no .rhosts/.netrc/.forward/.shosts, no group- or world-writable dot file in homes"
        return not bad, _listed(bad) if bad else f"{seen} home(s), no offending dot file", expected

    def group_file(self):
        groups = {}
        for line in _read(self.p("/etc/group")).splitlines():
            parts = line.split(":")
            if len(parts) >= 4:
                groups[parts[0]] = (parts[2], [m for m in parts[3].split(",") if m])
        return groups

    def groups_test(self, test, users):
        groups = self.cached("groups", self.group_file)
        if test == "group_exists":
            gids = {g[0] for g in groups.values()}
            bad = ["{} (gid {})".format(u["name"], u["gid"]) for u in users if u["gid"] not in gids]
            return (
                not bad,
                ("no such group: " + _listed(bad)) if bad else f"{len(users)} accounts, every primary group exists",
                "every /etc/passwd gid is in /etc/group",
            )
        if test == "root_gid":
            root = next((u for u in users if u["name"] == "root"), None)
            gid = root["gid"] if root else "(no root)"
            return gid == "0", f"root gid {gid}", "root's primary gid is 0"
        shadow_group = groups.get("shadow")
        if shadow_group is None:
            raise NotApplicable("no shadow group on this host")
        bad = list(shadow_group[1]) + [u["name"] for u in users if u["gid"] == shadow_group[0]]
        return (
            not bad,
            ("members: " + _listed(bad)) if bad else "shadow group has no members",
            "the shadow group has no members",
        )

    def idle_accounts(self, users, shadow, uid_min, max_days):
        expected = f"accounts unused for {max_days} days are locked or expired"
        now_days = time.time() / 86400.0
        candidates = []
        for u in users:
            if (u["uid"] < uid_min and u["uid"] != 0) or u["shell"] in NOLOGIN_SHELLS:
                continue
            entry = shadow.get(u["name"])
            if entry is None or entry[1][:1] in ("!", "*") or entry[1] == "":
                continue  # locked, or no password login at all
            if len(entry) > 7 and entry[7] and float(entry[7]) < now_days:
                continue  # expired
            candidates.append(u["name"])
        if not candidates:
            return True, "no unlocked account with a password and a login shell", expected
        # lastlog reads this machine's records: under a root prefix, fall back to the shadow dates
        lastlog = self.binary("lastlog", ("/usr/bin", "/usr/sbin")) if self.root == "/" else None
        idle, how = [], "lastlog"
        if lastlog:
            _rc, out, _err = self.run([lastlog, "-b", str(max_days)])
            old = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
            idle = [n for n in candidates if n in old]
        else:
            how = "password last changed (no lastlog on this host)"
            for n in candidates:
                changed = _num(shadow[n][2])
                if changed is None or now_days - changed > max_days:
                    idle.append(n)
        if idle:
            return False, f"unused > {max_days} days and not locked ({how}): {_listed(idle)}", expected
        return True, f"{len(candidates)} active account(s) used within {max_days} days ({how})", expected

    # -- services, packages, commands, updates, firewall

    def processes(self):
        names = set()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/comm") as f:
                    names.add(f.read().strip())
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    first = f.read().split(b"\0", 1)[0].decode(errors="replace")
                if first:
                    names.add(os.path.basename(first.split()[0]))
            except OSError:
                continue
        return names

    def check_service(self, check):
        names = check["names"]
        systemd = os.path.isdir("/run/systemd/system")
        running = []
        if systemd:
            systemctl = self.binary("systemctl", ("/usr/bin", "/bin"))
            for name in names:
                _rc, out, _ = self.run([systemctl, "is-active", name])
                if out.strip() == "active":
                    running.append(name)
            how = "systemctl is-active"
        else:
            procs = self.cached("procs", self.processes)
            running = [n for n in names if n in procs]
            how = "process list (no systemd)"
        expected = "{} {}".format(" or ".join(names), "running" if check["state"] == "running" else "not running")
        if check["state"] == "running":
            return (
                bool(running),
                ("running: {} ({})".format(", ".join(running), how))
                if running
                else "none of {} running ({})".format(", ".join(names), how),
                expected,
            )
        return (
            not running,
            ("running: {} ({})".format(", ".join(running), how)) if running else f"not running ({how})",
            expected,
        )

    def packages(self):
        dpkg = self.binary("dpkg-query", ("/usr/bin",))
        if dpkg:
            _rc, out, _err = self.run(
                [dpkg, "-W", "-f", "${Package} ${db:Status-Abbrev} ${Version}\n"], timeout=max(self.timeout, 60)
            )
            found = {}
            for line in out.splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[1].startswith("ii"):
                    found[parts[0]] = parts[-1]
            return found, "dpkg"
        rpm = self.binary("rpm", ("/usr/bin", "/bin"))
        if rpm:
            _rc, out, _err = self.run(
                [rpm, "-qa", "--qf", "%{NAME} %{VERSION}-%{RELEASE}\n"], timeout=max(self.timeout, 60)
            )
            return dict(line.split(None, 1) for line in out.splitlines() if " " in line), "rpm"
        raise CheckError("no package manager database (dpkg or rpm) on this host")

    def check_package(self, check):
        found, how = self.cached("packages", self.packages)
        installed = [f"{n} {found[n]}" for n in check["names"] if n in found]
        if check["state"] == "absent":
            expected = "none of {} installed".format(", ".join(check["names"]))
            return (
                not installed,
                ("installed: " + ", ".join(installed)) if installed else f"none installed ({how})",
                expected,
            )
        expected = "one of {} installed".format(", ".join(check["names"])) + (
            " >= {}".format(check["min_version"]) if check.get("min_version") else ""
        )
        if not installed:
            return False, "none of {} installed ({})".format(", ".join(check["names"]), how), expected
        if check.get("min_version"):
            ok = any(_version_ge(found[n], check["min_version"]) for n in check["names"] if n in found)
            return ok, "installed: " + ", ".join(installed), expected
        return True, "installed: " + ", ".join(installed), expected

    def check_command(self, check):
        argv = list(check["argv"])
        exe = argv[0] if os.path.isabs(argv[0]) else self.binary(argv[0], ("/usr/bin", "/usr/sbin", "/bin", "/sbin"))
        if not exe or not os.path.exists(exe):
            raise NotApplicable(f"{argv[0]} is not installed")
        rc, out, err = self.run([exe, *argv[1:]])
        problems, expected = [], []
        if "rc" in check:
            expected.append("exit {}".format(check["rc"]))
            if rc != check["rc"]:
                problems.append(f"exit {rc}")
        if check.get("stdout_match"):
            expected.append("output matches /{}/".format(check["stdout_match"]))
            if not re.search(check["stdout_match"], out, re.M):
                problems.append("output does not match")
        if check.get("stdout_no_match"):
            expected.append("output does not match /{}/".format(check["stdout_no_match"]))
            if re.search(check["stdout_no_match"], out, re.M):
                problems.append("output matches /{}/".format(check["stdout_no_match"]))
        first = (out.strip() or err.strip()).splitlines()[:3]
        return (
            not problems,
            "{}: exit {}; {}".format(" ".join(argv), rc, " | ".join(first)[:300]),
            ", ".join(expected) or "exit 0",
        )

    def check_updates(self, check):
        limit = _num(check.get("max", 0)) or 0
        expected = f"at most {limit} pending security updates"
        apt = self.binary("apt-get", ("/usr/bin",))
        if apt:
            rc, out, err = self.run(
                [
                    apt,
                    "-s",
                    "-o",
                    "Debug::NoLocking=1",
                    "-o",
                    "APT::Get::Show-User-Simulation-Note=false",
                    "dist-upgrade",
                ],
                timeout=max(self.timeout, 120),
            )
            if rc != 0:
                raise CheckError(f"apt-get -s dist-upgrade failed: {(err.strip().splitlines() or [rc])[-1]}")
            pending = [
                line.split()[1]
                for line in out.splitlines()
                if line.startswith("Inst ") and re.search(r"securi", line, re.I)
            ]
            source = "apt-get -s dist-upgrade, package lists as last updated"
        else:
            dnf = self.binary("dnf", ("/usr/bin",)) or self.binary("yum", ("/usr/bin",))
            if not dnf:
                raise NotApplicable("neither apt-get nor dnf/yum is installed")
            rc, out, err = self.run(
                [dnf, "-q", "-C", "updateinfo", "list", "--security"], timeout=max(self.timeout, 120)
            )
            pending = [line.split()[-1] for line in out.splitlines() if line.strip()]
            source = "dnf updateinfo --security (cache)"
        observed = "{} pending security update(s){} ({})".format(
            len(pending),
            (": " + _listed(sorted(set(pending)))) if pending else "",
            source,
        )
        return len(pending) <= limit, observed, expected

    def check_firewall(self, check):
        expected = "an input filter: nftables or iptables with a drop policy or rules"
        nft = self.binary("nft")
        if nft:
            rc, out, err = self.run([nft, "list", "ruleset"])
            if rc == 0:
                chains = re.findall(r"chain\s+\S+\s*\{([^}]*)\}", out)
                inputs = [c for c in chains if "hook input" in c]
                rules = sum(
                    len([line for line in c.splitlines() if line.strip() and "hook input" not in line]) for c in inputs
                )
                if any("policy drop" in c for c in inputs) or rules:
                    return (
                        True,
                        "nftables: {} input chain(s), {} rule(s){}".format(
                            len(inputs), rules, ", policy drop" if any("policy drop" in c for c in inputs) else ""
                        ),
                        expected,
                    )
                return False, f"nftables: no input filtering ({len(inputs)} input chains, no rules)", expected
        ipt = self.binary("iptables")
        if ipt:
            rc, out, err = self.run([ipt, "-S", "INPUT"])
            if rc != 0:
                raise CheckError(f"iptables -S INPUT failed: {err.strip()}")
            policy_drop = "-P INPUT DROP" in out
            rules = [line for line in out.splitlines() if line.startswith("-A INPUT")]
            ok = policy_drop or bool(rules)
            return (
                ok,
                "iptables: {}, {} INPUT rule(s)".format("policy DROP" if policy_drop else "policy ACCEPT", len(rules)),
                expected,
            )
        return False, "no firewall: neither nft nor iptables is installed", expected

    # -- databases

    def database(self, engine, name=None):
        for db in self.databases:
            if db.get("type") == engine and (not name or db.get("name") == name):
                port, user, database = DB_DEFAULTS[engine]
                return dict(
                    db,
                    host=db.get("host") or "127.0.0.1",
                    port=db.get("port") or port,
                    user=db.get("user") or user,
                    database=db.get("database") or database,
                )
        raise NotApplicable(f"no {engine} server configured for this host (oa_audit_databases / oa_health_databases)")

    def query(self, db, sql):
        if db["type"] == "postgresql":
            client = self.module.get_bin_path("psql")
            if not client:
                raise CheckError("psql (PostgreSQL client) is not installed")
            env = {
                "PGCONNECT_TIMEOUT": str(max(2, self.timeout)),
                "PGAPPNAME": "oaops_audit",
                "PGOPTIONS": "-c default_transaction_read_only=on",
            }
            if db.get("password"):
                env["PGPASSWORD"] = db["password"]
            argv = [
                client,
                "-X",
                "-At",
                "-F",
                "\t",
                "-q",
                "-w",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(db["host"]),
                "-p",
                str(db["port"]),
                "-U",
                db["user"],
                "-d",
                db["database"],
                "-f",
                "-",
            ]
        else:
            client = self.module.get_bin_path("mariadb") or self.module.get_bin_path("mysql")
            if not client:
                raise CheckError("mariadb or mysql client is not installed")
            env = {"MYSQL_PWD": db["password"]} if db.get("password") else {}
            argv = [
                client,
                "--batch",
                "--skip-column-names",
                f"--connect-timeout={max(2, self.timeout)}",
                "-h",
                str(db["host"]),
                "-P",
                str(db["port"]),
                "-u",
                db["user"],
            ]
        rc, out, err = self.run(argv, data=sql.rstrip().rstrip(";") + ";\n", env=env)
        if rc != 0:
            raise CheckError("{} query failed: {}".format(db["type"], (err.strip().splitlines() or [f"exit {rc}"])[-1]))
        return [line.split("\t") for line in out.splitlines()]

    def check_sql(self, check):
        db = self.database(check["engine"], check.get("database"))
        rows = self.query(db, check["query"])
        observed = rows[0][0] if rows and rows[0] else None
        ok = compare(observed, check["op"], check["value"])
        where = "{}@{}:{}".format(db["user"], db["host"], db["port"])
        shown = observed if observed is not None else "(no row)"
        return (
            ok,
            "{} -> {} ({})".format(check["query"][:120], shown, where),
            expectation("result", check["op"], check["value"]),
        )

    def hba_rules(self, path):
        if path:
            path = self.p(path)
            if not os.path.exists(path):
                raise NotApplicable(f"{path} does not exist")
            rules = []
            for n, line in enumerate(_read(path).splitlines(), 1):
                text = line.split("#", 1)[0].split()
                if not text:
                    continue
                if text[0] == "local":
                    rules.append(
                        {
                            "line": n,
                            "type": "local",
                            "database": text[1],
                            "user": text[2],
                            "address": "",
                            "method": text[3] if len(text) > 3 else "",
                        }
                    )
                elif len(text) >= 5:
                    address, rest = text[3], text[4:]
                    if "/" not in address and rest and re.match(r"^\d+\.\d+\.\d+\.\d+$", rest[0]):
                        address, rest = address + "/" + rest[0], rest[1:]  # address + netmask form
                    rules.append(
                        {
                            "line": n,
                            "type": text[0],
                            "database": text[1],
                            "user": text[2],
                            "address": address,
                            "method": rest[0] if rest else "",
                        }
                    )
            return rules, path
        db = self.database("postgresql")
        rows = self.query(
            db,
            "SELECT line_number, type, array_to_string(database, ','), array_to_string(user_name, ','), "
            "coalesce(address, '') || coalesce('/' || netmask, ''), auth_method FROM pg_hba_file_rules "
            "WHERE error IS NULL ORDER BY line_number",
        )
        rules = [
            {"line": int(r[0]), "type": r[1], "database": r[2], "user": r[3], "address": r[4], "method": r[5]}
            for r in rows
            if len(r) >= 6
        ]
        return rules, "pg_hba_file_rules of {}:{}".format(db["host"], db["port"])

    def check_pg_hba(self, check):
        path = check.get("file") or ""
        rules, where = self.cached(("hba", path), lambda: self.hba_rules(path))

        def show(r):
            return "line {}: {} {} {} {} {}".format(
                r["line"],
                r["type"],
                r["database"],
                r["user"],
                r["address"],
                r["method"],
            )

        if check["test"] == "no_trust":
            bad = [show(r) for r in rules if r["method"] == "trust"]
            expected = "no pg_hba rule with method trust"
        else:
            bad = []
            for r in rules:
                if not r["type"].startswith("host") or r["method"] == "reject":
                    continue
                users = set(r["user"].split(","))
                if not users & {"all", "postgres"}:
                    continue
                if not _loopback(r["address"]):
                    bad.append(show(r))
            expected = "no host rule lets postgres/all in from a non-loopback address"
        observed = (f"{where}: {_listed(bad)}") if bad else f"{len(rules)} rules in {where}, none offending"
        return not bad, observed, expected

    def check_sql_rows(self, check):
        db = self.database(check["engine"], check.get("database"))
        rows = self.query(db, check["query"])
        rows = [r for r in rows if any(c.strip() for c in r)]
        where = "{}@{}:{}".format(db["user"], db["host"], db["port"])
        what = check.get("what") or "offending rows"
        asked = check["query"][:120]
        if rows:
            listed = _listed(" ".join(r) for r in rows)
            return False, f"{asked} -> {len(rows)} {what}: {listed} ({where})", f"no {what}"
        return True, f"{asked} -> no {what} ({where})", f"no {what}"

    # -- key/value configuration files (auditd.conf, journald.conf, pwquality.conf, redis.conf...)

    def conf_values(self, paths, separator):
        files, values = [], {}
        for pattern in paths:
            files.extend(p for p in sorted(glob.glob(self.p(pattern))) if os.path.isfile(p))
        for path in files:
            for n, line in enumerate(_read(path).splitlines(), 1):
                text = line.split("#", 1)[0].strip()
                if not text or (text.startswith("[") and text.endswith("]")):
                    continue  # comments and ini sections ([Journal])
                if separator == "=":
                    key, eq, value = text.partition("=")
                    if not eq:
                        continue
                else:
                    key, _, value = text.partition(" ")
                values[key.strip().lower()] = (value.strip().strip('"'), f"{path}:{n}")  # the last one wins
        return files, values

    def check_conf(self, check):
        paths, key = list(check["paths"]), check["key"].lower()
        files, values = self.cached(
            ("conf", tuple(paths), check.get("separator", "=")),
            lambda: self.conf_values(paths, check.get("separator", "=")),
        )
        expected = expectation(check["key"], check["op"], check["value"]) + " in " + ", ".join(paths)
        if not files:
            missing = check.get("missing", "fail")
            if missing == "not_applicable":
                raise NotApplicable("none of {} exists".format(", ".join(paths)))
            return missing == "pass", "none of {} exists".format(", ".join(paths)), expected
        if key in values:
            value, where = values[key]
            return (
                compare(value, check["op"], check["value"]),
                "{} = {} ({})".format(check["key"], value, where),
                expected,
            )
        default = check.get("default")
        if default is None:
            return False, "{} not set in {}".format(check["key"], ", ".join(files)), expected
        return (
            compare(default, check["op"], check["value"]),
            "{} not set: default {}".format(check["key"], default),
            expected,
        )

    # -- mandatory access control

    def check_mac(self, check):
        test = check["test"]
        cmdline = _read(self.p("/proc/cmdline"))
        off = re.findall(r"\b(?:apparmor|selinux|security)=(?:0|none)\b", cmdline)
        enforce = self.p("/sys/fs/selinux/enforce")
        expected = "SELinux or AppArmor " + (
            "enforcing, no profile in complain mode" if test == "enforcing" else "enabled"
        )
        if os.path.exists(enforce):
            running = "enforcing" if _read(enforce).strip() == "1" else "permissive"
            _files, cfg = self.conf_values(["/etc/selinux/config"], "=")
            persisted = cfg.get("selinux", ("(not set)", ""))[0]
            shown = f"SELinux {running} (running); SELINUX={persisted} (/etc/selinux/config)"
            if test == "enforcing":
                return running == "enforcing" and persisted == "enforcing" and not off, shown, expected
            return persisted in ("enforcing", "permissive") and not off, shown, expected
        enabled = _read(self.p("/sys/module/apparmor/parameters/enabled")).strip()
        if enabled == "Y":
            listing = self.p("/sys/kernel/security/apparmor/profiles")
            try:
                with open(listing) as f:
                    modes = re.findall(r"\((\w+)\)\s*$", f.read(), re.M)
            except OSError as exc:
                raise CheckError(f"cannot read {listing}: {exc.strerror} (run with become)") from None
            counts = {m: modes.count(m) for m in sorted(set(modes))}
            shown = "AppArmor enabled; profiles: {}{}".format(
                ", ".join(f"{n} {m}" for m, n in counts.items()) or "none loaded",
                "; kernel command line disables it: " + " ".join(off) if off else "",
            )
            if test == "enforcing":
                return counts.get("enforce", 0) > 0 and not counts.get("complain") and not off, shown, expected
            return bool(modes) and not off, shown, expected
        return (
            False,
            "no mandatory access control: neither SELinux ({}) nor AppArmor is active{}".format(
                enforce, "; " + " ".join(off) if off else ""
            ),
            expected,
        )

    # -- audit rules: loaded (auditctl -l) and persisted (rules.d) both

    def audit_persisted(self):
        files = sorted(glob.glob(self.p("/etc/audit/rules.d/*.rules")))
        if not files and os.path.isfile(self.p("/etc/audit/audit.rules")):
            files = [self.p("/etc/audit/audit.rules")]
        lines = []
        for path in files:
            for n, line in enumerate(_read(path).splitlines(), 1):
                text = " ".join(line.split("#", 1)[0].split())
                if text:
                    lines.append((text, f"{path}:{n}"))
        return lines

    def audit_loaded(self, loaded):
        if loaded:
            path = self.p(loaded)
            if not os.path.isfile(path):
                return None, f"{path} does not exist"
            return [" ".join(t.split()) for t in _read(path).splitlines() if t.strip()], path
        auditctl = self.binary("auditctl")
        if not auditctl:
            return None, "auditctl is not installed"
        rc, out, err = self.run([auditctl, "-l"])
        if rc != 0:
            return None, "auditctl -l failed: {}".format((err.strip().splitlines() or [f"exit {rc}"])[-1])
        return [
            " ".join(t.split()) for t in out.splitlines() if t.strip() and not t.startswith("No rules")
        ], "auditctl -l"

    def check_audit_rules(self, check):
        patterns = list(check["patterns"])
        persisted = self.cached("audit-persisted", self.audit_persisted)
        expected = "audit rules matching {} loaded and persisted".format(" ; ".join(f"/{p}/" for p in patterns))
        lacking_p = [p for p in patterns if not any(re.search(p, t) for t, _ in persisted)]
        hits = [w for t, w in persisted if any(re.search(p, t) for p in patterns)]
        shown = [
            "persisted: "
            + (("missing " + "; ".join(f"/{p}/" for p in lacking_p)) if lacking_p else "present at " + _listed(hits))
        ]
        ok = not lacking_p and bool(persisted)
        if not persisted:
            shown[0] = "persisted: no rules in /etc/audit/rules.d or audit.rules"
        if check.get("loaded_too", True):
            loaded, source = self.cached(
                ("audit-loaded", check.get("loaded") or ""), lambda: self.audit_loaded(check.get("loaded") or "")
            )
            if loaded is None:
                ok = False
                shown.append(f"loaded: unknown ({source})")
            else:
                lacking_l = [p for p in patterns if not any(re.search(p, t) for t in loaded)]
                ok = ok and not lacking_l
                shown.append(
                    "loaded ({}): {}".format(
                        source, ("missing " + "; ".join(f"/{p}/" for p in lacking_l)) if lacking_l else "present"
                    )
                )
        return ok, "; ".join(shown), expected

    # -- mounts: running (/proc/self/mounts) and persisted (/etc/fstab)

    def mount_table(self):
        running, fstab = {}, {}
        source = self.p("/proc/self/mounts")
        if not os.path.exists(source):
            source = self.p("/proc/mounts")
        for line in _read(source).splitlines():
            parts = line.split()
            if len(parts) >= 4:
                running[parts[1].replace("\\040", " ")] = (parts[0], parts[2], parts[3])  # the last mount wins
        for n, line in enumerate(_read(self.p("/etc/fstab")).splitlines(), 1):
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 4:
                fstab[parts[1]] = (parts[3], f"/etc/fstab:{n}")
        return running, fstab

    def check_mount(self, check):
        path = check["path"]
        running, fstab = self.cached("mounts", self.mount_table)
        mounted, saved = running.get(path), fstab.get(path)
        written = "{} ({})".format(*saved) if saved else "no /etc/fstab entry (mounted by a systemd unit or by hand)"
        if check["test"] == "separate":
            shown = (
                (f"{path} mounted from {mounted[0]} ({mounted[1]})" if mounted else f"{path} is not a separate mount")
                + "; "
                + written
            )
            return mounted is not None, shown, f"{path} is a separate file system"
        need = list(check["options"])
        expected = "{} mounted with {}, running and in /etc/fstab".format(path, ",".join(need))
        if mounted is None:
            raise NotApplicable(f"{path} is not a separate mount (its separate-partition control covers that)")
        have = set(mounted[2].split(","))
        lacking = [o for o in need if o not in have]
        lacking_saved = [o for o in need if saved and o not in saved[0].split(",")]
        shown = "{} running with {}{}; {}{}".format(
            path,
            mounted[2],
            " (lacks {})".format(",".join(lacking)) if lacking else "",
            written,
            " (lacks {})".format(",".join(lacking_saved)) if lacking_saved else "",
        )
        return not lacking and not lacking_saved, shown, expected

    # -- kernel modules: not loaded and disabled in modprobe.d

    def modprobe(self):
        files = {}
        for folder in reversed(MODPROBE_DIRS):
            for path in glob.glob(self.p(folder) + "/*.conf"):
                files[os.path.basename(path)] = path
        install, blacklist = {}, {}
        for name in sorted(files):
            for n, line in enumerate(_read(files[name]).splitlines(), 1):
                parts = line.split("#", 1)[0].split()
                where = f"{files[name]}:{n}"
                if len(parts) >= 3 and parts[0] == "install":
                    install.setdefault(parts[1].replace("-", "_"), (" ".join(parts[2:]), where))
                elif len(parts) >= 2 and parts[0] == "blacklist":
                    blacklist.setdefault(parts[1].replace("-", "_"), where)
        loaded = {line.split()[0] for line in _read(self.p("/proc/modules")).splitlines() if line.strip()}
        return install, blacklist, loaded

    def check_kmod(self, check):
        name = check["module"].replace("-", "_")
        install, blacklist, loaded = self.cached("modprobe", self.modprobe)
        rule = install.get(name)
        disabled = bool(rule and re.search(r"(^|/)(false|true)$", rule[0].split()[0]))
        shown = "{} {} (/proc/modules); {}; {}".format(
            name,
            "loaded" if name in loaded else "not loaded",
            "install {} ({})".format(*rule) if rule else "no install rule in modprobe.d",
            f"blacklisted ({blacklist[name]})" if name in blacklist else "not blacklisted",
        )
        return name not in loaded and disabled, shown, f"{name} not loaded, `install {name} /bin/false` in modprobe.d"

    # -- Redis: administrator authentication

    def redis_call(self, db, command, auth=True):
        try:
            sock = socket.create_connection((db["host"], int(db["port"])), timeout=self.timeout)
        except OSError as exc:
            raise CheckError("redis {}:{} unreachable: {}".format(db["host"], db["port"], exc)) from None
        try:
            reader = sock.makefile("rb")
            if auth and db.get("password"):
                args = ["AUTH", db["user"], db["password"]] if db.get("user") else ["AUTH", db["password"]]
                sock.sendall(_resp(args))
                _resp_read(reader)
            sock.sendall(_resp(command))
            return _resp_read(reader)
        except OSError as exc:
            raise CheckError(f"redis {' '.join(command[:2])} failed: {exc}") from None
        finally:
            sock.close()

    def check_redis(self, check):
        db = self.database("redis")
        where = "redis {}:{}".format(db["host"], db["port"])
        test = check["test"]
        if test == "auth_required":
            reply = self.redis_call(db, ["PING"], auth=False)
            ok = isinstance(reply, Exception) and "NOAUTH" in str(reply)
            return ok, f"PING without a password -> {reply} ({where})", "an unauthenticated PING is refused (NOAUTH)"
        if test == "protected_mode":
            reply = self.redis_call(db, ["CONFIG", "GET", "protected-mode"])
            if isinstance(reply, Exception):
                raise CheckError(f"CONFIG GET protected-mode: {reply} ({where})")
            value = reply[1] if isinstance(reply, list) and len(reply) > 1 else "(none)"
            return value == "yes", f"protected-mode {value} ({where})", "protected-mode yes"
        reply = self.redis_call(db, ["ACL", "LIST"])
        if isinstance(reply, Exception):
            raise NotApplicable(f"ACL LIST: {reply} (Redis before 6 has no ACL) ({where})")
        # "user NAME flags...": the name and flags are the evidence
        bad = [u.split(" ", 1)[-1] for u in reply if " on " in f" {u} " and "nopass" in u.split()]
        return (
            not bad,
            ("ACL users with nopass: " + _listed(bad))
            if bad
            else f"{len(reply)} ACL user(s), each with a password ({where})",
            "no enabled ACL user with nopass",
        )

    # -- nginx

    def nginx_config(self, conf):
        if not os.path.exists(conf):
            raise NotApplicable(f"{conf} does not exist (no nginx here)")
        nginx = self.binary("nginx")
        if not nginx:
            raise NotApplicable("nginx is not installed")
        rc, out, err = self.run([nginx, "-T", "-q", "-c", conf])
        if rc != 0:
            raise CheckError("nginx -T -c {} failed: {}".format(conf, (err.strip().splitlines() or [f"exit {rc}"])[-1]))
        lines = [line.split("#", 1)[0] for line in out.splitlines() if not line.startswith("# configuration file")]
        return "\n".join(lines)

    def check_nginx(self, check):
        text = self.cached(("nginx", check["conf"]), lambda: self.nginx_config(check["conf"]))
        if check.get("requires_ssl") and not re.search(r"(^|[;{\s])listen\s+[^;]*\bssl\b|(^|[;{\s])ssl\s+on\s*;", text):
            raise NotApplicable("no server listens with ssl in {}".format(check["conf"]))
        values = [
            " ".join(v.split())
            for v in re.findall(r"(?:^|[;{{}}\s]){}\s+([^;]*);".format(re.escape(check["directive"])), text)
        ]
        expected = expectation(check["directive"], check["op"], check["value"])
        if not values:
            default = check.get("default")
            ok = compare(default, check["op"], check["value"])
            return (
                ok,
                "{} not set: nginx default {} (nginx -T -c {})".format(check["directive"], default, check["conf"]),
                expected,
            )
        bad = [v for v in values if not compare(v, check["op"], check["value"])]
        shown = "; ".join("{} {}".format(check["directive"], v) for v in (bad or values)[:5])
        return not bad, "{} (nginx -T -c {})".format(shown, check["conf"]), expected

    # -- HTTP

    def fetch(self, url):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CheckError(f"{url!r} is not an http(s) URL")
        if parts.scheme == "https":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # headers are checked here; certificates by the health probe
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=self.timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        try:
            conn.request("GET", path, headers={"User-Agent": "oaops-audit"})
            resp = conn.getresponse()
            resp.read(65536)
            return resp.status, resp.getheaders()
        except (OSError, http.client.HTTPException) as exc:
            raise CheckError(f"GET {url} failed: {exc}") from None
        finally:
            conn.close()

    def check_http(self, check):
        url, test = check["url"], check["test"]
        status, headers = self.cached(("http", url), lambda: self.fetch(url))
        names = {k.lower(): v for k, v in headers}
        if test in ("headers_present", "headers_absent"):
            wanted = list(check.get("headers") or ())
            missing = [h for h in wanted if h.lower() not in names]
            present = [h for h in wanted if h.lower() in names]
            if test == "headers_present":
                observed = "GET {} -> {}; present: {}; missing: {}".format(
                    url,
                    status,
                    ", ".join(f"{h}: {names[h.lower()]}" for h in present) or "none",
                    ", ".join(missing) or "none",
                )
                return not missing, observed, "response headers include {}".format(", ".join(wanted))
            return (
                not present,
                "GET {} -> {}; present: {}".format(url, status, ", ".join(present) or "none"),
                "response headers exclude {}".format(", ".join(wanted)),
            )
        if test == "redirect_https":
            location = names.get("location", "")
            ok = status in (301, 302, 303, 307, 308) and location.lower().startswith("https://")
            return (
                ok,
                "GET {} -> {}{}".format(url, status, f" Location: {location}" if location else ""),
                "a redirect to https://",
            )
        if test == "cookie_flags":
            cookies = [v for k, v in headers if k.lower() == "set-cookie"]
            if not cookies:
                raise NotApplicable(f"GET {url} set no cookie")
            flags = list(check.get("flags") or ())
            bad = []
            for c in cookies:
                attrs = {a.strip().split("=", 1)[0].lower() for a in c.split(";")[1:]}
                lacking = [f for f in flags if f.lower() not in attrs]
                if lacking:
                    bad.append("{} lacks {}".format(c.split("=", 1)[0], "/".join(lacking)))
            return (
                not bad,
                "GET {}: {} cookie(s){}".format(url, len(cookies), "; " + "; ".join(bad) if bad else ", all flagged"),
                "every cookie has {}".format(", ".join(flags)),
            )
        if test == "https":
            secure = url.lower().startswith("https://")
            return (
                secure and status < 500,
                "GET {} -> {} over {}".format(url, status, "TLS" if secure else "plain HTTP"),
                "an https:// login page that answers",
            )
        raise CheckError(f"unknown http test {test!r}")


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _resp(args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        data = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _resp_read(reader):
    """One RESP reply; an error reply is returned as an exception object, not raised."""
    line = reader.readline()
    if not line:
        raise OSError("connection closed")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n").decode(errors="replace")
    if kind == b"+":
        return rest
    if kind == b"-":
        return RuntimeError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        if int(rest) < 0:
            return None
        data = reader.read(int(rest) + 2)
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        return [_resp_read(reader) for _ in range(max(0, int(rest)))]
    raise OSError(f"unexpected reply {line[:40]!r}")


def _logrotate_directives(text):
    d = {}
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        if parts[0] in ("daily", "weekly", "monthly", "yearly"):
            d["period"] = parts[0]
        elif parts[0] in ("rotate", "maxage") and len(parts) > 1 and parts[1].isdigit():
            d[parts[0]] = parts[1]
    return d


def _loopback(address):
    if address in ("", "samehost", "localhost"):
        return True
    try:
        return ipaddress.ip_network(address, strict=False).is_loopback
    except ValueError:
        return False  # a host name, samenet, all: reachable from elsewhere


def _user(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _version_ge(have, want):
    def key(v):
        return [int(x) if x.isdigit() else x for x in re.split(r"[.\-+~:]", v)]

    try:
        return key(have) >= key(want)
    except TypeError:
        return have >= want


def evaluate_control(auditor, control, profile, host_params, host_layers):
    """One result dict; never raises."""
    result = {"id": control["id"], "layer": control["layer"], "severity": control["severity"]}
    if host_layers and control["layer"] not in host_layers:
        return dict(
            result,
            status="not_applicable",
            observed="host is not in the {} layer group (R2)".format(control["layer"]),
            expected="",
        )
    params = parameters_for(control, profile, host_params)
    empty = empty_params(control["check"], params)
    if empty:
        return dict(
            result,
            status="not_applicable",
            expected="",
            observed="parameter {} is not set for this host (oa_audit_params)".format(", ".join(empty)),
        )
    check = substitute(control["check"], params)
    try:
        ok, observed, expected = auditor.evaluate(check)
        return dict(result, status="pass" if ok else "fail", observed=observed, expected=expected)
    except NotApplicable as exc:
        return dict(result, status="not_applicable", observed=str(exc), expected="")
    except CheckError as exc:
        return dict(result, status="error", observed=str(exc), expected="")
    except Exception as exc:  # a bug in one check must not hide the other results
        return dict(result, status="error", observed=f"{type(exc).__name__}: {exc}", expected="")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            catalog=dict(type="list", elements="dict", required=True),
            profile=dict(type="dict", default={}),
            parameters=dict(type="dict", default={}),
            groups=dict(type="list", elements="str", default=[]),
            databases=dict(type="list", elements="dict", default=[], no_log=False),
            only=dict(type="list", elements="str", default=[]),
            timeout=dict(type="int", default=20),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )
    started = time.monotonic()
    p = module.params
    for db in p["databases"]:
        if db.get("password"):
            module.no_log_values.add(db["password"])
    chosen = select(p["catalog"], p["profile"])
    if p["only"]:
        known = {c["id"] for c in chosen}
        unknown = [i for i in p["only"] if i not in known]
        if unknown:
            module.fail_json(
                msg="only: {} not selected by the profile (or not in the catalog)".format(", ".join(unknown))
            )
        chosen = [c for c in chosen if c["id"] in p["only"]]
    host_layers = set(p["groups"]) & set(LAYERS)
    deferred = [c["id"] for c in chosen if c["check"].get("kind") == "records"]
    local = [c for c in chosen if c["check"].get("kind") != "records"]
    auditor = Auditor(module)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(
            pool.map(lambda c: evaluate_control(auditor, c, p["profile"], p["parameters"], host_layers), local)
        )
    counts = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    failing = [
        "{} {}: {}".format(r["status"], r["id"], r["observed"][:120])
        for r in results
        if r["status"] in ("fail", "error")
    ]
    # The catalog went in; echoing it back as `invocation` would make every host's result ~300 kB
    # that the controller parses, scans for secrets and (in oaops) records.
    shown_args = dict(p, catalog="<{} controls>".format(len(p["catalog"])))
    module.exit_json(
        invocation={"module_args": shown_args},
        changed=False,
        msg="{} controls: {}".format(len(results), ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))),
        oaops={
            "kind": "audit",
            "profile": p["profile"].get("name", ""),
            "results": results,
            "deferred": deferred,
            "counts": counts,
            "failing": failing,
            "check_mode": module.check_mode,
            "duration_ms": int((time.monotonic() - started) * 1000),
        },
    )


if __name__ == "__main__":
    main()
