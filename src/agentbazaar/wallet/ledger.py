"""The spend ledger: SQLite (WAL) at ``cfg.ledger_path``, one row per spend, keyed by idempotency key.

Life of a spend::

    reserved ──sign──▶ signed ──mined──▶ settled
        │                 │
        └──error──▶ failed ◀──reverted / dropped (released: no longer counts against the budget)

The rolling-budget check and the reservation happen in ONE ``BEGIN IMMEDIATE`` transaction, so
concurrent spends (threads or processes, SQLite's write lock serialises them) can never together
exceed the budget. A row is written before anything is signed; the signed payload (raw transaction,
or EIP-712 signature) is written before it is broadcast, so a crash at any point leaves a row that
``reconcile`` can finish. A retry with the same idempotency key returns the existing row: a spend
is never paid twice. Amounts are stored as decimal text (uint256 does not fit SQLite's int64).

Durability: the ``signed`` write is fsynced before the payload leaves the process
(``synchronous="FULL"``, the default), so even a power cut cannot lose what may be paid; other
writes use WAL's ``NORMAL`` (safe against a crash of the process; a reservation or settlement lost
to a power cut is harmless or restored by ``reconcile``). ``synchronous="NORMAL"`` skips the fsync.

Escrow: a ``deposit`` row counts toward what is escrowed (checked against ``max_escrow`` in the
same ``BEGIN IMMEDIATE`` transaction), never toward the rolling budget; a ``voucher`` row counts
toward the budget and takes its amount out of the escrow; a ``refund`` row (``record_release``,
written ``settled`` once the money is back) returns its amount. ``escrowed`` and
``spent_in_window`` read the two sums; the invariant is in the package docstring.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from agentbazaar.errors import LedgerError
from agentbazaar.sqlite import connect, migrate, transaction
from agentbazaar.wallet.policy import (
    ALLOWANCE_KINDS,
    CHARGE_KINDS,
    ESCROW_KINDS,
    RELEASE_KINDS,
    SpendingPolicy,
    SpendRequest,
)

Status = Literal["reserved", "signed", "settled", "failed"]
COUNTING: tuple[Status, ...] = ("reserved", "signed", "settled")
_NOT_BUDGET = ", ".join(f"'{k}'" for k in (*ESCROW_KINDS, *RELEASE_KINDS, *ALLOWANCE_KINDS))
_ESCROW_SIGN = {
    **{k: 1 for k in ESCROW_KINDS},
    **{k: -1 for k in RELEASE_KINDS},
    **{k: -1 for k in CHARGE_KINDS},
}
_ESCROW_KINDS_SQL = ", ".join(f"'{k}'" for k in _ESCROW_SIGN)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spends (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    wallet TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    payer TEXT NOT NULL,
    kind TEXT NOT NULL,
    chain_id INTEGER,
    token TEXT NOT NULL,
    symbol TEXT,
    decimals INTEGER,
    amount TEXT NOT NULL,
    counterparty TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    owner TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    tx_hash TEXT,
    raw_tx TEXT,
    payload TEXT,
    block_number INTEGER,
    error TEXT,
    memo TEXT NOT NULL DEFAULT '{}',
    UNIQUE (wallet, idempotency_key)
);
CREATE INDEX IF NOT EXISTS spends_window ON spends (wallet, token, status, created_at);
CREATE INDEX IF NOT EXISTS spends_wallet ON spends (wallet, id);
CREATE INDEX IF NOT EXISTS spends_escrow ON spends (kind, wallet);
CREATE INDEX IF NOT EXISTS spends_tx ON spends (lower(tx_hash));
CREATE INDEX IF NOT EXISTS spends_to ON spends (lower(counterparty));
"""


@dataclass(frozen=True)
class SpendRecord:
    id: int
    wallet: str
    idempotency_key: str
    payer: str
    kind: str
    chain_id: int | None
    token: str
    symbol: str | None
    decimals: int | None
    amount: int
    counterparty: str
    status: Status
    created_at: float
    updated_at: float
    owner: str
    attempts: int
    tx_hash: str | None = None
    raw_tx: str | None = None
    payload: dict[str, Any] | None = None
    block_number: int | None = None
    error: str | None = None
    memo: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["amount"] = str(self.amount)  # exact in JSON whatever the reader's number type
        return out

    @property
    def counts(self) -> bool:
        return self.status in COUNTING


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True  # cannot tell for another machine: assume it is still working
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


