"""Every store on agentbazaar.sqlite opens the files the code before schema versions wrote
(``user_version`` 0, the same ``IF NOT EXISTS`` schema, or one from before its added columns)
without losing a row, and refuses a file from a newer version with ``DatabaseTooNew``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentbazaar.agents.store import ReceiptStore
from agentbazaar.channels.store import ChannelStore
from agentbazaar.data.contributions import ContributionStore
from agentbazaar.data.lineage import LineageStore
from agentbazaar.errors import DatabaseTooNew
from agentbazaar.identity.discovery import DiscoveryIndex
from agentbazaar.payments.once import RetainedResponses
from agentbazaar.payments.store import SettlementStore
from agentbazaar.wallet.ledger import Ledger

STORES: dict[str, Callable[[Path], Any]] = {
    "ledger": Ledger,
    "settlements": SettlementStore,
    "responses": RetainedResponses,
    "receipts": ReceiptStore,
    "contributions": ContributionStore,
    "lineage": LineageStore,
    "channels": ChannelStore,
    "discovery": lambda p: DiscoveryIndex(p, chain_id=1, identity_registry="0x" + "11" * 20),
}
# columns each store added to a table after its first release (ALTER TABLE on open)
ADDED: dict[str, tuple[str, list[str]]] = {
    "settlements": ("settlements", ["terms", "lease", "lease_until"]),
    "receipts": ("receipts", ["kind", "extra"]),
    "channels": ("channels", ["pending"]),
    "discovery": ("agents", ["wscore", "wavg", "payers", "clusters"]),
}
VALUES = {"INTEGER": 7, "REAL": 1.5, "BLOB": b"\x01", "TEXT": "t"}


def _tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    return sorted(str(r[0]) for r in rows)


def _columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    return [(str(r[1]), str(r[2]).upper()) for r in conn.execute(f"PRAGMA table_info({table})")]


def _fill(conn: sqlite3.Connection) -> None:
    """One row in every table (``role``: one its CHECK accepts)."""
    for table in _tables(conn):
        cols = _columns(conn, table)
        values = ["issued" if name == "role" else VALUES.get(kind, "t") for name, kind in cols]
        marks = ",".join("?" * len(cols))
        conn.execute(f"INSERT OR IGNORE INTO {table} VALUES ({marks})", values)


def _dump(conn: sqlite3.Connection, like: dict[str, list[str]]) -> dict[str, list[Any]]:
    return {
        table: sorted(conn.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall())
        for table, cols in like.items()
    }


def _open_close(name: str, path: Path) -> None:
    STORES[name](path).close()


@pytest.mark.parametrize("older", [False, True], ids=["same-schema", "before-added-columns"])
@pytest.mark.parametrize("name", sorted(STORES))
def test_a_file_from_before_versions_opens_without_loss(
    name: str, older: bool, tmp_path: Path
) -> None:
    if older and name not in ADDED:
        pytest.skip("no column added since the first release")
    path = tmp_path / f"{name}.sqlite"
    _open_close(name, path)
    raw = sqlite3.connect(path, isolation_level=None)
    version = int(raw.execute("PRAGMA user_version").fetchone()[0])
    assert version >= 1
    _fill(raw)
    if older:
        table, added = ADDED[name]
        for column in added:
            raw.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    raw.execute("PRAGMA user_version = 0")  # as the code before versions left it
    shape = {t: [c for c, _ in _columns(raw, t)] for t in _tables(raw)}
    before = _dump(raw, shape)
    assert any(before.values())
    raw.close()

    _open_close(name, path)
    _open_close(name, path)  # and again: nothing applied twice

    raw = sqlite3.connect(path)
    assert int(raw.execute("PRAGMA user_version").fetchone()[0]) == version
    assert _dump(raw, shape) == before
    if older:
        table, added = ADDED[name]
        assert {c for c, _ in _columns(raw, table)} >= set(added)
    raw.close()


@pytest.mark.parametrize("name", sorted(STORES))
def test_a_file_from_a_newer_version_is_refused(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.sqlite"
    _open_close(name, path)
    raw = sqlite3.connect(path, isolation_level=None)
    newer = int(raw.execute("PRAGMA user_version").fetchone()[0]) + 1
    raw.execute(f"PRAGMA user_version = {newer}")
    raw.close()
    with pytest.raises(DatabaseTooNew, match=str(path)):
        _open_close(name, path)
