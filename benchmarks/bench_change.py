"""Benchmark: what `oaops change run` adds on top of running the same playbook by hand (issue 4).

Starts a private nginx (Debian nginx-light, its own prefix, a free loopback port; the fixture of
the tests, tests/fixtures/nginx.py), then `--repeat` times, in alternating order, makes one real
nginx parameter change (a header whose value differs every round, so every apply changes the file
and reloads nginx) in two ways:
  (h) by hand: `ansible-playbook playbooks/change_nginx.yml --check --diff`, then the same without
      --check: what a careful technician types
  (o) `oaops change run CHG --yes` for a change already recorded, submitted and approved (those
      steps are not timed): baseline health, snapshot, preview (check + diff, stored), apply,
      verify (health compared with the baseline + the request's testinfra tests), every step a
      recorded Run, the lock, the content hash checked before each step
and prints medians, the ratio o/h, and the median time of each pipeline step (from
`oaops change show --json`). The health checks use the `os` layer of this machine only.

    .venv/bin/python benchmarks/bench_change.py --repeat 5 --json /tmp/bench-change.json
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
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from oaops.config import starter  # noqa: E402
from tests.fixtures.keys import make_key  # noqa: E402
from tests.fixtures.nginx import Nginx, nginx_problem, start_nginx  # noqa: E402

IMPLEMENTER, APPROVER = "bench", "approver"


def playbook_vars(web: Nginx, value: str) -> dict[str, Any]:
    return {
        "oa_change_nginx_dest": str(web.headers_path),
        "oa_change_nginx_args": ["-p", str(web.prefix), "-c", str(web.conf_path), "-e", str(web.error_log)],
        "oa_change_nginx_pid_file": str(web.pid_path),
        "oa_change_nginx_headers": {"X-Frame-Options": "SAMEORIGIN", "X-Bench-Round": value},
    }


def request(web: Nginx, inventory: Path, value: str) -> dict[str, Any]:
    """The same request as changes/nginx-security-headers.yml, for the benchmark's nginx."""
    return {
        "version": 1,
        "title": f"Benchmark round {value}",
        "type": "security_policy",
        "class": "normal",
        "reason": "benchmarks/bench_change.py",
        "risk": "low",
        "hosts": "localhost",
        "inventory": str(inventory),
        "playbook": "change_nginx.yml",
        "vars": playbook_vars(web, value),
        "plan": {"implementation": "render, nginx -t, reload", "test": "testinfra", "rollback": "snapshot"},
        "snapshot": {"files": [str(web.headers_path)]},
        "rollback": {"method": "restore"},
        "verify": {"health": True, "tests": ["changes/tests/test_nginx_params.py"], "vars": {"url": web.url}},
        "window": {"start": "now", "end": "+2h"},
    }


