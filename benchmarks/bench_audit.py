"""Benchmark: one module call per host against one Ansible task per control (DESIGN.md goal:
audits at least 10x faster than one task per control), issue 5.

On the same generated inventory of N local-connection hosts (forks 10), alternating runs:
  (a) `ansible-playbook playbooks/audit.yml`: the oa_audit role, ONE oaops_audit call per host
      evaluating every selected control
  (b) `oaops audit`: the same through ansible-runner, recording every result (ControlResult rows,
      waivers, scores, trend) into SQLite
  (c) a generated playbook with one task per control, the way CIS roles are written
      ("5.1.20 | AUDIT | Ensure ..."): each task a round trip to the host evaluating one control.
      The tasks call the same module with that one control, so both sides do identical checking
      work and the difference is the per-task cost Ansible pays per host.
The controls are those of the baseline profile that need no database, web endpoint, package
index or records (so the figures do not depend on those services): see CONTROLS below.

    .venv/bin/python benchmarks/bench_audit.py --hosts 20 100 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FILES = ROOT / "roles" / "oa_audit" / "files"
SKIP_KINDS = {"sql", "http", "records", "updates", "pg_hba"}


def controls() -> list[dict[str, Any]]:
    from oaops.rules import audit as rules

    data = yaml.safe_load((FILES / "catalog.yml").read_text(encoding="utf-8"))["controls"]
    profile = rules.parse_profile(yaml.safe_load((FILES / "profiles" / "baseline.yml").read_text(encoding="utf-8")))
    chosen = {c.id for c in rules.select([rules.parse_control(c) for c in data], profile)}
    return [c for c in data if c["id"] in chosen and c["check"]["kind"] not in SKIP_KINDS]


def write_inventory(path: Path, n: int) -> None:
    hosts = "\n".join(
        f"oa{i:03d} ansible_connection=local ansible_python_interpreter={sys.executable}" for i in range(1, n + 1)
    )
    groups = "\n".join(f"[{layer}:children]\nestate" for layer in ("os", "middleware", "unit_hq"))
    path.write_text(f"[estate]\n{hosts}\n\n{groups}\n", encoding="utf-8")


def write_per_control(path: Path, chosen: list[dict[str, Any]]) -> None:
    """One task per control, each carrying only its own control (CIS-role style)."""
    tasks = [
        {
            "name": f"{c['id']} | AUDIT | {c['title']['en']}",
            "oaops_audit": {
                "catalog": [c],
                "profile": {"name": "baseline", "select": {}},
                "groups": "{{ group_names }}",
            },
        }
        for c in chosen
    ]
    play = [{"name": "Audit one task per control", "hosts": "all", "gather_facts": False, "tasks": tasks}]
    path.write_text(yaml.safe_dump(play, sort_keys=False, allow_unicode=True), encoding="utf-8")


def site(tmp: Path) -> dict[str, str]:
    import os

    cfg = tmp / "oaops.yml"
    if not cfg.exists():
        from oaops.config import starter

        cfg.write_text(starter("bench"), encoding="utf-8")
    return dict(
        os.environ,
        OAOPS_HOME=str(ROOT),
        OAOPS_CONFIG=str(cfg),
        OAOPS_USER="bench",
        OAOPS_DB_URL=f"sqlite:///{tmp}/oaops.db",
        OAOPS_RUNS_DIR=str(tmp / "runs"),
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        PATH=f"{BIN}:{os.environ.get('PATH', '')}",
    )


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1, 2) or "unreachable=1" in proc.stdout:
        raise SystemExit(
            f"{' '.join(cmd[:3])}... exited {proc.returncode}: {proc.stdout[-1500:]} {proc.stderr[-1500:]}"
        )
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--per-control-repeat", type=int, default=None, help="repeats of (c); default --repeat")
    args = parser.parse_args()
    chosen = controls()
    ids = [c["id"] for c in chosen]
    print(f"{len(chosen)} controls: {' '.join(ids)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="oaops-bench-audit-") as tmpdir:
        tmp = Path(tmpdir)
        env = site(tmp)
        per_control = tmp / "per_control.yml"
        write_per_control(per_control, chosen)
        extra = json.dumps({"oa_audit_profile": "baseline", "oa_audit_only": ids})
        for n in args.hosts:
            inventory = tmp / f"hosts{n}.ini"
            write_inventory(inventory, n)
            one_call = [
                str(BIN / "ansible-playbook"),
                "-i",
                str(inventory),
                "-f",
                str(args.forks),
                "playbooks/audit.yml",
                "-e",
                extra,
            ]
            recorded = [
                str(BIN / "oaops"),
                "audit",
                "--profile",
                "baseline",
                "-i",
                str(inventory),
                "-f",
                str(args.forks),
                "--quiet",
            ]
            recorded += [x for i in ids for x in ("--control", i)]
            per_task = [str(BIN / "ansible-playbook"), "-i", str(inventory), "-f", str(args.forks), str(per_control)]
            a, b, c = [], [], []
            for i in range(args.repeat):
                a.append(timed(one_call, env))
                b.append(timed(recorded, env))
                if i < (args.per_control_repeat or args.repeat):
                    c.append(timed(per_task, env))
                print(f"  {n} hosts, round {i + 1}: one call {a[-1]:.1f}s, oaops audit {b[-1]:.1f}s"
                      + (f", per control {c[-1]:.1f}s" if len(c) == i + 1 else ""), flush=True)  # fmt: skip
            ma, mb, mc = statistics.median(a), statistics.median(b), statistics.median(c)
            rows.append((n, len(chosen), ma, mb, mc))
    print()
    print(
        "| hosts | controls | one call per host (a) | oaops audit, recorded (b) | one task per control (c) "
        "| b/a | c/a speedup |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, k, ma, mb, mc in rows:
        print(f"| {n} | {k} | {ma:.1f} s | {mb:.1f} s | {mc:.1f} s | {mb / ma:.2f} | {mc / ma:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
