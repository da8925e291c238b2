"""Benchmark: health over real sshd on loopback (issue 16, point 7).

N hosts, each a distinct 127.0.x.y address served by a few sshd daemons (16 addresses each,
sshd's limit, tests/fixtures/sshd.py), reached as the current user (root) with a generated key.
The same inventory and playbooks/health.yml (layers hardware + os), forks 20 and 50, variants
rotated round by round:
  plain    `ansible-playbook playbooks/health.yml`
  oaops    `oaops health` (ansible-runner, every event recorded into SQLite)
  mitogen  plain with the mitogen_linear strategy (PyPI `mitogen`, when installed and loadable)
  node     `oaops health` with every host's unit on an execution node (oaops.yml `execution_nodes:`):
           transmit, ssh to the node (the first daemon's address, this venv's ansible-runner
           worker), process; the node's ansible-playbook reaches the hosts over ssh as the others do
  pty      plain behind a pseudo-terminal (`script`), as ansible-runner's pexpect runs it (attribution)
  callback plain with ansible-runner's event callback (awx_display) writing its event files, but no
           ansible-runner around it and no records: what the callback alone costs (attribution)
  journal  plain with oaops's event callback (oaops_events) writing its journal, with no oaops
           process reading the pipe: what oaops's callback costs in ansible-playbook (attribution)

Each run gets a fresh ControlPath folder (ControlMaster=auto, ControlPersist=60s as in
ansible.cfg), and its persistent masters are stopped and reaped after it, so no run reuses
another's connections and their CPU counts. Host key checking is off through the environment
(ANSIBLE_HOST_KEY_CHECKING, ANSIBLE_SSH_ARGS), whatever ansible.cfg says.

Per run: wall time; controller CPU (user + sys of the whole process tree on the controller side,
ssh clients included: this process is their subreaper); for oaops, the CPU of the oaops process
itself (ingest, events, DB writes) and its wall time split into before the playbook (start,
imports, records), the playbook as oaops runs it, and after it (results, table); the CPU of the
sshd side (the daemons' reaped children: the "remote" work, on the same 2 cores); the load
average before the run.

    .venv/bin/python benchmarks/bench_ssh.py --hosts 100 300 --forks 20 50 --repeat 2 --json /tmp/ssh.json
    .venv/bin/python benchmarks/bench_ssh.py --hosts 100 --variants plain oaops node callback pty --quick-warmup
    .venv/bin/python benchmarks/bench_ssh.py --hosts 100 --forks 20 --profile /tmp/oaops.prof
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_health import BIN, site  # noqa: E402
from tests.fixtures.sshd import SshHost, keygen, loopback_addresses, start_listeners  # noqa: E402

SSH_ARGS = (
    "-o ControlMaster=auto -o ControlPersist=60s -o ServerAliveInterval=15 "
    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
)
PR_SET_CHILD_SUBREAPER = 36
NODE_UNIT = "branch_a"  # a unit of the starter oaops.yml
# Runs oaops in this interpreter and writes the process's own CPU (not its children's) at exit.
# Also when the playbook's part (runs/local.execute) started and ended, to split the wall time
# into oaops before the playbook, the playbook as oaops runs it, and oaops after it.
SELF_USAGE = (
    "import atexit, json, os, resource, sys, time\n"
    "t0 = time.monotonic()\n"
    "marks = {}\n"
    "import oaops.runs.local as local\n"
    "_execute = local.execute\n"
    "def execute(*a, **kw):\n"
    "    marks['pre_s'] = time.monotonic() - t0\n"
    "    try:\n"
    "        return _execute(*a, **kw)\n"
    "    finally:\n"
    "        marks['run_s'] = time.monotonic() - t0 - marks['pre_s']\n"
    "local.execute = execute\n"
    "def _u():\n"
    "    r = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    if 'run_s' in marks:\n"
    "        marks['post_s'] = time.monotonic() - t0 - marks['pre_s'] - marks['run_s']\n"
    "    marks['cpu_s'] = r.ru_utime + r.ru_stime\n"
    "    open(os.environ['BENCH_SELF_USAGE'], 'w').write(json.dumps(marks))\n"
    "atexit.register(_u)\n"
    "from oaops.cli.main import entry\n"
    "sys.argv[0] = 'oaops'\n"
    "entry()\n"
)


def write_inventory(path: Path, daemons: list[SshHost], n: int, key: Path) -> list[str]:
    hosts: dict[str, dict[str, Any]] = {}
    for daemon in daemons:
        for address in daemon.addresses:
            if len(hosts) == n:
                break
            entry = daemon.inventory_vars(address)
            # the inventory's ssh args win over ansible.cfg's (which check host keys against the
            # site's known_hosts): the benchmark's throwaway daemons are never trusted
            entry["ansible_ssh_args"] = SSH_ARGS
            entry["ansible_ssh_private_key_file"] = str(key)
            hosts[f"h{len(hosts) + 1:03d}"] = entry
    layer = {"hosts": dict.fromkeys(hosts)}  # also the unit the node variant sends to its node
    # The machine's own load (other people's work) must not turn checks critical: criticals start
    # reactions (notices, problems) that are measured elsewhere, not the recording measured here.
    # Zombies too: other people's processes on this machine are not the hosts' fault.
    shared = ("load_per_cpu", "load5_per_cpu", "load15_per_cpu", "zombies")
    high = {f"oa_health_{c}_{level}": limit for c in shared for level, limit in (("warning", 999), ("critical", 1000))}
    children = {"hardware": layer, "os": layer, f"unit_{NODE_UNIT}": layer}
    data = {"all": {"hosts": hosts, "vars": high, "children": children}}
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return list(hosts)


def _children() -> list[int]:
    me, out = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                    out.append(int(entry))
    return out


def _reaped_cpu(pid: int) -> float:
    """CPU of a process's waited-for children (cutime + cstime)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