class Ledger:
    """The spend ledger of one data directory. Safe across threads and processes."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 30.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.busy_timeout = busy_timeout
        self.synchronous = synchronous
        self._local = threading.local()
        with self._connect() as conn:
            migrate(conn, [_SCHEMA], name=str(self.path))

    # ---- connections -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection (one per thread and process; reopened after a fork)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            try:
                conn = connect(self.path, timeout=self.busy_timeout, row_factory=sqlite3.Row)
            except sqlite3.Error as exc:
                raise LedgerError(f"cannot open the ledger {self.path}: {exc}") from exc
            self._local.conn, self._local.pid = conn, os.getpid()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise LedgerError(f"ledger {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    @contextlib.contextmanager
    def _write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on any error.

        ``durable``: the commit is fsynced (with ``synchronous="FULL"``) before this returns.
        Only the ``signed`` transition needs it: a lost reservation or settlement costs nothing
        (nothing was signed yet / reconcile restores it from the chain), a lost signed payload
        could be paid twice.
        """
        sync = durable and self.synchronous == "FULL"
        with self._connect() as conn:
            if sync:
                conn.execute("PRAGMA synchronous=FULL")
            try:
                with transaction(conn):
                    yield conn
            finally:
                if sync:
                    conn.execute("PRAGMA synchronous=NORMAL")

    # ---- the one write path of a new spend -----------------------------------------------------
    def reserve(self, req: SpendRequest, policy: SpendingPolicy) -> tuple[SpendRecord, bool]:
        """Check the rolling budget and write the reservation, atomically.

        Returns ``(record, replayed)``. ``replayed`` is True when the key was already signed or
        settled: nothing new is reserved and the caller must reuse ``record.payload``. A failed
        row (or a reservation whose process died before signing) is reserved again under the
        same key. Raises ``PolicyViolation`` when the budget does not allow it (nothing written).
        """
        now = self.clock()
        with self._write() as conn:
            row = conn.execute(
                "SELECT * FROM spends WHERE wallet = ? AND idempotency_key = ?",
                (req.wallet, req.idempotency_key),
            ).fetchone()
            existing = _record(row) if row is not None else None
            if existing is not None:
                _check_same(existing, req)
                if existing.status in ("signed", "settled"):
                    return existing, True
                if existing.status == "reserved" and _owner_alive(existing.owner):
                    raise LedgerError(
                        f"spend {req.idempotency_key!r} is already in progress "
                        f"(by {existing.owner}); retry when it has finished",
                        idempotency_key=req.idempotency_key,
                    )
            if req.kind in ESCROW_KINDS:
                policy.check_escrow(req, self._escrowed(conn, req.wallet, existing)[req.token])
            else:
                spent = self._spent(conn, req, now, policy.window_seconds, existing)
                policy.check_budget(req, spent)
            if existing is None:
                _insert(conn, req, "reserved", now)
            else:
                conn.execute(
                    "UPDATE spends SET status = 'reserved', owner = ?, attempts = attempts + 1,"
                    " created_at = ?, updated_at = ?, error = NULL, tx_hash = NULL,"
                    " raw_tx = NULL, payload = NULL, block_number = NULL WHERE id = ?",
                    (_owner(), now, now, existing.id),
                )
            fresh = conn.execute(
                "SELECT * FROM spends WHERE wallet = ? AND idempotency_key = ?",
                (req.wallet, req.idempotency_key),
            ).fetchone()
            return _record(fresh), False

    def _spent(
        self,
        conn: sqlite3.Connection,
        req: SpendRequest,
        now: float,
        window: int,
        exclude: SpendRecord | None,
    ) -> int:
        rows = conn.execute(
            "SELECT id, amount FROM spends WHERE wallet = ? AND token = ? AND created_at > ?"
            f" AND status IN ('reserved', 'signed', 'settled') AND kind NOT IN ({_NOT_BUDGET})",
            (req.wallet, req.token, now - window),
        ).fetchall()
        skip = exclude.id if exclude is not None else None
        return sum(int(r["amount"]) for r in rows if r["id"] != skip)

    @staticmethod
    def _escrowed(
        conn: sqlite3.Connection, wallet: str | None, exclude: SpendRecord | None = None
    ) -> dict[str, int]:
        """Per token: deposits - refunds - charges (counting rows, all time; 0 when none)."""
        query = (
            "SELECT id, kind, token, amount FROM spends WHERE"
            f" status IN ('reserved', 'signed', 'settled') AND kind IN ({_ESCROW_KINDS_SQL})"
        )
        args: tuple[str, ...] = ()
        if wallet is not None:
            query += " AND wallet = ?"
            args = (wallet,)
        skip = exclude.id if exclude is not None else None
        out: dict[str, int] = {}
        for r in conn.execute(query, args).fetchall():
            if r["id"] != skip:
                out[r["token"]] = out.get(r["token"], 0) + _ESCROW_SIGN[r["kind"]] * int(
                    r["amount"]
                )
        return _ZeroDict(out)

    def record_release(self, req: SpendRequest, *, tx_hash: str | None = None) -> SpendRecord:
        """Record escrow returned to the payer (a refund or a finished withdrawal), once per key.

        ``req.kind`` is one of ``RELEASE_KINDS``; the row is written ``settled`` (call this once
        the money is back). A retry with the same key returns the existing row. A release larger
        than what is escrowed for the token is refused (``LedgerError``, nothing written): the
        ledger never shows more coming back than went in.
        """
        if req.kind not in RELEASE_KINDS:
            raise LedgerError(f"{req.kind!r} is not a release of escrow")
        now = self.clock()
        with self._write() as conn:
            row = conn.execute(
                "SELECT * FROM spends WHERE wallet = ? AND idempotency_key = ?",
                (req.wallet, req.idempotency_key),
            ).fetchone()
            if row is not None:
                existing = _record(row)
                _check_same(existing, req)
                return existing
            escrowed = self._escrowed(conn, req.wallet)[req.token]
            if req.amount > escrowed:
                raise LedgerError(
                    f"a release of {req.human()} is more than the {req.human(escrowed)} "
                    f"escrowed by {req.wallet!r}",
                    idempotency_key=req.idempotency_key,
                    escrowed=escrowed,
                )
            _insert(conn, req, "settled", now, tx_hash=tx_hash)
            return _record(
                conn.execute(
                    "SELECT * FROM spends WHERE wallet = ? AND idempotency_key = ?",
                    (req.wallet, req.idempotency_key),
                ).fetchone()
            )

    # ---- transitions ---------------------------------------------------------------------------
    def mark_signed(
        self,
        record_id: int,
        *,
        tx_hash: str | None = None,
        raw_tx: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> SpendRecord:
        """Store what was signed (before it leaves the process)."""
        return self._transition(
            record_id,
            ("reserved", "signed"),
            "signed",
            durable=True,
            tx_hash=tx_hash,
            raw_tx=raw_tx,
            payload=json.dumps(dict(payload), sort_keys=True) if payload is not None else None,
        )

    def mark_settled(
        self,
        record_id: int,
        *,
        tx_hash: str | None = None,
        block_number: int | None = None,
        amount: int | None = None,
    ) -> SpendRecord:
        """``amount``: what was actually paid, when a spend authorized a maximum and settled
        less (x402 ``upto``). The entry then counts only ``amount``; the authorized maximum
        stays in ``memo["authorized"]``. More than authorized is refused (``LedgerError``)."""
        return self._transition(
            record_id,
            ("reserved", "signed", "settled"),
            "settled",
            adjust=None if amount is None else _settled_amount(amount),
            tx_hash=tx_hash,
            block_number=block_number,
        )

    def mark_failed(self, record_id: int, error: str, *, from_settled: bool = False) -> SpendRecord:
        """Release the spend: it no longer counts against the budget.

        ``from_settled`` only for reconciliation (the chain shows a "settled" spend reverted)."""
        allowed: tuple[Status, ...] = (
            ("reserved", "signed", "settled")
            if from_settled
            else (
                "reserved",
                "signed",
            )
        )
        return self._transition(record_id, allowed, "failed", error=error[:500])

    def note(self, record_id: int, error: str) -> SpendRecord:
        """Record why a signed spend was refused, leaving its status: what was signed may still
        be used by whoever holds it, so only proof (``reconcile``) releases it."""
        return self._transition(record_id, ("signed",), "signed", error=error[:500])

    def _transition(
        self,
        record_id: int,
        allowed: tuple[Status, ...],
        status: Status,
        *,
        durable: bool = False,
        adjust: Callable[[SpendRecord], dict[str, Any]] | None = None,
        **values: Any,
    ) -> SpendRecord:
        """Move an entry to ``status``; ``adjust(current)`` may add column values computed from
        the entry as it is inside the transaction (or raise ``LedgerError`` to refuse)."""
        sets = {k: v for k, v in values.items() if v is not None}
        with self._write(durable=durable) as conn:
            row = conn.execute("SELECT * FROM spends WHERE id = ?", (record_id,)).fetchone()
            if row is None:
                raise LedgerError(f"no ledger entry with id {record_id}")
            current = _record(row)
            if current.status not in allowed:
                raise LedgerError(
                    f"ledger entry {current.idempotency_key!r} is {current.status}; "
                    f"cannot mark it {status}",
                    idempotency_key=current.idempotency_key,
                )
            if adjust is not None:
                sets.update(adjust(current))
            columns = ", ".join(f"{k} = ?" for k in sets)
            conn.execute(
                f"UPDATE spends SET status = ?, updated_at = ?{', ' if columns else ''}{columns}"
                " WHERE id = ?",
                (status, self.clock(), *sets.values(), record_id),
            )
            return _record(
                conn.execute("SELECT * FROM spends WHERE id = ?", (record_id,)).fetchone()
            )

    def release_abandoned(self, wallet: str | None = None) -> list[SpendRecord]:
        """Release reservations whose process ended before signing (nothing left the process)."""
        released = []
        for rec in self.records(wallet, statuses=("reserved",)):
            if not _owner_alive(rec.owner):
                try:
                    released.append(
                        self._transition(
                            rec.id,
                            ("reserved",),
                            "failed",
                            error=f"abandoned: process {rec.owner} ended before signing",
                        )
                    )
                except LedgerError:
                    continue  # taken over or finished meanwhile
        return released

    # ---- reads -------------------------------------------------------------------------------
    def get(self, wallet: str, idempotency_key: str) -> SpendRecord | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT * FROM spends WHERE wallet = ? AND idempotency_key = ?",
                (wallet, idempotency_key),
            ).fetchone()
        return _record(row) if row is not None else None

    def by_id(self, record_id: int) -> SpendRecord:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM spends WHERE id = ?", (record_id,)).fetchone()
        if row is None:
            raise LedgerError(f"no ledger entry with id {record_id}")
        return _record(row)

    def records(
        self, wallet: str | None = None, *, statuses: tuple[Status, ...] | None = None
    ) -> list[SpendRecord]:
        query, args = "SELECT * FROM spends", []
        clauses = []
        if wallet is not None:
            clauses.append("wallet = ?")
            args.append(wallet)
        if statuses:
            clauses.append(f"status IN ({', '.join('?' for _ in statuses)})")
            args.extend(statuses)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        with self._connect() as conn:
            rows = conn.execute(query + " ORDER BY id", args).fetchall()
        return [_record(r) for r in rows]

    def recent(
        self,
        wallet: str | None = None,
        *,
        limit: int = 100,
        before_id: int | None = None,
        tx_hash: str | None = None,
        counterparty: str | None = None,
    ) -> list[SpendRecord]:
        """Newest first, at most ``limit`` rows; ``before_id`` pages back, ``tx_hash`` finds the
        spends of one transaction, ``counterparty`` the spends to one address (both
        case-insensitive)."""
        clauses: list[str] = []
        args: list[Any] = []
        if wallet is not None:
            clauses.append("wallet = ?")
            args.append(wallet)
        if before_id is not None:
            clauses.append("id < ?")
            args.append(before_id)
        if tx_hash is not None:
            clauses.append("lower(tx_hash) = ?")
            args.append(tx_hash.lower())
        if counterparty is not None:
            clauses.append("lower(counterparty) = ?")
            args.append(counterparty.lower())
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT * FROM spends{where} ORDER BY id DESC LIMIT ?", [*args, int(limit)]
            ).fetchall()
        return [_record(r) for r in rows]

    def totals(self, bucket_seconds: int, *, since: float = 0.0) -> list[dict[str, Any]]:
        """Settled and signed spends summed per (time bucket, wallet, token, kind), oldest
        first: what a chart of payments over time draws, without reading every row."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT CAST(created_at / ? AS INTEGER) * ? AS bucket, wallet, token, symbol,"
                " decimals, kind, COUNT(*) AS n, GROUP_CONCAT(amount) AS amounts FROM spends"
                " WHERE status IN ('signed', 'settled') AND created_at >= ?"
                " GROUP BY bucket, wallet, token, kind ORDER BY bucket",
                (bucket_seconds, bucket_seconds, since),
            ).fetchall()
        return [
            {
                "bucket": int(r["bucket"]),
                "wallet": r["wallet"],
                "token": r["token"],
                "symbol": r["symbol"],
                "decimals": r["decimals"],
                "kind": r["kind"],
                "count": int(r["n"]),
                "units": sum(int(a) for a in str(r["amounts"]).split(",")),
            }
            for r in rows
        ]

    def wallets(self) -> list[str]:
        """The wallet names that have entries."""
        with self._connect() as conn:
            return [r[0] for r in conn.execute("SELECT DISTINCT wallet FROM spends ORDER BY 1")]

    def spent_in_window(self, wallet: str, token: str, window_seconds: int) -> int:
        """What counts against the rolling budget of ``token`` right now."""
        now = self.clock()
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT amount FROM spends WHERE wallet = ? AND token = ? AND created_at > ?"
                f" AND status IN ('reserved', 'signed', 'settled') AND kind NOT IN ({_NOT_BUDGET})",
                (wallet, token, now - window_seconds),
            ).fetchall()
        return sum(int(r["amount"]) for r in rows)

    def escrowed(self, wallet: str | None = None) -> dict[str, int]:
        """Per token key: what is held in channel escrow now (deposits - refunds - charges).

        Tokens without escrow rows read as 0. With ``wallet=None``, summed over all wallets."""
        with self._connect() as conn:
            return self._escrowed(conn, wallet)

    def count(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM spends").fetchone()[0])


class _ZeroDict(dict[str, int]):
    """A per-token sum: a token with no rows reads as 0."""

    def __missing__(self, key: str) -> int:
        return 0


def _insert(
    conn: sqlite3.Connection,
    req: SpendRequest,
    status: str,
    now: float,
    *,
    tx_hash: str | None = None,
) -> None:
    """Write a new spend row for ``req`` in ``status`` (inside the caller's transaction)."""
    conn.execute(
        "INSERT INTO spends (wallet, idempotency_key, payer, kind, chain_id, token, symbol,"
        " decimals, amount, counterparty, status, created_at, updated_at, owner, tx_hash, memo)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            req.wallet,
            req.idempotency_key,
            req.payer,
            req.kind,
            req.chain_id,
            req.token,
            req.symbol,
            req.decimals,
            str(req.amount),
            req.counterparty,
            status,
            now,
            now,
            _owner(),
            tx_hash,
            json.dumps(dict(req.memo), default=str, sort_keys=True),
        ),
    )


