"""Benchmark (issue 19 point 5): the WHOLE control catalog in one module call per host against one
task per control, on 20 and 100 local-connection hosts, and the audit's wall time on one host
beside Lynis and OpenSCAP.

  scale  (a) `ansible-playbook playbooks/audit.yml`: the oa_audit role, ONE oaops_audit call per
             host evaluating every catalog control that needs no database, web endpoint, package
             index or oaops records (SKIP_KINDS), forks 10;
         (c) a generated playbook with one task per control (CIS-role style), each task calling the
             same module with its one control, so the checking work is identical and the gap is
             what Ansible pays per task and host. With --sample K, (c) runs every K-th control only
             and its time is scaled by controls/sampled (printed as extrapolated): one task per
             control for ~200 controls on 100 hosts takes over an hour on a 2-core machine.
  tools  on this host: the oaops module with profile mlps2-level3 (databases included), `lynis audit
         system --quick` and `oscap xccdf eval` of the SSG profile with the most rules (the Debian 12
         copy of tests/fixtures/openscap.py), each run --repeat times, medians.

    .venv/bin/python benchmarks/bench_audit_catalog.py tools --repeat 3
    .venv/bin/python benchmarks/bench_audit_catalog.py scale --hosts 20 100 --sample 1 10
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
FILES = ROOT / "roles" / "oa_audit" / "files"
SKIP_KINDS = {"sql", "sql_rows", "redis", "http", "records", "updates", "pg_hba", "nginx"}
SSG_PROFILE = "xccdf_org.ssgproject.content_profile_anssi_np_nt28_high"
DATABASES = [
    {"name": "pg", "type": "postgresql", "host": "127.0.0.1", "user": "postgres"},
    {"name": "my", "type": "mysql", "host": "127.0.0.1", "user": "root"},
    {"name": "rd", "type": "redis", "host": "127.0.0.1"},
]


def catalog() -> list[dict[str, Any]]:
    return list(yaml.safe_load((FILES / "catalog.yml").read_text(encoding="utf-8"))["controls"])


def host_controls() -> list[dict[str, Any]]:
    return [c for c in catalog() if c["check"]["kind"] not in SKIP_KINDS]


def write_inventory(path: Path, n: int) -> None:
    hosts = "\n".join(
        f"oa{i:03d} ansible_connection=local ansible_python_interpreter={sys.executable}" for i in range(1, n + 1)
    )
    groups = "\n".join(f"[{layer}:children]\nestate" for layer in ("os", "unit_hq"))
    path.write_text(f"[estate]\n{hosts}\n\n{groups}\n", encoding="utf-8")


def write_per_control(path: Path, chosen: list[dict[str, Any]]) -> None:
    tasks = [
        {
            "name": f"{c['id']} | AUDIT | {c['title']['en']}",
            "oaops_audit": {"catalog": [c], "profile": {"name": "all", "select": {}}, "groups": "{{ group_names }}"},
        }
        for c in chosen
    ]
    play = [{"name": "Audit one task per control", "hosts": "all", "gather_facts": False, "tasks": tasks}]
    path.write_text(yaml.safe_dump(play, sort_keys=False, allow_unicode=True), encoding="utf-8")


def env() -> dict[str, str]:
    import os

    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{BIN}:{os.environ.get('PATH', '')}")


CPU: list[float] = []  # CPU seconds (user + sys) of each timed command and all its children


def timed(cmd: list[str], ok: tuple[int, ...] = (0, 1, 2)) -> float:
    """Wall seconds; the CPU seconds go to CPU (on a shared machine they are the steadier figure)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if proc.returncode not in ok or "unreachable=1" in proc.stdout:
        raise SystemExit(f"{' '.join(cmd[:3])}... exited {proc.returncode}: {proc.stdout[-1500:]} {proc.stderr[-800:]}")
    return elapsed


