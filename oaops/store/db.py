"""Engine and sessions: SQLite file by default, PostgreSQL by URL; migrations on first use.

Writers are serialised so the journal's hash chain never forks: SQLite transactions start
with BEGIN IMMEDIATE (the database write lock), PostgreSQL appends take an advisory lock.

Reads that write nothing (the console's pages, the CLI's lists and shows) go through
`Database.read()`: on SQLite a deferred transaction (WAL: a snapshot, taken without the write
lock, so readers run side by side and beside a run's writer) on connections that refuse writes
(`PRAGMA query_only`); on PostgreSQL a READ ONLY, REPEATABLE READ transaction. A write attempted in one raises.
A read() inside a read() of the same thread joins it: a console page reads one snapshot.
`Database.version()` changes whenever a write has been committed, by any process: what a cache of
reads is keyed on, so it is never staler than the records.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.exc import NoSuchModuleError as _NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from oaops.errors import InputError

# The unit of work a service holds (from `Database.transaction()`) and hands to store functions:
# services name its type through this alias, so SQLAlchemy stays inside the store.
Tx: TypeAlias = Session

_MIGRATED: set[str] = set()
_LOCK = threading.Lock()


class Database:
    """One records database: an engine, a session factory, and the migration check."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        # Who writes and under which oaops.yml (see store.journal): copied into every session.
        self.identity: dict[str, Any] = {}
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info=self.identity)
        self._reader: Engine | None = None  # made on the first read()
        self._readers: sessionmaker[Session] | None = None
        self._current = threading.local()  # this thread's open read(), which a nested read() joins
        self._probe: Any = None  # SQLite: the one connection whose data_version tells of commits
        self._probe_lock = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed whole or rolled back whole."""
        with self.sessions.begin() as session:
            yield session

    def _read_engine(self) -> Engine:
        if self._reader is None:
            with _LOCK:
                if self._reader is None:
                    reader = make_engine(self.url, read_only=True)
                    self._readers = sessionmaker(reader, expire_on_commit=False, info=self.identity)
                    self._reader = reader
        return self._reader

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work: one consistent snapshot, no write lock; writing in it raises."""
        joined = getattr(self._current, "session", None)
        if joined is not None:
            yield joined
            return
        self._read_engine()
        assert self._readers is not None
        with self._readers.begin() as session:
            self._current.session = session
            try:
                yield session
            finally:
                self._current.session = None

    def version(self) -> str:
        """A token that differs once any transaction, of any process, has committed a write since
        the last call that returned it. SQLite: `PRAGMA data_version` of one connection that never
        writes; PostgreSQL: the current snapshot (committed and running transactions of the server,
        so other databases' writes change it too: a cache misses more, never shows less)."""
        engine = self._read_engine()
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                return str(conn.execute(text("SELECT pg_current_snapshot()::text")).scalar())
        with self._probe_lock:
            if self._probe is None:
                self._probe = engine.raw_connection()
            cur = self._probe.cursor()
            try:
                cur.execute("PRAGMA data_version")
                return str(cur.fetchone()[0])
            finally:
                cur.close()

    def ensure_schema(self) -> None:
        """Apply Alembic migrations on first use (and `oaops db upgrade`)."""
        with _LOCK:
            if self.url in _MIGRATED:
                return
            from oaops.store import migrate

            migrate.upgrade(self.engine)
            _MIGRATED.add(self.url)

    def dispose(self) -> None:
        self.engine.dispose()
        with self._probe_lock:
            if self._probe is not None:
                self._probe.close()
                self._probe = None
        if self._reader is not None:
            self._reader.dispose()


def describe(url: str) -> str:
    """The URL without its password, for messages (R11)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def make_engine(url: str, read_only: bool = False) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError(
            "db_url",
            f"{url!r} is not a database URL",
            "use sqlite:///var/oaops.db or postgresql+psycopg://user@host:5432/db",
        ) from None
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            # the site's own var/ is made on first use; any other folder must exist, or a typo
            # would start a new, empty (and "intact") record set somewhere else (issue 15)
            if folder.name == "var" and folder.parent.is_dir():
                folder.mkdir(mode=0o700, exist_ok=True)
            elif not folder.is_dir():
                raise InputError(
                    "db_url",
                    f"the folder {folder} of {describe(url)} does not exist",
                    "create it first, or correct OAOPS_DB_URL / settings.db_url",
                )
            _private_file(Path(parsed.database))
        kwargs["connect_args"] = {"timeout": 60, "isolation_level": None}
    elif parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() in ("psycopg2", "") and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs["connect_args"] = {"connect_timeout": 10}
        kwargs["pool_pre_ping"] = True
        # as many connections as the console's worker threads (anyio's 40), so a page never waits
        # for a pooled connection while another thread holds one idle between its transactions
        kwargs["pool_size"], kwargs["max_overflow"] = 10, 30
        if read_only:  # one snapshot for the whole read (a page), which never waits or fails
            kwargs["execution_options"] = {"postgresql_readonly": True}
            kwargs["isolation_level"] = "REPEATABLE READ"
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, _NoSuchModuleError, ImportError) as exc:  # ImportError: the driver is not installed
        raise InputError("db_url", f"{describe(url)}: {exc}", "use a sqlite or postgresql+psycopg URL") from None
    if engine.dialect.name == "sqlite":
        _sqlite_pragmas(engine, read_only)
    return engine


def _private_file(path: Path) -> None:
    """A new records file is the owner's only (0600; its folder exists, see make_engine); SQLite
    gives its -wal and -shm files the same mode. `oaops init` tightens an existing site's files."""
    if not path.exists():
        with contextlib.suppress(FileExistsError):  # another process made it a moment ago
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_pragmas(engine: Engine, read_only: bool) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the run's writer
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        if read_only:
            cur.execute("PRAGMA query_only=ON")  # a read transaction that tries to write fails
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Writers take the write lock at BEGIN, so read-then-write (journal append) cannot race;
        # readers begin deferred: a WAL snapshot, beside each other and beside the writer.
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def check_reachable(db: Database) -> None:
    """A records URL that cannot be reached is bad input: one line, exit 2."""
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc).splitlines()[0]
        raise InputError(
            f"records database {describe(db.url)}",
            f"cannot be reached ({reason})",
            "start the server or correct OAOPS_DB_URL / settings.db_url in oaops.yml",
        ) from None


def advisory_lock(session: Session, key: int) -> None:
    """Serialise a critical section across processes on PostgreSQL (SQLite is already serial)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def open_database(url: str) -> Database:
    db = Database(url)
    check_reachable(db)
    db.ensure_schema()
    return db