def _record(row: sqlite3.Row) -> SpendRecord:
    payload = json.loads(row["payload"]) if row["payload"] else None
    return SpendRecord(
        id=int(row["id"]),
        wallet=row["wallet"],
        idempotency_key=row["idempotency_key"],
        payer=row["payer"],
        kind=row["kind"],
        chain_id=row["chain_id"],
        token=row["token"],
        symbol=row["symbol"],
        decimals=row["decimals"],
        amount=int(row["amount"]),
        counterparty=row["counterparty"],
        status=cast(Status, row["status"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        owner=row["owner"],
        attempts=int(row["attempts"]),
        tx_hash=row["tx_hash"],
        raw_tx=row["raw_tx"],
        payload=cast("dict[str, Any] | None", payload),
        block_number=row["block_number"],
        error=row["error"],
        memo=json.loads(row["memo"] or "{}"),
    )


def authorized(record: SpendRecord) -> int:
    """What the entry authorized: its amount, or the maximum it was settled below."""
    return int(record.memo.get("authorized", record.amount))


def _settled_amount(amount: int) -> Callable[[SpendRecord], dict[str, Any]]:
    def adjust(current: SpendRecord) -> dict[str, Any]:
        maximum = authorized(current)
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= maximum:
            raise LedgerError(
                f"settled amount {amount!r} is not within the {maximum} authorized by "
                f"{current.idempotency_key!r}",
                idempotency_key=current.idempotency_key,
            )
        memo = {**current.memo, "authorized": str(maximum)}
        return {"amount": str(amount), "memo": json.dumps(memo, default=str, sort_keys=True)}

    return adjust


def _check_same(record: SpendRecord, req: SpendRequest) -> None:
    """An idempotency key names one spend: reusing it for a different spend is refused."""
    mine = (
        record.kind,
        record.token,
        authorized(record),
        record.counterparty.lower(),
        record.chain_id,
    )
    theirs = (req.kind, req.token, req.amount, req.counterparty.lower(), req.chain_id)
    if mine != theirs:
        raise LedgerError(
            f"idempotency key {req.idempotency_key!r} was already used for a different spend "
            f"({record.kind} of {record.amount} to {record.counterparty}); use a new key",
            idempotency_key=req.idempotency_key,
        )
