"""Benchmark: the web console under 20 concurrent clients on loopback, over the demo year (issue 17).

Generates the demo year (100 hosts, 12 months) into a fresh SQLite file (and, with --postgres, a
fresh PostgreSQL database), writes an inventory of its hosts in their unit groups, gives the system
manager a password and a TOTP secret, starts the real server as a user does (`oaops web`, one
uvicorn process, its clock set to noon of the year's last day so "today" has its health runs), signs
in with password + TOTP over HTTP, and then 20 clients (asyncio + httpx, one signed-in session)
request, round-robin, the dashboard, the runs list and a change page, `--requests` times each.
Prints p50 / p95 / max per page, the throughput, the server's CPU time per request and the load
average per round (`--clients 1,20`: one client, then twenty, against the same server). Target:
p95 under 150 ms.

    .venv/bin/python benchmarks/bench_web.py --requests 300 --clients 1,20 [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pyotp
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from oaops import config, demo_year  # noqa: E402
from oaops.demo.estate import UNITS, hosts_of  # noqa: E402
from oaops.store.db import open_database  # noqa: E402
from oaops.web import auth  # noqa: E402

PG_NAME = "bench_web_year"  # not oaops_*: tests check that no oaops_* scratch database is left
LOGIN = demo_year.MANAGER
PASSWORD = "bench password 1234"
CLIENTS = 20


def fresh_pg(name: str) -> str:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def site(folder: Path, db_url: str) -> tuple[dict[str, str], str, str]:
    """oaops.yml + inventory + the demo year + credentials; returns env, TOTP secret, a change id."""
    hosts = hosts_of(demo_year.FULL)
    children: dict[str, dict[str, dict[str, None]]] = {}
    for h in hosts:
        for group in (*h.layers, f"unit_{h.unit}"):
            children.setdefault(group, {"hosts": {}})["hosts"][h.name] = None
    inventory = folder / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {h.name: {} for h in hosts}, "children": children}}))
    users = [{"login": LOGIN, "roles": ["system_manager"]}, {"login": demo_year.ADMIN, "roles": ["group_admin"]}]
    users += [{"login": t, "roles": ["technician"]} for t in demo_year.TECHNICIANS]
    units = [{"id": u, "name": u} for u in UNITS]
    settings = {"db_url": db_url, "inventory": str(inventory), "timezone": demo_year.TZ_NAME}
    (folder / "oaops.yml").write_text(yaml.safe_dump({"version": 1, "units": units, "users": users,
                                                      "settings": settings}))  # fmt: skip
    env = {**os.environ, "OAOPS_HOME": str(ROOT), "OAOPS_CONFIG": str(folder / "oaops.yml"), "OAOPS_USER": LOGIN}
    db = open_database(db_url)
    t0 = time.perf_counter()
    g = demo_year.generate(db)
    db.dispose()
    print(f"  generated {g.first}..{g.last} in {time.perf_counter() - t0:.1f} s")
    cfg = config.load(env=env)
    creds = auth.Credentials(auth.credentials_path(cfg))
    creds.set_password(LOGIN, PASSWORD)
    secret = creds.new_totp(LOGIN)
    return env, secret, g.last


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def load(
    url: str, cookies: httpx.Cookies, paths: list[str], requests: int, clients: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {p: [] for p in paths}
    retries: list[str] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(requests * len(paths)):
        queue.put_nowait(paths[i % len(paths)])
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, cookies=cookies, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                path = queue.get_nowait()
                t0 = time.perf_counter()
                try:
                    r = await client.get(path)
                except (httpx.ReadError, httpx.RemoteProtocolError):  # a keep-alive the server just closed
                    retries.append(path)
                    r = await client.get(path)
                times[path].append(time.perf_counter() - t0)
                assert r.status_code == 200, (path, r.status_code)

        await asyncio.gather(*(worker() for _ in range(clients)))
    if retries:
        print(f"  {len(retries)} requests retried on a new connection (timed from the first try)")
    return times


# wrk (Debian's `wrk`, a C load generator) for the same pages: the Python client above spends as much
# CPU per request as the server, on the same two cores, and that shows in its tail latencies.
WRK_SCRIPT = """
done = function(summary, latency, requests)
  io.write(string.format("WRK %d %d %.1f %.1f %.1f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency.max / 1000))
end
"""


def wrk(url: str, cookies: httpx.Cookies, paths: list[str], clients: int, seconds: int) -> None:
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(WRK_SCRIPT)
    for p in paths:
        # wrk counts a redirect (to the sign-in page) as a success: the cookie must give the page itself
        check = httpx.get(url + p, headers={"Cookie": cookie}, follow_redirects=False)
        assert check.status_code == 200 and len(check.content) > 1000, (p, check.status_code)
        out = subprocess.run(
            ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "-s", fh.name, "-H", f"Cookie: {cookie}", url + p],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        n, errors, p50, p95, top = out.split("WRK ", 1)[1].split()
        label = {"/": "dashboard", "/runs": "runs list"}.get(p, "change page")
        print(f"  wrk {clients:2d} conns  {label:12s} n={n:>5s}  p50 {float(p50):6.1f} ms"
              f"  p95 {float(p95):6.1f} ms  max {float(top):6.1f} ms  errors {errors}", flush=True)  # fmt: skip
    os.unlink(fh.name)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def bench(name: str, db_url: str, requests: int, rounds: list[int], wrk_seconds: int = 0) -> None:
    print(f"{name}:", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        env, secret, last = site(Path(tmp), db_url)
        # noon of the year's last day, in the site's zone: the dashboard's "today" has its runs
        first_next = datetime.strptime(last + "-01", "%Y-%m-%d") + timedelta(days=32)
        day = first_next.replace(day=1) - timedelta(days=1)
        now = day.replace(hour=12, tzinfo=ZoneInfo(demo_year.TZ_NAME)).isoformat()
        port = free_port()
        started = time.time()
        proc = subprocess.Popen([str(BIN / "oaops"), "web", "--port", str(port)], env={**env, "OAOPS_NOW": now})
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(url + "/login").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            with httpx.Client(base_url=url, timeout=180) as c:
                page = c.get("/login").text
                token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
                # the server's clock is OAOPS_NOW, and TOTP codes are for that time
                code = pyotp.TOTP(secret).at(datetime.fromisoformat(now) + timedelta(seconds=time.time() - started))
                r = c.post("/login", data={"csrf": token, "login": LOGIN, "password": PASSWORD, "totp": code})
                assert r.status_code == 303, f"sign-in failed: {r.status_code}"
                ids = re.findall(r'href="/changes/(CHG-[0-9-]+)"', c.get("/changes?state=closed").text)
                paths = ["/", "/runs", f"/changes/{ids[len(ids) // 2]}"]
                for p in paths:  # warm: the inventory's unit map, template compilation
                    assert c.get(p).status_code == 200, p
                cookies = c.cookies
            for clients in rounds:
                t0, cpu0 = time.perf_counter(), cpu_seconds(proc.pid)
                times = asyncio.run(load(url, cookies, paths, requests, clients))
                report(times, clients, time.perf_counter() - t0)
                per = (cpu_seconds(proc.pid) - cpu0) / sum(len(v) for v in times.values()) * 1000
                print(f"  server CPU {per:.1f} ms per request; {load_text()}", flush=True)
                if wrk_seconds:
                    wrk(url, cookies, paths, clients, wrk_seconds)
                    print(f"  {load_text()}", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def cpu_seconds(pid: int) -> float:
    """The server process's user + system CPU time (Linux /proc): what a page costs, whatever else
    the machine is doing; the latencies depend on how busy the machine is, this much less."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def report(times: dict[str, list[float]], clients: int, wall: float) -> None:
    total = sum(len(v) for v in times.values())
    for p, values in times.items():
        label = {"/": "dashboard", "/runs": "runs list"}.get(p, "change page")
        print(f"  {clients:2d} clients  {label:12s} n={len(values):4d}  p50 {pct(values, 0.5):6.1f} ms"
              f"  p95 {pct(values, 0.95):6.1f} ms  max {max(values) * 1000:6.1f} ms")  # fmt: skip
    print(f"  {total} requests by {clients} clients in {wall:.1f} s: {total / wall:.0f} requests/s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--requests", type=int, default=300, help="requests per page (default 300)")
    ap.add_argument("--postgres", action="store_true", help="also on PostgreSQL 127.0.0.1:5432")
    ap.add_argument("--clients", default=str(CLIENTS), help="concurrent clients per round, e.g. 1,20 (default 20)")
    ap.add_argument("--wrk", type=int, default=0, metavar="SECONDS", help="also load each page with wrk this long")
    args = ap.parse_args()
    rounds = [int(x) for x in args.clients.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-web-db-") as tmp:
        bench("SQLite", f"sqlite:///{tmp}/oaops.db", args.requests, rounds, args.wrk)
    if args.postgres:
        bench("PostgreSQL", fresh_pg(PG_NAME), args.requests, rounds, args.wrk)
        import psycopg

        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
