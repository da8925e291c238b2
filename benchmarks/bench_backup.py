"""Benchmark: a backup proven by a restore, oaops against doing the same by hand (issue 3).

Seeds a PostgreSQL database of about 1 GB with the shared OA-like data set (oaops.demo_data), then
runs, `--repeat` times in rotating order:
  (a) `oaops backup run --verify --target bench`: one command, one playbook run, one module call
      that dumps (pg_dump -Fc in an exported snapshot, rows counted in it), checksums, writes the
      manifest, then restore-verifies the new set (sha256, scratch database, pg_restore, counts
      compared, drop), all recorded
  (b) `oaops backup run` + `oaops backup verify --latest`: the same work in two commands
  (h) by hand: pg_dump -Fc; createdb; pg_restore; count(*) of every table in the source and in the
      restored copy; dropdb
and prints medians, a/h (target <= 1.10), b/h, and the restore-verify cost per GB of database.

    .venv/bin/python benchmarks/bench_backup.py --documents 300000 --body-kb 1.5 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from oaops import demo_data  # noqa: E402

DB = "oa_bench"
PG = {"PGHOST": "127.0.0.1", "PGPORT": "5432", "PGUSER": "postgres"}


def sh(argv: list[str], data: str | None = None) -> str:
    proc = subprocess.run(argv, input=data, capture_output=True, text=True, env={**os.environ, **PG}, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])}... exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


def tables(database: str) -> list[str]:
    query = (
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r','p') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'"
    )
    return sh(["psql", "-X", "-Atc", query, database]).split()


def counts(database: str, names: list[str]) -> list[int]:
    sql = "\n".join(f"SELECT count(*) FROM {t};" for t in names)
    return [int(x) for x in sh(["psql", "-X", "-At", "-d", database], data=sql).split()] if names else []


def by_hand(work: Path) -> float:
    """What an operator would script: dump, restore into a scratch database, compare the counts."""
    start = time.perf_counter()
    dump = work / "by-hand.dump"
    sh(["pg_dump", "-Fc", "-f", str(dump), DB])
    sh(["createdb", "-T", "template0", "bench_scratch"])
    try:
        sh(["pg_restore", "--exit-on-error", "--no-owner", "--no-acl", "-d", "bench_scratch", str(dump)])
        names = tables(DB)
        if counts(DB, names) != counts("bench_scratch", names):
            raise SystemExit("by hand: the restored counts differ")
    finally:
        sh(["dropdb", "bench_scratch"])
    elapsed = time.perf_counter() - start
    dump.unlink()
    return elapsed


def oaops(work: Path, env: dict[str, str], one_command: bool) -> tuple[float, float]:
    """Seconds for backup + restore-verify, and for the verify part (two commands only)."""
    start = time.perf_counter()
    backed_up = start
    steps = [["backup", "run", "--verify"]] if one_command else [["backup", "run"], ["backup", "verify", "--latest"]]
    for args in steps:
        proc = subprocess.run(
            [str(BIN / "oaops"), *args, "--target", "bench", "--quiet", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"oaops {' '.join(args)} exited {proc.returncode}: {(proc.stdout + proc.stderr)[-2000:]}")
        if args[1] == "run" and not one_command:
            backed_up = time.perf_counter()
    total = time.perf_counter() - start
    shutil.rmtree(work / "backups", ignore_errors=True)
    return total, total - (backed_up - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=300_000)
    parser.add_argument("--body-kb", type=float, default=1.5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the seeded database afterwards")
    parser.add_argument("--reuse", action="store_true", help=f"use an existing {DB} instead of seeding it")
    parser.add_argument("--skip-two-commands", action="store_true", help="time only (h) and (a)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="oaops-bench-backup-"))
    t0 = time.perf_counter()
    size = demo_data.Size(users=20_000, documents=args.documents, body_kb=args.body_kb)
    if not args.reuse:
        demo_data.seed_postgres(DB, size)
    db_bytes = demo_data.postgres_size(DB)
    print(
        f"seeded {DB}: {db_bytes / 2**30:.2f} GiB, {sum(size.rows().values())} rows in {time.perf_counter() - t0:.0f} s"
    )

    from oaops.config import starter

    (work / "oaops.yml").write_text(starter("bench"), encoding="utf-8")
    inventory = work / "inventory.yml"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {
                        "localhost": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": sys.executable,
                            "oa_backup_dir": str(work / "backups"),
                            "oa_backup_targets": [
                                {"name": "bench", "type": "postgresql", "databases": [DB], "globals": False}
                            ],
                        }
                    }
                }
            }
        ),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "OAOPS_HOME": str(ROOT),
        "OAOPS_CONFIG": str(work / "oaops.yml"),
        "OAOPS_USER": "bench",
        "OAOPS_DB_URL": f"sqlite:///{work}/oaops.db",
        "OAOPS_RUNS_DIR": str(work / "runs"),
        "OAOPS_INVENTORY": str(inventory),
    }
    subprocess.run(["psql", "-X", "-qc", "CHECKPOINT", DB], env={**os.environ, **PG}, check=True)
    hand, one, two, verify = [], [], [], []
    order = ["hand", "one"] if args.skip_two_commands else ["hand", "one", "two"]
    for i in range(args.repeat):
        for name in order[i % len(order) :] + order[: i % len(order)]:
            if name == "hand":
                hand.append(by_hand(work))
                print(f"  run {i + 1}: by hand                      {hand[-1]:.1f} s", flush=True)
            elif name == "one":
                one.append(oaops(work, env, one_command=True)[0])
                print(f"  run {i + 1}: oaops backup run --verify    {one[-1]:.1f} s", flush=True)
            else:
                total, verified = oaops(work, env, one_command=False)
                two.append(total)
                verify.append(verified)
                print(
                    f"  run {i + 1}: oaops backup run + verify    {total:.1f} s (verify {verified:.1f} s)", flush=True
                )
    gib = db_bytes / 2**30
    figures = {
        "database_gib": round(gib, 3),
        "rows": sum(size.rows().values()),
        "repeat": args.repeat,
        "by_hand_median_s": round(statistics.median(hand), 1),
        "oaops_one_command_median_s": round(statistics.median(one), 1),
        "ratio_one_command": round(statistics.median(one) / statistics.median(hand), 3),
        "by_hand_s": [round(x, 1) for x in hand],
        "oaops_one_command_s": [round(x, 1) for x in one],
        "cpus": os.cpu_count(),
    }
    if two:
        figures |= {
            "oaops_two_commands_median_s": round(statistics.median(two), 1),
            "ratio_two_commands": round(statistics.median(two) / statistics.median(hand), 3),
            "oaops_verify_command_median_s": round(statistics.median(verify), 1),
            "verify_s_per_gib": round(statistics.median(verify) / gib, 1),
        }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    if not args.keep:
        demo_data.drop_postgres(DB)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