def scale(args: argparse.Namespace) -> None:
    chosen = host_controls()
    ids = [c["id"] for c in chosen]
    print(f"{len(chosen)} controls (every catalog control but kinds {', '.join(sorted(SKIP_KINDS))})", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="oaops-bench-catalog-") as tmpdir:
        tmp = Path(tmpdir)
        extra = json.dumps({"oa_audit_only": ids, "oa_audit_profile_data": {"name": "all", "select": {}}})
        extra_file = tmp / "extra.json"
        extra_file.write_text(extra, encoding="utf-8")
        for n, sample in zip(args.hosts, args.sample, strict=True):
            inventory = tmp / f"hosts{n}.ini"
            write_inventory(inventory, n)
            sampled = chosen[::sample]
            per_control = tmp / f"per_control_{sample}.yml"
            write_per_control(per_control, sampled)
            one = [str(BIN / "ansible-playbook"), "-i", str(inventory), "-f", str(args.forks), "playbooks/audit.yml"]
            one += ["-e", f"@{extra_file}"]
            per = [str(BIN / "ansible-playbook"), "-i", str(inventory), "-f", str(args.forks), str(per_control)]
            a, a_cpu = [], []
            for _ in range(args.repeat):
                a.append(timed(one))
                a_cpu.append(CPU[-1])
            c = timed(per)
            c_cpu = CPU[-1]
            factor = len(chosen) / len(sampled)
            rows.append(
                (n, len(chosen), len(sampled), statistics.median(a), statistics.median(a_cpu), c, c_cpu, factor)
            )
            per_note = f"per control ({len(sampled)} controls) {c:.1f}s (CPU {c_cpu:.1f}s)"
            print(f"  {n} hosts: one call {a} (CPU {a_cpu}), {per_note}", flush=True)
    print(
        "\n| hosts | controls | (a) one call per host: wall / CPU | (c) one task per control: wall / CPU "
        "| c/a wall | c/a CPU |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for n, k, s, ma, ma_cpu, c, c_cpu, factor in rows:
        note = "" if s == k else f" (x{factor:.1f} from {s} controls: {c:.0f} s / {c_cpu:.0f} s)"
        print(f"| {n} | {k} | {ma:.1f} s / {ma_cpu:.1f} s | {c * factor:.0f} s / {c_cpu * factor:.0f} s{note} "
              f"| {c * factor / ma:.1f}x | {c_cpu * factor / ma_cpu:.1f}x |")  # fmt: skip


def tools(args: argparse.Namespace) -> None:
    from tests.fixtures import openscap

    profile = yaml.safe_load((FILES / "profiles" / "mlps2-level3.yml").read_text(encoding="utf-8"))
    payload = {"catalog": catalog(), "profile": profile, "groups": ["os", "database"], "databases": DATABASES}
    results: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="oaops-bench-tools-") as tmpdir:
        tmp = Path(tmpdir)
        args_file = tmp / "args.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": payload}), encoding="utf-8")
        out = subprocess.run([sys.executable, "library/oaops_audit.py", str(args_file)], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        counts = json.loads(out)["oaops"]["counts"]
        notes["oaops"] = f"{sum(counts.values())} controls of mlps2-level3 ({counts})"
        cmds = {"oaops": [sys.executable, "library/oaops_audit.py", str(args_file)]}
        if shutil.which("lynis"):
            cmds["lynis"] = ["lynis", "audit", "system", "--quick", "--no-colors", "--no-log"]
            notes["lynis"] = "`lynis audit system --quick` (all its tests)"
        if openscap.problem() is None:
            text = openscap.SSG_DEBIAN.read_text(encoding="utf-8")
            text = text.replace('<xccdf-1.2:platform idref="cpe:/o:debian:debian_linux:11"/>', "")
            text = text.replace('<xccdf-1.2:platform idref="#machine"/>', "")
            ds = tmp / "ds.xml"
            ds.write_text(text, encoding="utf-8")
            cmds["openscap"] = [
                "oscap",
                "xccdf",
                "eval",
                "--profile",
                SSG_PROFILE,
                "--results",
                str(tmp / "r.xml"),
                str(ds),
            ]
            rules = text.split(f'<xccdf-1.2:Profile id="{SSG_PROFILE}"', 1)[1].split("</xccdf-1.2:Profile>", 1)[0]
            selected = rules.count('selected="true"')
            notes["openscap"] = f"SSG {SSG_PROFILE.rsplit('_profile_', 1)[1]}, {selected} rules"
        for _ in range(args.repeat):
            for name, cmd in cmds.items():
                results.setdefault(name, []).append(timed(cmd, ok=(0, 1, 2)))
                cpu.setdefault(name, []).append(CPU[-1])
                print(f"  {name}: {results[name][-1]:.1f}s (CPU {CPU[-1]:.1f}s)", flush=True)
    print("\n| tool | what | wall time (median) | CPU time (median) |")
    print("|---|---|---:|---:|")
    for name, times in results.items():
        print(
            f"| {name} | {notes.get(name, '')} | {statistics.median(times):.1f} s "
            f"| {statistics.median(cpu[name]):.1f} s |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("scale")
    s.add_argument("--hosts", type=int, nargs="+", default=[20, 100])
    s.add_argument("--sample", type=int, nargs="+", default=[1, 10], help="per-control: every K-th control, per N")
    s.add_argument("--repeat", type=int, default=1)
    s.add_argument("--forks", type=int, default=10)
    t = sub.add_parser("tools")
    t.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scale(args) if args.what == "scale" else tools(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
