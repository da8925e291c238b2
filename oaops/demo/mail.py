"""A local SMTP sink for trying notifications (docs/faults.md): prints each message decoded,
Chinese included, as the people on the list would read it.

    .venv/bin/python -m oaops.demo_mail --port 8025

Any SMTP server will do (e.g. `python -m aiosmtpd -n -l 127.0.0.1:8025`, which prints the raw,
encoded message); this one decodes the subject and the text part.
"""

from __future__ import annotations

import argparse
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class Printer:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        text = ""
        if isinstance(msg, EmailMessage):
            part = msg.get_body(preferencelist=("plain", "html"))
            text = part.get_content() if part is not None else ""
        print("=" * 78)
        print(f"To: {', '.join(envelope.rcpt_tos)}")
        print(f"Subject: {msg['subject']}")
        print("-" * 78)
        print(text.replace("\r\n", "\n").rstrip())
        print(flush=True)
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m oaops.demo_mail", description="Print the mail oaops sends (a local SMTP sink)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args()
    controller = Controller(Printer(), hostname=args.host, port=args.port)
    try:
        controller.start()
    except OSError as exc:
        raise SystemExit(f"demo_mail: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    print(f"SMTP sink on {args.host}:{args.port}; Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
