"""`oaops web install --systemd`: the console as a systemd service (one uvicorn worker on loopback,
behind nginx with TLS, docs/web.md)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from oaops.config import Config
from oaops.errors import InputError

MARKER = "# Managed by oaops web install"
SERVICE_FILE = "oaops-web.service"


@dataclass(frozen=True)
class UnitFile:
    path: Path
    text: str
    state: str = "planned"  # planned (dry run) / written / unchanged


def _quote(value: str) -> str:
    if value and all(c.isalnum() or c in "/._-=:@+," for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(cfg: Config, user: str, host: str, port: int) -> str:
    binary = Path(sys.executable).parent / "oaops"
    argv = [str(binary)] if binary.exists() else [sys.executable, "-m", "oaops"]
    cmd = " ".join(_quote(a) for a in [*argv, "web", "--host", host, "--port", str(port)])
    env = {"OAOPS_HOME": str(cfg.root), "OAOPS_CONFIG": str(cfg.path)}
    environment = "".join(f"Environment={_quote(f'{k}={v}')}\n" for k, v in env.items())
    # the records (a SQLite file under var/) and the credentials file beside oaops.yml
    writable = sorted({cfg.root / "var", cfg.path.parent / "var"})
    return (
        f"{MARKER} --systemd: re-run it to change this file; do not edit.\n"
        "[Unit]\n"
        "Description=oaops web console (uvicorn on loopback; nginx terminates TLS)\n"
        f"Documentation=file://{cfg.root}/docs/web.md\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"User={user}\n"
        f"WorkingDirectory={cfg.root}\n"
        f"{environment}"
        f"ExecStart={cmd}\n"
        "Restart=on-failure\n"
        "RestartSec=2\n"
        "NoNewPrivileges=true\n"
        "PrivateTmp=true\n"
        "ProtectSystem=strict\n"
        "ProtectHome=read-only\n"
        f"ReadWritePaths={' '.join(_quote(str(p)) for p in writable)}\n"
        "UMask=0077\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def install(cfg: Config, user: str, host: str, port: int, dest: Path | None, dry_run: bool) -> UnitFile:
    folder = dest or Path("/etc/systemd/system")
    unit = UnitFile(folder / SERVICE_FILE, render(cfg, user, host, port))
    if dry_run:
        return unit
    if unit.path.exists():
        text = unit.path.read_text(encoding="utf-8")
        if not text.startswith(MARKER):
            raise InputError(str(unit.path), "exists and was not written by oaops", "move it away, or pass --dest DIR")
        if text == unit.text:
            return UnitFile(unit.path, unit.text, "unchanged")
    if not folder.is_dir():
        raise InputError(str(folder), "is not a folder", "create it, or pass --dest DIR")
    tmp = unit.path.with_name(f".{unit.path.name}.tmp")
    try:
        tmp.write_text(unit.text, encoding="utf-8")
        tmp.chmod(0o644)
        os.replace(tmp, unit.path)
    except OSError as exc:
        raise InputError(
            str(unit.path), f"cannot be written ({exc.strerror})", "run as root, or pass --dest DIR"
        ) from None
    return UnitFile(unit.path, unit.text, "written")