class _ZombieReaper(threading.Thread):
    """While a run goes, reaps the orphans this subreaper adopted once they exit (not the run's
    own process, which subprocess waits for, nor the daemons)."""

    def __init__(self, keep: set[int]) -> None:
        super().__init__(daemon=True)
        self.keep = keep
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            for pid in _children():
                if pid in self.keep:
                    continue
                with contextlib.suppress(OSError, IndexError):
                    if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                        os.waitpid(pid, 0)


def _stop_orphans(keep: set[int]) -> int:
    """SIGTERM and reap what the run left behind (ControlPersist masters adopted by this
    process as subreaper), so their CPU is counted in this run's RUSAGE_CHILDREN."""
    orphans = [pid for pid in _children() if pid not in keep]
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in orphans:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    return len(orphans)


def run_once(name: str, cmd: list[str], env: dict[str, str], tmp: Path, daemons: list[SshHost]) -> dict[str, Any]:
    keep = {d.pid for d in daemons if d.pid}
    cp_dir = Path(tempfile.mkdtemp(prefix="cp-", dir=tmp))
    usage_file = tmp / f"usage-{name}"
    usage_file.unlink(missing_ok=True)
    env = {**env, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp_dir), "BENCH_SELF_USAGE": str(usage_file)}
    if "AWX_ISOLATED_DATA_DIR" in env:  # the callback variant's event files: a fresh folder each run
        shutil.rmtree(env["AWX_ISOLATED_DATA_DIR"], ignore_errors=True)
        Path(env["AWX_ISOLATED_DATA_DIR"]).mkdir()
    load = os.getloadavg()
    remote0 = sum(_reaped_cpu(p) for p in keep)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    log = tmp / f"out-{name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        reaper = _ZombieReaper(keep | {proc.pid})
        reaper.start()
        try:
            proc.wait()
        except BaseException:
            proc.terminate()
            proc.wait()
            raise
        finally:
            reaper.done.set()
            reaper.join()
    wall = time.perf_counter() - start
    masters = _stop_orphans(keep)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    time.sleep(0.5)  # the daemons reap their sessions once the masters are gone
    remote = sum(_reaped_cpu(p) for p in keep) - remote0
    text = log.read_text(errors="replace")
    row: dict[str, Any] = {
        "variant": name,
        "rc": proc.returncode,
        "wall_s": round(wall, 2),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2),
        "sshd_cpu_s": round(remote, 2),
        "load_before": [round(x, 2) for x in load],
        "masters_reaped": masters,
    }
    if usage_file.exists():
        marks = json.loads(usage_file.read_text())
        row["oaops_self_cpu_s"] = round(marks.pop("cpu_s"), 2)
        row |= {f"oaops_{k}": round(v, 2) for k, v in marks.items()}
    if proc.returncode not in (0,):
        row["tail"] = text[-600:]
    if "unreachable=1" in text or "failed=1" in text:
        row["recap_problems"] = text.count("unreachable=1") + text.count("failed=1")
    return row


def mitogen_strategy_dir() -> Path | None:
    try:
        import ansible_mitogen
    except ImportError:
        return None
    return Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"


