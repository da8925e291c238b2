"""`python -m oaops.demo_site`, kept under the old name: the stand-in OA login page lives in
oaops.demo.site."""

from __future__ import annotations

import sys

from oaops.demo.site import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
