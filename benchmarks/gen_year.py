"""The demo year generator (R5, R6): a realistic year of records on SQLite or PostgreSQL.

The generator itself is oaops.demo.year (so `oaops demo year` has it in an installed package);
this is its command line for benchmarks and for people with a checkout:

    .venv/bin/python -m benchmarks.gen_year --db sqlite:///var/demo.db --end 2026-10
    .venv/bin/python -m benchmarks.gen_year --db postgresql+psycopg://postgres@127.0.0.1/oaops_demo
    .venv/bin/python -m benchmarks.gen_year --db sqlite:////tmp/small.db --small

Importable (tests use the small size): `from benchmarks.gen_year import generate, FULL, SMALL`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from oaops.demo.year import FULL, SMALL, EmptyRequired, Generated, Size, generate  # noqa: E402
from oaops.store.db import open_database  # noqa: E402

__all__ = ["FULL", "SMALL", "Generated", "Size", "generate", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="records database URL (must hold no runs yet)")
    parser.add_argument("--end", help="last month generated, YYYY-MM (default: last month)")
    parser.add_argument("--small", action="store_true", help="2 months of 8 hosts")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    db = open_database(args.db)
    try:
        g = generate(
            db, args.end, SMALL if args.small else FULL, seed=args.seed, progress=lambda s: print(s, file=sys.stderr)
        )
    except EmptyRequired:
        print(f"gen_year: {args.db} already holds runs; use an empty database", file=sys.stderr)
        return 2
    finally:
        db.dispose()
    print(f"{g.first}..{g.last} in {g.seconds:.1f}s: " + ", ".join(f"{n} {t}" for t, n in g.rows.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
