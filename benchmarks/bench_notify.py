"""What a notification costs the operation that sends it (R13), and what a dead receiver costs.

    .venv/bin/python benchmarks/bench_notify.py --repeat 20

Builds a throw-away site (SQLite records) whose audiences point at a real SMTP server (aiosmtpd),
a real webhook receiver, a closed port, and a port that accepts and never answers (a black hole),
then times `notify.deliver` (record, send, record the result) for each, medians of --repeat, and
the wall time of a whole `oaops fault` step command (a new process) that mails one audience.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from oaops import config  # noqa: E402
from tests.fixtures.receivers import HttpReceiver, SmtpReceiver, free_port  # noqa: E402


def black_hole() -> int:
    """A port that accepts connections and never says a word (a hung receiver)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            conn, _ = srv.accept()
            held.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    return int(srv.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    smtp = SmtpReceiver().start()
    hook = HttpReceiver().start()
    hole = black_hole()
    tmp = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    cfg = tmp / "oaops.yml"
    cfg.write_text(
        config.starter("bench")
        + f"""
notifications:
  timeout: {args.timeout}
  max_attempts: 1000
  audiences:
    technicians: ["{smtp.url("tech@example.test")}"]
    managers: ["{hook.url()}"]
    vendor: ["json://127.0.0.1:{free_port()}/closed"]
    leader: ["json://127.0.0.1:{hole}/hung", "json://127.0.0.1:{hole}/hung2"]
faults:
  plans: {{II: "plan II", III: "plan III"}}
""",
        encoding="utf-8",
    )
    env = {
        "OAOPS_HOME": str(ROOT),
        "OAOPS_CONFIG": str(cfg),
        "OAOPS_DB_URL": f"sqlite:///{tmp}/oaops.db",
        "OAOPS_USER": "bench",
    }
    os.environ.update(env)
    from oaops.services import notify
    from oaops.services.context import open_context

    ctx = open_context()
    cases = [
        ("e-mail to a local SMTP server (aiosmtpd)", "technicians", args.repeat),
        ("webhook to a local HTTP receiver (json://)", "managers", args.repeat),
        ("closed port (connection refused)", "vendor", args.repeat),
        (f"2 receivers that never answer (timeout {args.timeout:g} s)", "leader", 3),
    ]
    print("| case | sends | median s | max s | status |\n|---|---:|---:|---:|---|")
    for label, audience, n in cases:
        times, statuses = [], set()
        for i in range(n):
            t = time.perf_counter()
            out = notify.deliver(
                ctx,
                "fault.leader_notified",
                audiences=(audience,),
                ref=f"FLT-BENCH-{i}",
                summary="OA 登录页无法访问",
                level="II",
                level_zh="Ⅱ级",
            )
            times.append(time.perf_counter() - t)
            statuses |= {r.status for r in out.rows}
        print(f"| {label} | {n} | {statistics.median(times):.3f} | {max(times):.3f} | {', '.join(sorted(statuses))} |")
    ctx.close()
    oaops = str(Path(sys.executable).parent / "oaops")
    subprocess.run(
        [oaops, "fault", "open", "--summary", "bench", "--hosts", "localhost"],
        env=os.environ,
        check=True,
        capture_output=True,
    )
    walls = []
    for step in ("triage --cause other --no-evidence", "activate-plan", "notify-leader", "suspend-use", "repair"):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(
            [oaops, "fault", *step.split(), "FLT-" + time.strftime("%Y") + "-0001"],
            env=os.environ,
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        walls.append((step.split()[0], wall, cpu))
    load = os.getloadavg()[0]
    print(f"\n| `oaops fault` step (new process, load {load:.1f}) | wall s | CPU s |\n|---|---:|---:|")
    for step, wall, cpu in walls:
        print(f"| {step} | {wall:.2f} | {cpu:.2f} |")
    smtp.stop()
    hook.stop()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
