"""Benchmark: the fixed cost of oaops around a playbook (issue 13, point 6).

Whole-process times, runs rotated round by round, medians:
  - `oaops health` against plain `ansible-playbook -i INV playbooks/health.yml` on the same
    inventory: inventories/local (1 host), and generated inventories of N local-connection
    hosts (benchmarks/bench_health.py's), forks 10;
  - `oaops runs list`, `oaops --help`, `oaops --version` and `python -c pass` for scale.
Each oaops command is a new process against a SQLite records database in a temporary folder
(created by a warm-up run), as cron or a technician starts it. Besides wall time, the CPU time
(user + sys of the process and everything it waited for) is measured: on a shared machine it
moves much less with the load than the wall time does.

`--baseline DIR` also times the oaops of another checkout (e.g. `git archive main | tar -x -C DIR`)
in the same rounds, with PYTHONPATH=DIR, so a before/after comparison sees the same machine.

    .venv/bin/python benchmarks/bench_fixed_cost.py --hosts 1 20 --repeat 5
    .venv/bin/python benchmarks/bench_fixed_cost.py --hosts 100 --repeat 3 --commands-repeat 0
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_health import BIN, site, write_inventory  # noqa: E402

Variant = tuple[str, list[str], dict[str, str]]


def timed(cmd: list[str], env: dict[str, str], ok_codes: tuple[int, ...] = (0, 1, 2)) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process tree)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in ok_codes:
        raise SystemExit(f"{' '.join(cmd[:3])}... exited {proc.returncode}: {proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def rounds(variants: list[Variant], repeat: int, label: str, ok_codes: tuple[int, ...]) -> dict[str, list[float]]:
    """Each round runs every variant once, the order rotated from round to round."""
    wall: dict[str, list[float]] = {f"{name}_s": [] for name, _, _ in variants}
    cpu: dict[str, list[float]] = {f"{name}_cpu_s": [] for name, _, _ in variants}
    for i in range(repeat):
        k = i % len(variants)
        for name, cmd, env in variants[k:] + variants[:k]:
            w, c = timed(cmd, env, ok_codes)
            wall[f"{name}_s"].append(round(w, 3))
            cpu[f"{name}_cpu_s"].append(round(c, 3))
        shown = ", ".join(f"{n} {wall[f'{n}_s'][-1]:.2f}s ({cpu[f'{n}_cpu_s'][-1]:.2f}s CPU)" for n, _, _ in variants)
        print(f"{label} round {i + 1}: {shown}")
    return {**wall, **cpu}


def health(n: int, tmp: Path, env: dict[str, str], args: argparse.Namespace) -> dict[str, object]:
    """plain ansible-playbook against oaops health (and the baseline's) on N hosts (1 = inventories/local)."""
    if n == 1:
        inv = ROOT / "inventories" / "local"
    else:
        inv = tmp / f"hosts-{n}.ini"
        write_inventory(inv, n)
    plain = [str(BIN / "ansible-playbook"), "-i", str(inv), "-f", str(args.forks), "playbooks/health.yml"]
    oaops = [str(BIN / "oaops"), "health", "-i", str(inv), "-f", str(args.forks), "--quiet"]
    variants: list[Variant] = [("plain", plain, env), ("oaops", oaops, env)]
    if args.baseline:
        variants.append(("baseline", oaops, {**env, "PYTHONPATH": str(args.baseline)}))
    for _, cmd, venv in variants[1:]:
        timed(cmd, venv)  # warm-up: creates the records DB, fills OS and inventory caches
    times = rounds(variants, args.repeat, f"N={n}", (0, 1, 2))
    med = {k: statistics.median(v) for k, v in times.items()}
    row: dict[str, object] = {"hosts": n, "repeat": args.repeat, "forks": args.forks}
    for name, _, _ in variants:
        row[f"{name}_median_s"] = round(med[f"{name}_s"], 2)
        row[f"{name}_cpu_median_s"] = round(med[f"{name}_cpu_s"], 2)
        if name != "plain":
            row[f"{name}_minus_plain_s"] = round(med[f"{name}_s"] - med["plain_s"], 2)
            row[f"{name}_ratio"] = round(med[f"{name}_s"] / med["plain_s"], 3)
            row[f"{name}_cpu_ratio"] = round(med[f"{name}_cpu_s"] / med["plain_cpu_s"], 3)
    row["runs"] = times
    return row


def commands(env: dict[str, str], args: argparse.Namespace) -> dict[str, object]:
    """Short commands: median wall and CPU seconds."""
    oaops = str(BIN / "oaops")
    variants: list[Variant] = [
        ("python -c pass", [sys.executable, "-c", "pass"], env),
        ("oaops --version", [oaops, "--version"], env),
        ("oaops --help", [oaops, "--help"], env),
        ("oaops runs list", [oaops, "runs", "list"], env),
    ]
    if args.baseline:
        before = {**env, "PYTHONPATH": str(args.baseline)}
        variants.append(("baseline --help", [oaops, "--help"], before))
        variants.append(("baseline runs list", [oaops, "runs", "list"], before))
    for _, cmd, venv in variants[1:]:
        timed(cmd, venv, (0,))  # the records exist and are migrated; the schema pass is remembered
    times = rounds(variants, args.commands_repeat, "commands", (0,))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {name: (med[f"{name}_s"], med[f"{name}_cpu_s"]) for name, _, _ in variants}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="*", default=[1, 20, 100])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--commands-repeat", type=int, default=11)
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--baseline", type=Path, help="another checkout whose oaops is timed in the same rounds")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # rounds show as they finish

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
        rows = [health(n, tmp, env, args) for n in args.hosts]
        short = commands(env, args) if args.commands_repeat else {}
    names = ["oaops"] + (["baseline"] if args.baseline else [])
    for r in rows:
        print(f"\nN={r['hosts']}: plain {r['plain_median_s']} s ({r['plain_cpu_median_s']} s CPU)")
        for name in names:
            print(
                f"  {name}: {r[f'{name}_median_s']} s, {r[f'{name}_minus_plain_s']:+} s, ratio {r[f'{name}_ratio']}; "
                f"CPU {r[f'{name}_cpu_median_s']} s, ratio {r[f'{name}_cpu_ratio']}"
            )
    for name, value in short.items():
        wall, cpu = value  # type: ignore[misc]
        print(f"{name}: {wall:.3f} s ({cpu:.3f} s CPU)")
    if args.json:
        args.json.write_text(json.dumps({"health": rows, "commands": short}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
