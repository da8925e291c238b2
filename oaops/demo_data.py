"""`python -m oaops.demo_data` and `from oaops import demo_data`, kept under the old name: the
OA-like data set to back up lives in oaops.demo.data."""

from __future__ import annotations

import sys

from oaops.demo.data import (
    DEFAULT_DATABASE,
    SeedError,
    Size,
    drop_mariadb,
    drop_postgres,
    main,
    mariadb_schema_sql,
    pg_schema_sql,
    postgres_size,
    seed_files,
    seed_mariadb,
    seed_postgres,
)

__all__ = [
    "DEFAULT_DATABASE",
    "SeedError",
    "Size",
    "drop_mariadb",
    "drop_postgres",
    "main",
    "mariadb_schema_sql",
    "pg_schema_sql",
    "postgres_size",
    "seed_files",
    "seed_mariadb",
    "seed_postgres",
]

if __name__ == "__main__":
    sys.exit(main())