def node_site(folder: Path, daemon: SshHost, key: Path) -> dict[str, str]:
    """A site whose oaops.yml sends the hosts' unit to an execution node: the first daemon's
    address, logged into with the benchmark's key, running this venv's ansible-runner worker."""
    import yaml

    from oaops.config import starter

    folder.mkdir()
    node = {
        "name": "bench_node",
        "host": daemon.address,
        "port": daemon.port,
        "user": daemon.user,
        "identity_file": str(key),
        "runner": str(BIN / "ansible-runner"),
        "host_key_checking": False,
        "units": [NODE_UNIT],
    }
    cfg = folder / "oaops.yml"
    cfg.write_text(starter("bench") + yaml.safe_dump({"execution_nodes": [node]}), encoding="utf-8")
    return {**site(folder), "OAOPS_CONFIG": str(cfg)}


def runner_callback_dir() -> Path:
    import ansible_runner

    return Path(ansible_runner.__file__).parent / "display_callback" / "callback"


def profile(inv: Path, forks: int, env: dict[str, str], out: Path) -> None:
    """One cProfile'd `oaops health`, summarised by where the oaops process spends its time."""
    import pstats

    # CPU time, not cProfile's default wall clock: on a loaded machine wall time is mostly waiting for a core
    code = (
        "import cProfile, sys, time\n"
        "from oaops.cli.main import main\n"
        "prof = cProfile.Profile(time.process_time)\n"
        "prof.enable()\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    prof.disable()\n"
        f"    prof.dump_stats({str(out)!r})\n"
    )
    cmd = [sys.executable, "-c", code, "health", "-i", str(inv), "-f", str(forks), "--quiet"]
    # warm as the measured rounds are: the records DB made, the inventory read once (its cache is
    # keyed by the limit, so the same command)
    warm = [sys.executable, "-m", "oaops", "health", "-i", str(inv), "-f", str(forks), "--quiet"]
    subprocess.run(warm, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=False)
    subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=False)
    stats = pstats.Stats(str(out))
    wanted = {
        "Recorder.handle (all ingest)": ("ingest.py", "handle"),
        "task_record (parse + redact)": ("ingest.py", "task_record"),
        "Recorder.flush (DB writes)": ("ingest.py", "flush"),
        "save_batch": ("runs.py", "save_batch"),
        "runner event processing": ("utils/__init__.py", "write"),
        "following the playbook's events (runs/local.py)": ("local.py", "_follow"),
        "runner.start (whole run)": ("runner.py", "start"),
    }
    totals = {label: 0.0 for label in wanted}
    for (file, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for label, (suffix, fname) in wanted.items():
            if file.endswith(suffix) and func == fname:
                totals[label] = max(totals[label], ct)
    for label, seconds in totals.items():
        print(f"  {label}: {seconds:.2f} s cumulative")
    buckets: dict[str, float] = {}
    for (file, _line, func), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        buckets[_bucket(file, func)] = buckets.get(_bucket(file, func), 0.0) + tt
    total = sum(buckets.values())
    print(f"  own CPU time by package (of {total:.1f} s under the profiler):")
    for name, seconds in sorted(buckets.items(), key=lambda kv: -kv[1])[:10]:
        print(f"    {name}: {seconds:.2f} s ({seconds / total:.0%})")


def _bucket(file: str, func: str) -> str:
    if file == "~":
        waits = ("poll", "select", "sleep", "waitpid", "acquire", "read")
        return "waiting (poll, read, sleep)" if any(w in func for w in waits) else "builtins"
    for key in ("sqlalchemy", "ansible_runner", "pexpect", "ptyprocess", "json", "yaml", "jinja2", "click", "rich"):
        if f"/{key}/" in file:
            return key
    for key in ("oaops/runs", "oaops/store", "oaops"):
        if f"/{key}/" in file:
            return key
    if "/ansible/" in file:
        return "ansible (in-process)"
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--forks", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=["plain", "oaops", "node", "mitogen"])
    parser.add_argument("--profile", type=Path, help="only one cProfile'd oaops run per size and forks")
    parser.add_argument("--json", type=Path, help="append every run's figures here (JSON lines)")
    parser.add_argument("--timeout", type=int, default=60, help="ANSIBLE_TIMEOUT (connect), every variant")
    parser.add_argument(
        "--quick-warmup",
        action="store_true",
        help="warm up on one host only (creates the records DB; the inventory cache then warms in round 1)",
    )
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the daemons and the run on the way out
    # ControlPersist masters outlive ansible-playbook: adopt them so they can be reaped and counted.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    strategy = mitogen_strategy_dir()
    variants = [v for v in args.variants if v != "mitogen" or strategy is not None]
    if "mitogen" in args.variants and strategy is None:
        print("mitogen: not installed (pip install mitogen), left out", flush=True)
    with tempfile.TemporaryDirectory(prefix="oaops-bench-ssh-") as tmpname:
        tmp = Path(tmpname)
        key = keygen(tmp / "id_ed25519", "oaops-bench")
        daemons = start_listeners(tmp / "sshd", loopback_addresses(max(args.hosts)), key, base_port=22200)
        print(f"{len(daemons)} sshd daemons on {max(args.hosts)} addresses", flush=True)
        base = {
            **os.environ,
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            # 10 s (the default) is too short to start mitogen's bootstrap on 20+ hosts at once on a
            # loaded 2-core machine ("Connection timed out"); every variant gets the same timeout.
            "ANSIBLE_TIMEOUT": str(args.timeout),
            "ANSIBLE_SSH_ARGS": SSH_ARGS,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        summary = []
        try:
            for n in args.hosts:
                inv = tmp / f"hosts-{n}.yml"
                write_inventory(inv, daemons, n, key)
                for forks in args.forks:
                    site_dir = tmp / f"site-{n}-{forks}"
                    site_dir.mkdir()
                    env = {**base, **site(site_dir)}
                    node_env = {**env, **node_site(tmp / f"node-{n}-{forks}", daemons[0], key)}
                    if args.profile:
                        print(f"N={n} forks={forks}: profile of oaops health", flush=True)
                        profile(inv, forks, env, args.profile)
                        continue
                    cmd_plain = [
                        str(BIN / "ansible-playbook"),
                        "-i",
                        str(inv),
                        "-f",
                        str(forks),
                        "playbooks/health.yml",
                    ]
                    oaops_args = ["health", "-i", str(inv), "-f", str(forks), "--quiet"]
                    cmd_oaops = [sys.executable, "-c", SELF_USAGE, *oaops_args]
                    cmds = {
                        "plain": (
                            cmd_plain,
                            {},
                        ),
                        "oaops": (
                            cmd_oaops,
                            {},
                        ),
                        "node": (
                            cmd_oaops,
                            node_env,
                        ),
                        "pty": (  # plain behind a pseudo-terminal, as ansible-runner runs it (attribution)
                            ["script", "-qec", shlex.join(cmd_plain), "/dev/null"],
                            {},
                        ),
                        "callback": (
                            cmd_plain,
                            {
                                "ANSIBLE_STDOUT_CALLBACK": "awx_display",
                                "ANSIBLE_CALLBACK_PLUGINS": str(runner_callback_dir()),
                                "AWX_ISOLATED_DATA_DIR": str(tmp / "callback-artifacts"),
                            },
                        ),
                        "journal": (
                            cmd_plain,
                            {
                                "ANSIBLE_STDOUT_CALLBACK": "oaops_events",
                                "ANSIBLE_CALLBACK_PLUGINS": str(ROOT / "oaops" / "runs" / "callback"),
                                "AWX_ISOLATED_DATA_DIR": str(tmp / "callback-artifacts"),
                            },
                        ),
                        "mitogen": (
                            cmd_plain,
                            {"ANSIBLE_STRATEGY_PLUGINS": str(strategy), "ANSIBLE_STRATEGY": "mitogen_linear"},
                        ),
                    }
                    # warm-up: the records DB, the inventory cache, the OS page cache
                    warm = cmd_oaops + (["--limit", "h001"] if args.quick_warmup else [])
                    run_once("warmup", warm, env, tmp, daemons)
                    if "node" in variants:  # its own records DB and inventory cache
                        run_once("warmup", warm, {**env, **node_env}, tmp, daemons)
                    rows: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
                    for i in range(args.repeat):
                        order = variants[i % len(variants) :] + variants[: i % len(variants)]
                        for v in order:
                            cmd, extra = cmds[v]
                            row = run_once(v, cmd, {**env, **extra}, tmp, daemons)
                            row |= {"hosts": n, "forks": forks, "round": i + 1, "at": time.strftime("%H:%M:%S")}
                            rows[v].append(row)
                            print(json.dumps(row), flush=True)
                            if args.json:
                                with open(args.json, "a") as fh:
                                    fh.write(json.dumps(row) + "\n")
                    med = {v: statistics.median(r["wall_s"] for r in rs) for v, rs in rows.items() if rs}
                    cpu = {v: statistics.median(r["cpu_s"] for r in rs) for v, rs in rows.items() if rs}
                    summary.append((n, forks, med, cpu))
        finally:
            for d in daemons:
                d.stop()
    print("\n| hosts | forks | variant | wall (median) | / plain | controller CPU / host |")
    print("|---:|---:|---|---:|---:|---:|")
    for n, forks, med, cpu in summary:
        for v in med:
            ratio = med[v] / med["plain"] if "plain" in med else float("nan")
            print(f"| {n} | {forks} | {v} | {med[v]:.1f} s | {ratio:.2f} | {cpu[v] / n * 1000:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
