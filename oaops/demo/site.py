"""A tiny stand-in for the OA application's login page, so `oaops health` on a fresh machine
checks a real HTTP endpoint (inventories/local's application and middleware layers).

    python -m oaops.demo_site --port 18080 --background
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>OA 办公系统 · 登录 (demo)</title></head>
<body><h1>OA 办公系统</h1><p>Office automation system — sign in (oaops demo page)</p>
<form method="post" action="/login"><input name="user"><input name="password" type="password">
<button>登录 Sign in</button></form></body></html>
""".encode()


class Handler(BaseHTTPRequestHandler):
    server_version = "oaops-demo"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        return  # quiet: it is a health-check target, not a service to log


def listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m oaops.demo_site", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--background", action="store_true", help="start detached unless already listening")
    args = parser.parse_args(argv)
    if args.background:
        if listening(args.host, args.port):
            print(f"demo OA page already listening on http://{args.host}:{args.port}/")
            return 0
        log = Path(os.environ.get("OAOPS_HOME", ".")) / "var" / "demo_site.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as sink:
            subprocess.Popen(
                [sys.executable, "-m", "oaops.demo.site", "--host", args.host, "--port", str(args.port)],
                stdout=sink,
                stderr=sink,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if listening(args.host, args.port):
                print(f"demo OA page started on http://{args.host}:{args.port}/")
                return 0
            time.sleep(0.1)
        print(f"demo OA page did not start; see {log}", file=sys.stderr)
        return 1
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
