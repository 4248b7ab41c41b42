"""SQLite for the stores: one way to open a database, to write a transaction and to migrate.

Every store of agentbazaar (the spend ledger, channel records, settlements, retained responses,
the discovery index, receipts, contributions, lineage) opens its file here:

* ``connect(path)``: a file in WAL mode (readers never block the writer; other processes may
  open it too) with a busy timeout, ``synchronous`` NORMAL unless the store asks for FULL, in
  autocommit (``isolation_level=None``): a transaction is always explicit. ``None`` or
  ``":memory:"`` is a private in-memory database.
* ``transaction(conn)``: ``BEGIN IMMEDIATE`` (the write lock is taken up front, so a
  read-then-write cannot be overtaken by another writer), ``COMMIT`` on success, ``ROLLBACK``
  on any error, the error passing through.
* ``migrate(conn, migrations, name=...)``: the schema is a list of steps (SQL scripts or
  functions of the connection); ``PRAGMA user_version`` counts the steps applied. The missing
  ones run in order in one transaction, so a failing step leaves the file as it was. A file
  whose version is above what this code knows was written by a newer agentbazaar and is
  refused (``DatabaseTooNew``) rather than written with an older idea of its schema. Files from
  before versions (``user_version`` 0) were created with ``CREATE ... IF NOT EXISTS``: the first
  step of each store is that same schema, so they open as they are.
* ``Database``: one connection shared by a store's threads behind a lock, with ``locked()``
  (statements in autocommit) and ``transaction()``. ``Backend`` is what a store needs of it: the
  seam where another database would plug in (it would hand out a DB-API connection with the
  same semantics, and its migrations; the stores' SQL is SQLite's dialect today).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Literal, Protocol

from agentbazaar.errors import DatabaseTooNew

__all__ = [
    "MEMORY",
    "Backend",
    "Database",
    "Migration",
    "add_columns",
    "connect",
    "migrate",
    "schema_version",
    "transaction",
]

MEMORY = ":memory:"
Synchronous = Literal["FULL", "NORMAL"]
Migration = str | Callable[[sqlite3.Connection], None]
RowFactory = Callable[[sqlite3.Cursor, tuple[object, ...]], object]


def connect(
    path: Path | str | None,
    *,
    timeout: float = 30.0,
    synchronous: Synchronous = "NORMAL",
    row_factory: RowFactory | type[sqlite3.Row] | None = None,
) -> sqlite3.Connection:
    """Open ``path`` (its directory is created; ``None`` or ``":memory:"``: in memory) in WAL
    mode, autocommit, usable from any thread (the caller serialises its use)."""
    target = MEMORY if path is None else str(path)
    if target != MEMORY:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(target, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        if target != MEMORY:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        conn.close()
        raise
    if row_factory is not None:
        conn.row_factory = row_factory
    return conn


def transaction(conn: sqlite3.Connection) -> AbstractContextManager[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; on any error (a failed ``COMMIT`` included)
    ``ROLLBACK`` and re-raise: nothing of the block is written."""
    return _Transaction(conn)


class _Transaction:
    """``transaction``, as a class: it is on the hot path of the channel store's commits."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            try:
                self.conn.execute("COMMIT")
                return
            except BaseException:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the first error is the one to report
                self.conn.execute("ROLLBACK")


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], *, name: str) -> int:
    """Apply the steps of ``migrations`` this database has not had yet, in order, in one
    transaction; returns the schema version (``len(migrations)``). ``name`` (the file) is what
    ``DatabaseTooNew`` names when the database is newer than ``migrations``."""
    known = len(migrations)
    if _check_version(conn, known, name) == known:
        return known  # up to date: no write lock taken
    with transaction(conn):
        version = _check_version(conn, known, name)  # another process may have migrated it
        for step in migrations[version:]:
            if callable(step):
                step(conn)
            else:
                for statement in _statements(step):
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version={known}")
    return known


def add_columns(table: str, columns: Mapping[str, str]) -> Callable[[sqlite3.Connection], None]:
    """A step adding ``columns`` (name -> declaration) to ``table``, each where it is missing:
    files from before versions were brought up to date by such checks on every open, so one
    may have some of the columns already."""

    def step(conn: sqlite3.Connection) -> None:
        have = {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, declaration in columns.items():
            if name not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")

    return step


def _check_version(conn: sqlite3.Connection, known: int, name: str) -> int:
    version = schema_version(conn)
    if version > known:
        raise DatabaseTooNew(
            f"{name} was written by a newer agentbazaar (schema version {version}, this one "
            f"knows up to {known}): upgrade agentbazaar, or use another file",
            path=name,
            version=version,
            known=known,
        )
    return version


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script`` (``executescript`` would commit the open transaction)."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending
            pending = ""
    if pending.strip(" \t\r\n;"):
        yield pending


class Backend(Protocol):
    """What a store needs of its database (``Database`` is SQLite's): the connection for one
    thread at a time, a write transaction, and closing."""

    path: str

    def locked(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def close(self) -> None: ...


class Database:
    """One SQLite connection (``connect``) shared by a store's threads behind one lock, its
    schema brought up to date by ``migrations`` on open."""

    def __init__(
        self,
        path: Path | str | None,
        migrations: Sequence[Migration] = (),
        *,
        timeout: float = 30.0,
        synchronous: Synchronous = "NORMAL",
        row_factory: RowFactory | type[sqlite3.Row] | None = None,
    ) -> None:
        self.path = MEMORY if path is None else str(path)
        self.conn = connect(
            self.path, timeout=timeout, synchronous=synchronous, row_factory=row_factory
        )
        try:
            migrate(self.conn, migrations, name=self.path)
        except BaseException:
            self.conn.close()
            raise
        self.lock = threading.RLock()

    def locked(self) -> AbstractContextManager[sqlite3.Connection]:
        """The connection, for this thread alone; each statement commits on its own."""
        return _Locked(self.lock, self.conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside ``transaction`` (written all or nothing)."""
        with self.lock, _Transaction(self.conn):
            yield self.conn

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class _Locked:
    __slots__ = ("conn", "lock")

    def __init__(self, lock: threading.RLock, conn: sqlite3.Connection) -> None:
        self.lock, self.conn = lock, conn

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        return self.conn

    def __exit__(self, *_: object) -> None:
        self.lock.release()
