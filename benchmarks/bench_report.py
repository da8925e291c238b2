"""Benchmark: the monthly report and the yearly summary over a generated year (R6, issue 7).

Generates the demo year (100 hosts, 12 months: about 250 000 health checks, 7 300 backups, 200
changes, 50 faults, 80 problems, 12 audits) into a fresh SQLite file and a fresh PostgreSQL
database, then times, `--repeat` times each, as a user runs them (one `oaops` process each):
  monthly html   `oaops report monthly --month M --lang zh --format html`
  monthly pdf    the same as PDF (WeasyPrint, CJK font)
  yearly         `oaops report yearly --year Y --format html`
  review         `oaops review prepare --month M` (the three logs of R5, 31 daily logs)
  audit report   `oaops audit report RUN --format html` of the month's audit (100 hosts x the
                 baseline controls, ~3 900 results)
and prints the medians. Target: each report under 5 s on this machine.

    .venv/bin/python benchmarks/bench_report.py --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from oaops import config  # noqa: E402
from oaops.demo import year as demo_year  # noqa: E402
from oaops.store.db import open_database  # noqa: E402
from oaops.store.models import Audit  # noqa: E402

END = "2026-10"


PG_NAME = "bench_report_year"  # not oaops_*: tests check that no oaops_* scratch database is left


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(sql)


def fresh_pg(name: str) -> str:
    pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    pg_admin(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def timed(argv: list[str], env: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run([str(BIN / "oaops"), *argv], env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"{argv} failed: {proc.stderr.decode()[-400:]}")
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--end", default=END)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="oaops-bench-report-"))
    cfg = work / "oaops.yml"
    cfg.write_text(config.starter("bench"), encoding="utf-8")
    year = args.end[:4]
    rows = []
    for backend in args.backends.split(","):
        url = f"sqlite:///{work}/year.db" if backend == "sqlite" else fresh_pg(PG_NAME)
        db = open_database(url)
        g = demo_year.generate(db, args.end)
        with db.transaction() as session:
            last_audit = session.execute(select(func.max(Audit.run_id))).scalar_one()
        db.dispose()
        env = {
            **os.environ,
            "OAOPS_HOME": str(ROOT),
            "OAOPS_CONFIG": str(cfg),
            "OAOPS_DB_URL": url,
            "OAOPS_USER": "bench",
            "OAOPS_RUNS_DIR": str(work / "runs"),
        }
        out = work / "out"
        results = {
            "generate (in-process)": g.seconds,
            "monthly html": timed(
                ["report", "monthly", "--month", args.end, "--format", "html", "-o", f"{out}.html"], env, args.repeat
            ),
            "monthly pdf": timed(
                ["report", "monthly", "--month", args.end, "--format", "pdf", "-o", f"{out}.pdf"], env, args.repeat
            ),
            "yearly html": timed(
                ["report", "yearly", "--year", year, "--format", "html", "-o", f"{out}-y.html"], env, args.repeat
            ),
            "review prepare": timed(["review", "prepare", "--month", args.end], env, args.repeat),
            "audit report html": timed(
                ["audit", "report", str(last_audit), "--format", "html", "-o", f"{out}-a.html"], env, args.repeat
            ),
            "oaops --version": timed(["--version"], env, args.repeat),
        }
        checks = g.rows.get("checks", 0)
        for name, seconds in results.items():
            rows.append((backend, name, seconds))
            print(f"{backend:8} {name:24} {seconds:6.2f} s   ({checks} checks in the year)", flush=True)
    if "postgres" in args.backends:
        pg_admin(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
    print("\n| backend | what | median s |\n|---|---|---|")
    for backend, name, seconds in rows:
        print(f"| {backend} | {name} | {seconds:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
