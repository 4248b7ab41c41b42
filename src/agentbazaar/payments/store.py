"""Durable settlement records: one row per authorization, written before any transaction is sent.

A row is keyed by (network, asset, payer, nonce) - an EIP-3009 authorization can be used once per
token and authorizer, so the key names exactly one possible transfer. Its life:

    reserved (verify: a lease for ONE request, bound to the terms it was verified for)
        |  \\-> released (deleted): the seller's handler failed, or the lease ran out
        v
    claimed  ->  sent (tx hash + signed raw tx, recorded BEFORE the broadcast)  ->  settled | failed
        \\-> released (deleted) when nothing was signed (e.g. the simulation reverted)

``reserve`` and ``claim`` are each one atomic SQLite statement pair under the store's lock (and
SQLite's own write lock across processes): of any number of concurrent verifies of one
authorization exactly one gets the lease. A lease lasts until the authorization's
``validBefore`` (after which no one can settle it) unless released earlier with its token. A
``failed`` row (its transaction reverted: nothing moved) can be reserved again.

A repeated settle finds the row and returns its result (or waits for it); a crash between the
broadcast and the receipt leaves a ``sent`` row that start-up recovery re-broadcasts (idempotent:
the same signed bytes) and resolves.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from agentbazaar.payments.errors import FacilitatorError
from agentbazaar.sqlite import MEMORY, Database, add_columns

RESERVED, CLAIMED, SENT, SETTLED, FAILED = "reserved", "claimed", "sent", "settled", "failed"
STATUSES = (RESERVED, CLAIMED, SENT, SETTLED, FAILED)

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
# columns added by the reservation protocol (ALTER TABLE on stores written before it)
_LEASE_COLUMNS = {"terms": "TEXT", "lease": "TEXT", "lease_until": "REAL"}
_MIGRATIONS = (_SCHEMA, add_columns("settlements", _LEASE_COLUMNS))
_COLUMNS = (
    "network, asset, payer, nonce, signature, pay_to, amount, status, tx_hash, raw_tx, reason, "
    "terms, lease, lease_until"
)
_WHERE_KEY = "network=? AND asset=? AND payer=? AND nonce=?"


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
    terms: str | None = None
    lease: str | None = None
    lease_until: float | None = None

    @property
    def final(self) -> bool:
        return self.status in (SETTLED, FAILED)

    def same_terms(self, terms: str) -> bool:
        """Was this row reserved or claimed for ``terms``? (rows from before leases: any)"""
        return self.terms is None or self.terms == terms


@dataclass(frozen=True)
class Lease:
    """What a reservation needs: the authorization's signature, the terms (requirement digest)
    it is bound to, its token, and until when it holds."""

    signature: str
    terms: str
    token: str
    until: float
    pay_to: str
    amount: int


class SettlementStore:
    """SQLite-backed, thread-safe. ``path=None`` keeps it in memory (tests, benchmarks)."""

    def __init__(self, path: Path | None) -> None:
        target = str(path) if path is not None else MEMORY
        try:
            self._db = Database(target, _MIGRATIONS)
        except sqlite3.Error as exc:
            raise FacilitatorError(
                f"cannot open the settlement store {target}: {exc}", path=target
            ) from exc

    def close(self) -> None:
        self._db.close()

    def _exec(self, sql: str, args: tuple[object, ...]) -> sqlite3.Cursor:
        try:
            return self._db.conn.execute(sql, args)
        except sqlite3.Error as exc:
            raise FacilitatorError(f"settlement store failed: {exc}") from exc

    # ---- the reservation protocol ----------------------------------------------------------
    def reserve(
        self, key: SettlementKey, lease: Lease, *, now: float | None = None
    ) -> SettlementRecord | None:
        """Reserve ``key`` for one request. Returns None when reserved now, else the row that
        holds it (a live lease, a settlement under way or done)."""
        return self._take(key, lease, RESERVED, time.time() if now is None else now)

    def claim(
        self,
        key: SettlementKey,
        *,
        signature: str,
        pay_to: str,
        amount: int,
        terms: str | None = None,
        until: float = 0.0,
    ) -> SettlementRecord | None:
        """Claim ``key`` for settlement: the live reservation of the same authorization and
        terms (or a free key: a settle without verify reserves and claims in one step), for
        ``amount`` (``upto`` settles less than it reserved). Returns None when claimed now, else
        the row that holds it."""
        now = time.time()
        lease = Lease(signature, terms or "", "", until, pay_to, amount)
        with self._db.locked():
            cur = self._exec(
                f"UPDATE settlements SET status=?, amount=?, updated=? WHERE {_WHERE_KEY} "
                "AND status=? AND signature=? AND (terms IS NULL OR terms=? OR ?='') "
                "AND lease_until>?",
                (CLAIMED, str(amount), now, *_key_args(key), RESERVED, signature.lower(),
                 lease.terms, lease.terms, now),
            )  # fmt: skip
            if cur.rowcount == 1:
                return None
        return self._take(key, lease, CLAIMED, now)

    def _take(
        self, key: SettlementKey, lease: Lease, status: str, now: float
    ) -> SettlementRecord | None:
        """Insert ``key`` in ``status``, or take over a dead row (a lease past its time, or a
        reverted settlement); else return the row that holds it."""
        values = (
            lease.signature.lower(), lease.pay_to.lower(), str(lease.amount), status,
            lease.terms or None, lease.token or None, lease.until, now,
        )  # fmt: skip
        with self._db.locked():
            cur = self._exec(
                "INSERT OR IGNORE INTO settlements (signature, pay_to, amount, status, terms, "
                "lease, lease_until, updated, network, asset, payer, nonce, created) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (*values, *_key_args(key), now),
            )
            if cur.rowcount == 1:
                return None
            cur = self._exec(
                "UPDATE settlements SET signature=?, pay_to=?, amount=?, status=?, terms=?, "
                "lease=?, lease_until=?, updated=?, tx_hash=NULL, raw_tx=NULL, reason=NULL "
                f"WHERE {_WHERE_KEY} AND ((status=? AND lease_until<=?) OR status=?)",
                (*values, *_key_args(key), RESERVED, now, FAILED),
            )
            if cur.rowcount == 1:
                return None
            return self._get_locked(key)

    def release(self, key: SettlementKey, *, lease: str | None = None) -> bool:
        """Forget a reservation or a claim under which nothing was signed (the authorization is
        free again). With ``lease``, only the reservation holding that token. True if released."""
        with self._db.locked():
            if lease is not None:
                cur = self._exec(
                    f"DELETE FROM settlements WHERE {_WHERE_KEY} AND status=? AND lease=?",
                    (*_key_args(key), RESERVED, lease),
                )
            else:
                cur = self._exec(
                    f"DELETE FROM settlements WHERE {_WHERE_KEY} AND status IN (?, ?)",
                    (*_key_args(key), RESERVED, CLAIMED),
                )
            return cur.rowcount == 1

    def purge_expired(self, now: float | None = None) -> int:
        """Drop reservations whose lease ran out (their authorization expired unused here)."""
        with self._db.locked():
            cur = self._exec(
                "DELETE FROM settlements WHERE status=? AND lease_until<=?",
                (RESERVED, time.time() if now is None else now),
            )
            return cur.rowcount

    # ---- settlement ------------------------------------------------------------------------
    def mark_sent(self, key: SettlementKey, tx_hash: str, raw_tx: bytes) -> None:
        self._update(key, "status=?, tx_hash=?, raw_tx=?", (SENT, tx_hash, raw_tx))

    def finish(
        self, key: SettlementKey, *, success: bool, tx_hash: str, reason: str | None
    ) -> None:
        status = SETTLED if success else FAILED
        self._update(key, "status=?, tx_hash=?, reason=?", (status, tx_hash, reason))

    def _update(self, key: SettlementKey, assignments: str, args: tuple[object, ...]) -> None:
        with self._db.locked():
            self._exec(
                f"UPDATE settlements SET {assignments}, updated=? WHERE {_WHERE_KEY}",
                (*args, time.time(), *_key_args(key)),
            )

    # ---- reads -----------------------------------------------------------------------------
    def get(self, key: SettlementKey) -> SettlementRecord | None:
        with self._db.locked():
            return self._get_locked(key)

    def _get_locked(self, key: SettlementKey) -> SettlementRecord | None:
        row = self._exec(
            f"SELECT {_COLUMNS} FROM settlements WHERE {_WHERE_KEY}", _key_args(key)
        ).fetchone()
        return _record(row) if row else None

    def with_status(self, status: str) -> list[SettlementRecord]:
        with self._db.locked():
            rows = self._exec(
                f"SELECT {_COLUMNS} FROM settlements WHERE status=? ORDER BY created", (status,)
            ).fetchall()
        return [_record(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._db.locked():
            rows = self._exec(
                "SELECT status, COUNT(*) FROM settlements GROUP BY status", ()
            ).fetchall()
        out = dict.fromkeys(STATUSES, 0)
        out.update({str(s): int(n) for s, n in rows})
        return out


def _key_args(key: SettlementKey) -> tuple[str, str, str, str]:
    return (key.network, key.asset, key.payer, key.nonce)


def _record(row: tuple[object, ...]) -> SettlementRecord:
    network, asset, payer, nonce, sig, pay_to, amount, status, tx_hash, raw, reason = row[:11]
    terms, lease, until = row[11:14]
    return SettlementRecord(
        key=SettlementKey(str(network), str(asset), str(payer), str(nonce)),
        signature=str(sig),
        pay_to=str(pay_to),
        amount=int(str(amount)),
        status=str(status),
        tx_hash=str(tx_hash) if tx_hash is not None else None,
        raw_tx=bytes(raw) if isinstance(raw, (bytes, bytearray, memoryview)) else None,
        reason=str(reason) if reason is not None else None,
        terms=str(terms) if terms is not None else None,
        lease=str(lease) if lease is not None else None,
        lease_until=float(str(until)) if until is not None else None,
    )