def run(argv: list[str], env: dict[str, str], what: str) -> str:
    proc = subprocess.run(argv, env=env, cwd=str(ROOT), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{what} exited {proc.returncode}: {(proc.stdout + proc.stderr)[-2000:]}")
    return proc.stdout


def by_hand(web: Nginx, inventory: Path, work: Path, value: str, env: dict[str, str]) -> float:
    extra = work / f"hand-{value}.json"
    extra.write_text(json.dumps(playbook_vars(web, value)), encoding="utf-8")
    base = [str(BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/change_nginx.yml", "-e", f"@{extra}"]
    start = time.perf_counter()
    run([*base, "--check", "--diff"], env, "ansible-playbook --check --diff")
    run(base, env, "ansible-playbook")
    elapsed = time.perf_counter() - start
    served = web.get("/").headers.get("x-bench-round")
    if served != value:
        raise SystemExit(f"by hand: nginx serves X-Bench-Round {served!r}, expected {value!r}")
    return elapsed


def with_oaops(
    web: Nginx, inventory: Path, work: Path, value: str, env: dict[str, str]
) -> tuple[float, dict[str, float]]:
    path = work / f"oaops-{value}.yml"
    path.write_text(json.dumps(request(web, inventory, value)), encoding="utf-8")
    oaops = str(BIN / "oaops")
    cid = json.loads(run([oaops, "change", "new", str(path), "--json"], env, "oaops change new"))["id"]
    run([oaops, "change", "submit", cid], env, "oaops change submit")
    key = make_key(work / "keys", APPROVER)[0]  # the approver signs with their own key (R18)
    run([oaops, "change", "approve", cid], {**env, "OAOPS_USER": APPROVER, "OAOPS_SIGNING_KEY": str(key)}, "approve")
    start = time.perf_counter()
    run([oaops, "change", "run", cid, "--yes", "--quiet"], env, f"oaops change run {cid}")
    elapsed = time.perf_counter() - start
    detail = json.loads(run([oaops, "change", "show", cid, "--json"], env, "oaops change show"))
    if detail["row"]["state"] != "succeeded":
        raise SystemExit(f"{cid} ended {detail['row']['state']}")
    steps = {
        s["step"]: (datetime.fromisoformat(s["finished_at"]) - datetime.fromisoformat(s["started_at"])).total_seconds()
        for s in detail["steps"]
        if s["attempt"] == 1 and s["started_at"] and s["finished_at"]
    }
    return elapsed, steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    problem = nginx_problem()
    if problem:
        raise SystemExit(f"bench_change needs nginx: {problem}")

    work = Path(tempfile.mkdtemp(prefix="oaops-bench-change-"))
    web = start_nginx(work / "nginx")
    try:
        inventory = work / "inventory.yml"
        host = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "oa_health_layers": ["os"],
            "oa_change_snapshot_store": str(work / "snapshots"),
        }
        inventory.write_text(
            json.dumps({"all": {"hosts": {"localhost": host}, "children": {"os": {"hosts": {"localhost": None}}}}}),
            encoding="utf-8",
        )
        approver_line = make_key(work / "keys", APPROVER)[1]
        config = starter(IMPLEMENTER).replace(
            "    units: [hq]\n",
            f"    units: [hq]\n  - login: {APPROVER}\n    name: {APPROVER}\n    roles: [system_manager]\n"
            f"    signing_key: {approver_line}\n",
            1,
        )
        (work / "oaops.yml").write_text(config, encoding="utf-8")
        env = {
            **os.environ,
            "OAOPS_HOME": str(ROOT),
            "OAOPS_CONFIG": str(work / "oaops.yml"),
            "OAOPS_USER": IMPLEMENTER,
            "OAOPS_DB_URL": f"sqlite:///{work}/oaops.db",
            "OAOPS_RUNS_DIR": str(work / "runs"),
            "OAOPS_INVENTORY": str(inventory),
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        }
        hand: list[float] = []
        pipeline: list[float] = []
        steps: dict[str, list[float]] = {}
        for i in range(args.repeat):
            order = ["hand", "oaops"] if i % 2 == 0 else ["oaops", "hand"]
            for name in order:
                value = f"{name}-{i + 1}"
                if name == "hand":
                    hand.append(by_hand(web, inventory, work, value, env))
                    print(f"  run {i + 1}: by hand, check+diff then apply   {hand[-1]:.1f} s", flush=True)
                else:
                    total, per_step = with_oaops(web, inventory, work, value, env)
                    pipeline.append(total)
                    for step, seconds in per_step.items():
                        steps.setdefault(step, []).append(seconds)
                    print(f"  run {i + 1}: oaops change run               {total:.1f} s", flush=True)
        figures = {
            "repeat": args.repeat,
            "by_hand_median_s": round(statistics.median(hand), 1),
            "oaops_change_run_median_s": round(statistics.median(pipeline), 1),
            "ratio": round(statistics.median(pipeline) / statistics.median(hand), 2),
            "added_s": round(statistics.median(pipeline) - statistics.median(hand), 1),
            "step_median_s": {k: round(statistics.median(v), 1) for k, v in steps.items()},
            "by_hand_s": [round(x, 1) for x in hand],
            "oaops_change_run_s": [round(x, 1) for x in pipeline],
            "cpus": os.cpu_count(),
            "load_average": [round(x, 1) for x in os.getloadavg()],
        }
        print(json.dumps(figures, indent=2))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    finally:
        web.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
