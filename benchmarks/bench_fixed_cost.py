"""Benchmark: the fixed cost of oaops around a playbook (issue 13, point 6).

Whole-process wall times, alternating runs, medians:
  - `oaops health` against plain `ansible-playbook -i INV playbooks/health.yml` on the same
    inventory: inventories/local (1 host), and generated inventories of N local-connection
    hosts (benchmarks/bench_health.py's), forks 10;
  - `oaops runs list`, `oaops --help`, `oaops --version` and `python -c pass` for scale.
Each oaops command is a new process against a fresh SQLite records database in a temporary
folder (created by a warm-up run), as cron or a technician starts it.

    .venv/bin/python benchmarks/bench_fixed_cost.py --hosts 1 20 100 --repeat 5
    .venv/bin/python benchmarks/bench_fixed_cost.py --hosts 1 --repeat 9     # the quick part
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_health import BIN, site, timed, write_inventory  # noqa: E402


def health_pair(n: int, tmp: Path, env: dict[str, str], repeat: int, forks: int) -> dict[str, object]:
    """Alternating plain / oaops health runs on N hosts (1 = inventories/local)."""
    if n == 1:
        inv = ROOT / "inventories" / "local"
    else:
        inv = tmp / f"hosts-{n}.ini"
        write_inventory(inv, n)
    plain = [str(BIN / "ansible-playbook"), "-i", str(inv), "-f", str(forks), "playbooks/health.yml"]
    oaops = [str(BIN / "oaops"), "health", "-i", str(inv), "-f", str(forks), "--quiet"]
    timed(oaops, env)  # warm-up: creates the records DB, fills OS caches
    times: dict[str, list[float]] = {"plain": [], "oaops": []}
    for i in range(repeat):
        order = [("plain", plain), ("oaops", oaops)]
        if i % 2:
            order.reverse()
        for name, cmd in order:
            times[name].append(timed(cmd, env))
        print(f"N={n} round {i + 1}: plain {times['plain'][-1]:.2f}s, oaops {times['oaops'][-1]:.2f}s", flush=True)
    plain_m, oaops_m = statistics.median(times["plain"]), statistics.median(times["oaops"])
    return {
        "hosts": n,
        "plain_median_s": round(plain_m, 2),
        "oaops_median_s": round(oaops_m, 2),
        "difference_s": round(oaops_m - plain_m, 2),
        "ratio": round(oaops_m / plain_m, 3),
        "plain_s": [round(t, 2) for t in times["plain"]],
        "oaops_s": [round(t, 2) for t in times["oaops"]],
    }


def commands(env: dict[str, str], repeat: int) -> dict[str, float]:
    """Short commands, rotated so each sees the same machine."""
    cmds = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "oaops --version": [str(BIN / "oaops"), "--version"],
        "oaops --help": [str(BIN / "oaops"), "--help"],
        "oaops runs list": [str(BIN / "oaops"), "runs", "list"],
    }
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for i in range(repeat):
        names = list(cmds)
        names = names[i % len(names) :] + names[: i % len(names)]
        for name in names:
            times[name].append(timed(cmds[name], env, ok_codes=(0,)))
    return {k: round(statistics.median(v), 3) for k, v in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="*", default=[1, 20, 100])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--commands-repeat", type=int, default=11)
    parser.add_argument("--forks", type=int, default=10)
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
    with tempfile.TemporaryDirectory(prefix="oaops-fixed-") as tmpname:
        tmp = Path(tmpname)
        env = {**base_env, **site(tmp)}
        health = [health_pair(n, tmp, env, args.repeat, args.forks) for n in args.hosts]
        short = commands(env, args.commands_repeat) if args.commands_repeat else {}
    print("\n| hosts | plain ansible-playbook | oaops health | difference | ratio |")
    print("|---:|---:|---:|---:|---:|")
    for r in health:
        print(
            f"| {r['hosts']} | {r['plain_median_s']} s | {r['oaops_median_s']} s | "
            f"{r['difference_s']:+} s | {r['ratio']} |"
        )
    if short:
        print("\n| command | median s |")
        print("|---|---:|")
        for name, t in short.items():
            print(f"| `{name}` | {t} |")
    if args.json:
        args.json.write_text(json.dumps({"health": health, "commands": short}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
