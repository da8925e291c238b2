"""`python -m oaops.demo_mail`, kept under the old name: the local SMTP sink lives in
oaops.demo.mail."""

from __future__ import annotations

from oaops.demo.mail import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
