"""Benchmark: `oaops prune` of the demo year, from 12 months of events to 3 (issue 16, points 5, 7).

`oaops demo year --end END` fills a SQLite records database with a year (100 hosts, daily health
runs, backups, changes, faults, problems, audits); each round copies it and runs `oaops prune
--now <the first day after END>` with the default retention (events 90 days, run folders 30,
records 400): task results of the 9 oldest months go, runs and checks stay. Prints wall and CPU
time, the rows before and after, the file size, the load average, and `oaops journal verify`
after the prune (it must still hold).

    .venv/bin/python benchmarks/bench_prune.py --end 2026-10 --repeat 3 --keep /tmp/year.db
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_health import BIN, site  # noqa: E402


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[1:3])} exited {proc.returncode}: {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout + proc.stderr


def counts(db: Path) -> dict[str, float]:
    with sqlite3.connect(db) as con:
        out: dict[str, float] = {
            t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in ("runs", "task_results", "checks")
        }
        size = con.execute("select coalesce(sum(length(result)), 0) from task_results").fetchone()[0]
        out["event_payloads_mb"] = round(size / 1e6, 1)
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--end", default="2026-10", help="last month of the demo year")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, help="append the figures here (JSON lines)")
    parser.add_argument("--keep", type=Path, help="keep the generated year here, and reuse it when it exists")
    args = parser.parse_args()
    year, month = (int(x) for x in args.end.split("-"))
    now = date(year + month // 12, month % 12 + 1, 1).isoformat() + "T00:00"
    with tempfile.TemporaryDirectory(prefix="oaops-bench-prune-") as tmpname:
        tmp = Path(tmpname)
        env = {**os.environ, **site(tmp), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        source = tmp / "oaops.db"
        pristine = args.keep or tmp / "year.db"
        if not pristine.exists():
            wall, cpu, _ = timed([str(BIN / "oaops"), "demo", "year", "--end", args.end], env)
            print(f"demo year to {args.end}: {wall:.1f} s wall, {cpu:.1f} s CPU; {counts(source)}", flush=True)
            shutil.copy(source, pristine)
        for i in range(args.repeat):
            shutil.copy(pristine, source)
            before, size = counts(source), source.stat().st_size
            load = os.getloadavg()
            wall, cpu, text = timed([str(BIN / "oaops"), "prune", "--now", now, "--json"], env)
            said = json.loads(text[text.index("{") :])
            vwall, _, vtext = timed([str(BIN / "oaops"), "journal", "verify"], env)
            row = {
                "round": i + 1,
                "at": time.strftime("%H:%M:%S"),
                "load_before": [round(x, 2) for x in load],
                "prune_wall_s": round(wall, 2),
                "prune_cpu_s": round(cpu, 2),
                "before": before,
                "after": counts(source),
                "db_mb_before": round(size / 1e6, 1),
                "db_mb_after": round(source.stat().st_size / 1e6, 1),
                "journal_verify_s": round(vwall, 2),
                "journal_verify": vtext.strip().splitlines()[-1] if vtext.strip() else "",
                "pruned": {k: said[k] for k in ("events_runs", "task_results", "payloads_emptied", "record_runs")},
            }
            print(json.dumps(row, ensure_ascii=False), flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
