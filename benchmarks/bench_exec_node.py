"""Benchmark: what an execution node costs (issue 16, target: a node run at most 1.10x a local run).

N local-connection hosts of one unit (branch_a), in the hardware and os layers; alternating rounds:
  (a) `oaops health` run on the control node
  (b) the same with `execution_nodes:` naming a node for branch_a: a real sshd on 127.0.0.2 whose
      login runs this venv's `ansible-runner worker` (transmit, ssh, worker, process)
and prints medians, b/a and the load average before and after.

    .venv/bin/python benchmarks/bench_exec_node.py --hosts 10 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.sshd import start_sshd_hosts  # noqa: E402  (a real sshd, as the tests use)


def write_inventory(path: Path, n: int) -> None:
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    names = {f"bra{i:03d}": host for i in range(1, n + 1)}
    members = dict.fromkeys(names)
    children = {"unit_branch_a": {"hosts": names}, "hardware": {"hosts": members}, "os": {"hosts": members}}
    path.write_text(yaml.safe_dump({"all": {"children": children}}), encoding="utf-8")


def write_config(path: Path, node: dict[str, object] | None) -> None:
    from oaops.config import starter

    text = starter("bench")
    if node:
        text += yaml.safe_dump({"execution_nodes": [node]})
    path.write_text(text, encoding="utf-8")


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of the oaops process tree: the control node's share (the
    node's worker and its ansible-playbook are sshd's children, not ours)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[:3])}... exited {proc.returncode}: {proc.stderr[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="+", default=[10])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory(prefix="oaops-bench-node-") as tmpname:
        tmp = Path(tmpname)
        sshd = start_sshd_hosts(tmp / "sshd", addresses=("127.0.0.2",), down_address="127.0.0.6", base_port=2422)
        try:
            host = sshd[0]
            node = {
                "name": "bench_node",
                "host": host.address,
                "port": host.port,
                "user": host.user,
                "identity_file": str(host.key_path),
                "runner": str(BIN / "ansible-runner"),
                "host_key_checking": False,
                "units": ["branch_a"],
            }
            for n in args.hosts:
                inv = tmp / f"hosts-{n}.yml"
                write_inventory(inv, n)
                envs = {}
                for name, with_node in (("local", None), ("node", node)):
                    cfg = tmp / f"oaops-{name}.yml"
                    write_config(cfg, with_node)
                    envs[name] = {
                        **os.environ,
                        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                        "OAOPS_HOME": str(ROOT),
                        "OAOPS_CONFIG": str(cfg),
                        "OAOPS_USER": "bench",
                        "OAOPS_DB_URL": f"sqlite:///{tmp}/oaops-{name}.db",
                        "OAOPS_RUNS_DIR": str(tmp / f"runs-{name}"),
                    }
                cmd = [str(BIN / "oaops"), "health", "-i", str(inv), "-f", str(args.forks), "--quiet"]
                load_before = os.getloadavg()
                for name in envs:
                    timed(cmd, envs[name])  # warm-up: records DB, inventory cache, OS caches
                times: dict[str, list[float]] = {"local": [], "node": []}
                cpu: dict[str, list[float]] = {"local": [], "node": []}
                for i in range(args.repeat):
                    order = ["local", "node"] if i % 2 == 0 else ["node", "local"]
                    for name in order:
                        wall, used = timed(cmd, envs[name])
                        times[name].append(wall)
                        cpu[name].append(used)
                    print(
                        f"N={n} round {i + 1}: local {times['local'][-1]:.1f}s ({cpu['local'][-1]:.1f} CPU s), "
                        f"node {times['node'][-1]:.1f}s ({cpu['node'][-1]:.1f} CPU s on the control node)"
                    )
                med = {k: statistics.median(v) for k, v in times.items()}
                row = {
                    "hosts": n,
                    "forks": args.forks,
                    "repeat": args.repeat,
                    "local_median_s": round(med["local"], 2),
                    "node_median_s": round(med["node"], 2),
                    "node_over_local": round(med["node"] / med["local"], 3),
                    "control_cpu_local_s": round(statistics.median(cpu["local"]), 2),
                    "control_cpu_node_s": round(statistics.median(cpu["node"]), 2),
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()],
                }
                results.append(row)
                print(json.dumps(row), flush=True)
        finally:
            sshd.stop_all()
    print("\n| hosts | local run | through the node | node/local | control CPU local / node | load before |")
    print("|---:|---:|---:|---:|---:|---|")
    for r in results:
        print(
            f"| {r['hosts']} | {r['local_median_s']} s | {r['node_median_s']} s | {r['node_over_local']} | "
            f"{r['control_cpu_local_s']} / {r['control_cpu_node_s']} s | "
            f"{', '.join(str(x) for x in r['load_before'])} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
