"""agentbazaar.sqlite: migrations run once whatever the open/close sequence, a failing step or
transaction writes nothing, concurrent writers lose no update, a newer file is refused."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentbazaar.errors import DatabaseTooNew
from agentbazaar.sqlite import (
    Backend,
    Database,
    Migration,
    connect,
    migrate,
    schema_version,
    transaction,
)


def _steps(n: int) -> list[Migration]:
    """n steps: the first creates ``ran``, each later one its own table and a row in ``ran``."""
    if n == 0:
        return []
    steps: list[Migration] = ["CREATE TABLE IF NOT EXISTS ran (step INTEGER NOT NULL)"]
    for i in range(1, n):

        def step(conn: sqlite3.Connection, i: int = i) -> None:
            conn.execute(f"CREATE TABLE t{i} (x INTEGER)")
            conn.execute("INSERT INTO ran VALUES (?)", (i,))

        steps.append(step if i % 2 else f"CREATE TABLE t{i} (x INTEGER); INSERT INTO ran VALUES ({i});")  # fmt: skip
    return steps


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {str(r[0]) for r in rows}


@settings(max_examples=40, deadline=None)
@given(opens=st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=8))
def test_each_step_applies_once_in_order_whatever_the_opens(
    tmp_path_factory: pytest.TempPathFactory, opens: list[int]
) -> None:
    """Opening with a growing (or shrinking back to known) list of steps: every step runs
    exactly once, in order, and user_version is the number applied."""
    path = tmp_path_factory.mktemp("db") / "m.sqlite"
    applied = 0
    for n in opens:
        n = max(n, applied)  # an older list than the file is the refusal tested below
        db = Database(path, _steps(n))
        applied = n
        with db.locked() as conn:
            assert schema_version(conn) == n
            if n:
                ran = [r[0] for r in conn.execute("SELECT step FROM ran ORDER BY rowid")]
                assert ran == list(range(1, n))
        db.close()


@settings(max_examples=30, deadline=None)
@given(good=st.integers(min_value=1, max_value=4), bad_at=st.integers(min_value=0, max_value=3))
def test_a_failing_step_leaves_version_and_schema_as_they_were(
    tmp_path_factory: pytest.TempPathFactory,
    good: int,
    bad_at: int,
) -> None:
    path = tmp_path_factory.mktemp("db") / "f.sqlite"
    Database(path, _steps(good)).close()
    conn = connect(path)
    before = (schema_version(conn), _tables(conn))

    def boom(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("step failed")

    steps = _steps(good + bad_at)
    with pytest.raises(RuntimeError, match="step failed"):
        migrate(conn, [*steps, boom, "CREATE TABLE never (x INTEGER)"], name=str(path))
    assert (schema_version(conn), _tables(conn)) == before
    assert not conn.in_transaction
    conn.close()


def test_a_failing_sql_step_writes_nothing(tmp_path: Path) -> None:
    conn = connect(tmp_path / "s.sqlite")
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, ["CREATE TABLE a (x INTEGER); CREATE TABLE a (y INTEGER);"], name="s")
    assert schema_version(conn) == 0 and _tables(conn) == set()


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=20), fail=st.booleans())
def test_a_transaction_that_raises_writes_nothing(rows: list[int], fail: bool) -> None:
    db = Database(None, ["CREATE TABLE t (x INTEGER)"])
    try:
        with db.transaction() as conn:
            conn.execute("INSERT INTO t VALUES (0)")
        try:
            with db.transaction() as conn:
                conn.executemany("INSERT INTO t VALUES (?)", [(r,) for r in rows])
                if fail:
                    raise KeyError("caller's error")
        except KeyError:
            pass
        with db.locked() as conn:
            got = [r[0] for r in conn.execute("SELECT x FROM t ORDER BY rowid")]
            assert not conn.in_transaction
        assert got == ([0] if fail else [0, *rows])
    finally:
        db.close()


def _increment(path: str, times: int) -> None:
    conn = connect(path)
    for _ in range(times):
        with transaction(conn):
            (n,) = conn.execute("SELECT n FROM counter").fetchone()
            conn.execute("UPDATE counter SET n = ?", (n + 1,))
    conn.close()


_COUNTER = ["CREATE TABLE counter (n INTEGER NOT NULL); INSERT INTO counter VALUES (0);"]


@settings(max_examples=5, deadline=None)
@given(threads=st.integers(min_value=2, max_value=6), times=st.integers(min_value=1, max_value=30))
def test_concurrent_threads_lose_no_increment(
    tmp_path_factory: pytest.TempPathFactory, threads: int, times: int
) -> None:
    """Read-modify-write in BEGIN IMMEDIATE from several connections: the write lock is taken
    before the read, so no increment is lost."""
    path = str(tmp_path_factory.mktemp("db") / "c.sqlite")
    Database(path, _COUNTER).close()
    workers = [threading.Thread(target=_increment, args=(path, times)) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    conn = connect(path)
    assert conn.execute("SELECT n FROM counter").fetchone()[0] == threads * times
    conn.close()


def test_two_processes_lose_no_increment(tmp_path: Path) -> None:
    path = str(tmp_path / "p.sqlite")
    Database(path, _COUNTER).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_increment, args=(path, 100)) for _ in range(2)]
    for p in procs:
        p.start()
    _increment(path, 100)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    conn = connect(path)
    assert conn.execute("SELECT n FROM counter").fetchone()[0] == 300
    conn.close()


@settings(max_examples=20, deadline=None)
@given(written=st.integers(min_value=1, max_value=6), known=st.integers(min_value=0, max_value=5))
def test_a_newer_file_is_refused_with_its_name(
    tmp_path_factory: pytest.TempPathFactory, written: int, known: int
) -> None:
    path = tmp_path_factory.mktemp("db") / "new.sqlite"
    Database(path, _steps(written)).close()
    if known >= written:
        Database(path, _steps(known)).close()
        return
    with pytest.raises(DatabaseTooNew) as info:
        Database(path, _steps(known))
    assert str(path) in str(info.value)
    assert info.value.fields == {"path": str(path), "version": written, "known": known}
    conn = connect(path)
    assert schema_version(conn) == written  # untouched
    conn.close()


def test_a_file_from_before_versions_opens_as_it_is(tmp_path: Path) -> None:
    """A store's files from before user_version: the first step (its IF NOT EXISTS schema)
    runs over the existing tables without touching their rows."""
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)")
    old.execute("INSERT INTO kv VALUES ('a', 'b')")
    old.commit()
    old.close()
    db = Database(path, ["CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)"])
    with db.locked() as conn:
        assert conn.execute("SELECT k, v FROM kv").fetchall() == [("a", "b")]
        assert schema_version(conn) == 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_memory_databases_are_private() -> None:
    a: Backend = Database(None, _COUNTER)
    b: Backend = Database(":memory:", _COUNTER)
    with a.transaction() as conn:
        conn.execute("UPDATE counter SET n = 5")
    with b.locked() as conn:
        assert conn.execute("SELECT n FROM counter").fetchone()[0] == 0
    a.close()
    b.close()
