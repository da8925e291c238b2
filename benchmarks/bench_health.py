"""Benchmark: what recording costs, and what the one-call probe saves (DESIGN.md, issue 2).

On the same generated inventory of N local-connection hosts (forks 10), alternating runs:
  (a) plain `ansible-playbook playbooks/health.yml`
  (b) `oaops health` (ansible-runner + recording every event into SQLite)
  (c) `benchmarks/per_check_health.yml`: the same checks as one task per check, the way most
      health roles are written
and prints medians, b/a (target <= 1.05) and c/a (the probe's speedup).

    .venv/bin/python benchmarks/bench_health.py --hosts 20 100 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LAYERS = ("hardware", "os", "network", "database", "application")


def write_inventory(path: Path, n: int) -> None:
    """N aliases of this machine (local connection) in the layers the probe covers."""
    hosts = "\n".join(
        f"oa{i:03d} ansible_connection=local ansible_python_interpreter={sys.executable}" for i in range(1, n + 1)
    )
    groups = "\n".join(f"[{layer}:children]\nestate" for layer in LAYERS)
    common = (
        "[estate:vars]\n"
        "oa_health_network_peers=[{'name': 'postgresql', 'host': '127.0.0.1', 'port': 5432}]\n"
        "oa_health_dns_names=['localhost']\n"
        "oa_health_databases=[{'name': 'pg', 'type': 'postgresql', 'host': '127.0.0.1', 'port': 5432, "
        "'user': 'postgres', 'database': 'postgres'}]\n"
        "oa_health_http_endpoints=[{'name': 'oa_login', 'url': 'http://127.0.0.1:18080/', 'expect_text': 'OA'}]\n"
    )
    path.write_text(f"[estate]\n{hosts}\n\n{groups}\n\n{common}", encoding="utf-8")


def site(tmp: Path) -> dict[str, str]:
    cfg = tmp / "oaops.yml"
    if not cfg.exists():
        from oaops.config import starter

        cfg.write_text(starter("bench"), encoding="utf-8")
    return {
        "OAOPS_HOME": str(ROOT),
        "OAOPS_CONFIG": str(cfg),
        "OAOPS_USER": "bench",
        "OAOPS_DB_URL": f"sqlite:///{tmp}/oaops.db",
        "OAOPS_RUNS_DIR": str(tmp / "runs"),
    }


def timed(cmd: list[str], env: dict[str, str], ok_codes: tuple[int, ...] = (0, 1, 2)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok_codes:
        raise SystemExit(f"{' '.join(cmd[:3])}... exited {proc.returncode}: {proc.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--skip-per-check", action="store_true")
    parser.add_argument(
        "--per-check-repeat",
        type=int,
        default=None,
        help="rounds that also time the per-check playbook (default: every round)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    subprocess.run(
        [sys.executable, "-m", "oaops.demo_site", "--port", "18080", "--background"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    base_env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    results = []
    for n in args.hosts:
        with tempfile.TemporaryDirectory(prefix=f"oaops-bench-{n}-") as tmpname:
            tmp = Path(tmpname)
            inv = tmp / "hosts.ini"
            write_inventory(inv, n)
            env = {**base_env, **site(tmp)}
            plain = [str(BIN / "ansible-playbook"), "-i", str(inv), "-f", str(args.forks), "playbooks/health.yml"]
            oaops = [str(BIN / "oaops"), "health", "-i", str(inv), "-f", str(args.forks), "--quiet"]
            per_check = [
                str(BIN / "ansible-playbook"),
                "-i",
                str(inv),
                "-f",
                str(args.forks),
                "benchmarks/per_check_health.yml",
            ]
            times: dict[str, list[float]] = {"plain": [], "oaops": [], "per_check": []}
            timed(oaops, env)  # warm-up: creates the records DB, fills OS caches
            for i in range(args.repeat):
                order = [("plain", plain), ("oaops", oaops)]
                if i % 2:
                    order.reverse()
                for name, cmd in order:
                    times[name].append(timed(cmd, env))
                if not args.skip_per_check and (args.per_check_repeat is None or i < args.per_check_repeat):
                    times["per_check"].append(timed(per_check, env))
                print(
                    f"N={n} round {i + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items() if v), flush=True
                )
            med = {k: statistics.median(v) for k, v in times.items() if v}
            row = {
                "hosts": n,
                "forks": args.forks,
                "repeat": args.repeat,
                **{f"{k}_median_s": round(v, 2) for k, v in med.items()},
                "recording_ratio_b_over_a": round(med["oaops"] / med["plain"], 3),
            }
            if "per_check" in med:
                row["probe_speedup_per_check_over_plain"] = round(med["per_check"] / med["plain"], 2)
            results.append(row)
            print(json.dumps(row), flush=True)
    print("\n| hosts | plain ansible-playbook | oaops health | b/a | per-check playbook | speedup |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['hosts']} | {r['plain_median_s']} s | {r['oaops_median_s']} s | "
            f"{r['recording_ratio_b_over_a']} | {r.get('per_check_median_s', '-')} s | "
            f"{r.get('probe_speedup_per_check_over_plain', '-')}x |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
