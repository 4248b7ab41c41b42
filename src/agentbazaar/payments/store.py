"""Durable settlement records: one row per authorization, written before any transaction is sent.

A row is keyed by (network, asset, payer, nonce) - an EIP-3009 authorization can be used once per
token and authorizer, so the key names exactly one possible transfer. Its life:

    claimed  ->  sent (tx hash + signed raw tx, recorded BEFORE the broadcast)  ->  settled | failed
        \\-> released (deleted) when nothing was signed (e.g. the simulation reverted)

A repeated settle finds the row and returns its result (or waits for it); a crash between the
broadcast and the receipt leaves a ``sent`` row that start-up recovery re-broadcasts (idempotent:
the same signed bytes) and resolves.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from agentbazaar.payments._errors import FacilitatorError

CLAIMED, SENT, SETTLED, FAILED = "claimed", "sent", "settled", "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settlements (
    network   TEXT NOT NULL,
    asset     TEXT NOT NULL,
    payer     TEXT NOT NULL,
    nonce     TEXT NOT NULL,
    signature TEXT NOT NULL,
    pay_to    TEXT NOT NULL,
    amount    TEXT NOT NULL,
    status    TEXT NOT NULL,
    tx_hash   TEXT,
    raw_tx    BLOB,
    reason    TEXT,
    created   REAL NOT NULL,
    updated   REAL NOT NULL,
    PRIMARY KEY (network, asset, payer, nonce)
);
CREATE INDEX IF NOT EXISTS settlements_status ON settlements (status);
"""


@dataclass(frozen=True)
class SettlementKey:
    network: str
    asset: str
    payer: str
    nonce: str

    @classmethod
    def of(cls, network: str, asset: str, payer: str, nonce: str) -> SettlementKey:
        return cls(network, asset.lower(), payer.lower(), nonce.lower())


@dataclass(frozen=True)
class SettlementRecord:
    key: SettlementKey
    signature: str
    pay_to: str
    amount: int
    status: str
    tx_hash: str | None
    raw_tx: bytes | None
    reason: str | None

    @property
    def final(self) -> bool:
        return self.status in (SETTLED, FAILED)


class SettlementStore:
    """SQLite-backed, thread-safe. ``path=None`` keeps it in memory (tests, benchmarks)."""

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        target = str(path) if path is not None else ":memory:"
        try:
            self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
            if path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise FacilitatorError(
                f"cannot open the settlement store {target}: {exc}", path=target
            ) from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: tuple[object, ...]) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise FacilitatorError(f"settlement store failed: {exc}") from exc

    def claim(
        self, key: SettlementKey, *, signature: str, pay_to: str, amount: int
    ) -> SettlementRecord | None:
        """Claim ``key`` for a new settlement. Returns None when claimed now, else the row
        that already holds it (a repeat or a concurrent settle of the same authorization)."""
        now = time.time()
        with self._lock:
            cur = self._exec(
                "INSERT OR IGNORE INTO settlements (network, asset, payer, nonce, signature, "
                "pay_to, amount, status, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    *_key_args(key),
                    signature.lower(),
                    pay_to.lower(),
                    str(amount),
                    CLAIMED,
                    now,
                    now,
                ),
            )
            if cur.rowcount == 1:
                return None
            return self._get_locked(key)

    def mark_sent(self, key: SettlementKey, tx_hash: str, raw_tx: bytes) -> None:
        self._update(key, "status=?, tx_hash=?, raw_tx=?", (SENT, tx_hash, raw_tx))

    def finish(
        self, key: SettlementKey, *, success: bool, tx_hash: str, reason: str | None
    ) -> None:
        status = SETTLED if success else FAILED
        self._update(key, "status=?, tx_hash=?, reason=?", (status, tx_hash, reason))

    def release(self, key: SettlementKey) -> None:
        """Forget a claim under which nothing was signed (a later retry may settle it)."""
        with self._lock:
            self._exec(
                "DELETE FROM settlements WHERE network=? AND asset=? AND payer=? AND nonce=? "
                "AND status=?",
                (*_key_args(key), CLAIMED),
            )

    def _update(self, key: SettlementKey, assignments: str, args: tuple[object, ...]) -> None:
        with self._lock:
            self._exec(
                f"UPDATE settlements SET {assignments}, updated=? "
                "WHERE network=? AND asset=? AND payer=? AND nonce=?",
                (*args, time.time(), *_key_args(key)),
            )

    def get(self, key: SettlementKey) -> SettlementRecord | None:
        with self._lock:
            return self._get_locked(key)

    def _get_locked(self, key: SettlementKey) -> SettlementRecord | None:
        row = self._exec(
            "SELECT network, asset, payer, nonce, signature, pay_to, amount, status, tx_hash, "
            "raw_tx, reason FROM settlements WHERE network=? AND asset=? AND payer=? AND nonce=?",
            _key_args(key),
        ).fetchone()
        return _record(row) if row else None

    def with_status(self, status: str) -> list[SettlementRecord]:
        with self._lock:
            rows = self._exec(
                "SELECT network, asset, payer, nonce, signature, pay_to, amount, status, "
                "tx_hash, raw_tx, reason FROM settlements WHERE status=? ORDER BY created",
                (status,),
            ).fetchall()
        return [_record(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._exec(
                "SELECT status, COUNT(*) FROM settlements GROUP BY status", ()
            ).fetchall()
        out = {CLAIMED: 0, SENT: 0, SETTLED: 0, FAILED: 0}
        out.update({str(s): int(n) for s, n in rows})
        return out


def _key_args(key: SettlementKey) -> tuple[str, str, str, str]:
    return (key.network, key.asset, key.payer, key.nonce)


def _record(row: tuple[object, ...]) -> SettlementRecord:
    network, asset, payer, nonce, sig, pay_to, amount, status, tx_hash, raw, reason = row
    return SettlementRecord(
        key=SettlementKey(str(network), str(asset), str(payer), str(nonce)),
        signature=str(sig),
        pay_to=str(pay_to),
        amount=int(str(amount)),
        status=str(status),
        tx_hash=str(tx_hash) if tx_hash is not None else None,
        raw_tx=bytes(raw) if isinstance(raw, (bytes, bytearray, memoryview)) else None,
        reason=str(reason) if reason is not None else None,
    )
