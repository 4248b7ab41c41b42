"""SQLite store of receipts (issued by a provider, received by a buyer) and validation verdicts.

One file per agent (``<data dir>/receipts.sqlite``). Every kind of receipt shares the table:
an embedding receipt (``kind`` inference: the texts, the canonical output matrix), a
generation receipt (``kind`` generation: ``texts`` holds the prompt JSON, ``output`` the
canonical token ids, ``extra`` the generation fields) and a contract receipt (``kind``
contract: ``texts`` the request, ``output`` the delivery's canonical JSON, ``extra`` the
contract fields). Files written before generation receipts
existed get the two new columns on open. Writes are single transactions: a receipt is
stored whole or not at all; storing the same receipt twice for the same role is a no-op (the
receipt id, the EIP-712 digest, is the key), so retries never duplicate.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from agentbazaar.agents.receipts import (
    ContractReceipt,
    GenerationReceipt,
    Receipt,
    SignedReceipt,
)
from agentbazaar.errors import LedgerError
from agentbazaar.sqlite import Database, add_columns

_SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('issued', 'received')),
    chain_id INTEGER NOT NULL,
    provider_agent_id INTEGER NOT NULL,
    provider TEXT NOT NULL,
    model_id TEXT NOT NULL,
    weights_hash TEXT NOT NULL,
    input_hash TEXT NOT NULL,
    output_hash TEXT NOT NULL,
    asset TEXT NOT NULL,
    price TEXT NOT NULL,
    payment_ref TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    signature TEXT NOT NULL,
    tx_hash TEXT,
    texts TEXT NOT NULL,
    output BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'accepted',
    note TEXT,
    kind TEXT NOT NULL DEFAULT 'inference',
    extra TEXT,
    PRIMARY KEY (id, role)
);
CREATE TABLE IF NOT EXISTS verdicts (
    receipt_id TEXT NOT NULL,
    validator TEXT NOT NULL,
    provider_agent_id INTEGER NOT NULL,
    score INTEGER NOT NULL,
    max_abs_diff REAL NOT NULL,
    min_cosine REAL NOT NULL,
    request_hash TEXT,
    tx_hash TEXT,
    PRIMARY KEY (receipt_id, validator)
);
"""
# stores written before receipts had a kind get the kind and extra columns
_MIGRATIONS = (
    _SCHEMA,
    add_columns("receipts", {"kind": "TEXT NOT NULL DEFAULT 'inference'", "extra": "TEXT"}),
)


_BASE = frozenset(f.name for f in fields(Receipt))


@dataclass(frozen=True)
class StoredReceipt:
    signed: SignedReceipt
    role: str
    texts: Any  # the input texts (embeddings) or the prompt JSON (generation)
    output: bytes
    tx_hash: str | None
    status: str
    note: str | None

    @property
    def id(self) -> str:
        return self.signed.id


@dataclass(frozen=True)
class StoredVerdict:
    receipt_id: str
    validator: str
    provider_agent_id: int
    score: int
    max_abs_diff: float
    min_cosine: float
    request_hash: str | None
    tx_hash: str | None


class ReceiptStore:
    """Thread-safe; ``path=None`` keeps everything in memory."""

    def __init__(self, path: Path | None) -> None:
        self._db = Database(path, _MIGRATIONS, synchronous="FULL")

    def close(self) -> None:
        self._db.close()

    def add(
        self,
        signed: SignedReceipt,
        *,
        role: str,
        texts: list[str] | dict[str, Any],
        output: bytes,
        tx_hash: str | None = None,
        status: str = "accepted",
        note: str | None = None,
    ) -> str:
        """Store a receipt with its evidence: for a generation receipt ``texts`` is the prompt
        JSON and ``output`` the canonical token ids."""
        r = signed.receipt
        kind, extra = "inference", None
        if isinstance(r, (GenerationReceipt, ContractReceipt)):
            kind = "generation" if isinstance(r, GenerationReceipt) else "contract"
            extra = json.dumps({k: v for k, v in r.to_json().items() if k not in _BASE})
        row = (
            signed.id, role, signed.chain_id, r.provider_agent_id, r.provider, r.model_id,
            r.weights_hash, r.input_hash, r.output_hash, r.asset, str(r.price), r.payment_ref,
            r.timestamp, signed.signature, tx_hash, json.dumps(texts), output, status, note,
            kind, extra,
        )  # fmt: skip
        try:
            with self._db.transaction() as db:
                db.execute(
                    "INSERT OR IGNORE INTO receipts VALUES "
                    "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    row,
                )
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot store receipt {signed.id}: {exc}") from exc
        return signed.id

    def set_settlement(self, receipt_id: str, tx_hash: str) -> None:
        with self._db.transaction() as db:
            db.execute("UPDATE receipts SET tx_hash=? WHERE id=?", (tx_hash, receipt_id))

    def set_status(self, receipt_id: str, status: str, note: str | None = None) -> None:
        with self._db.transaction() as db:
            db.execute(
                "UPDATE receipts SET status=?, note=? WHERE id=?", (status, note, receipt_id)
            )

    def query(
        self,
        *,
        role: str | None = None,
        provider_agent_id: int | None = None,
        receipt_id: str | None = None,
    ) -> list[StoredReceipt]:
        sql, args = "SELECT * FROM receipts WHERE 1=1", []
        for column, value in (
            ("role", role),
            ("provider_agent_id", provider_agent_id),
            ("id", receipt_id),
        ):
            if value is not None:
                sql += f" AND {column}=?"
                args.append(value)
        with self._db.locked() as db:
            cur = db.execute(sql + " ORDER BY timestamp, rowid", args)
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        return [_stored(row) for row in rows]

    def summaries(
        self,
        *,
        limit: int = 100,
        tx_hash: str | None = None,
        receipt_id: str | None = None,
        provider_agent_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first, without the evidence (texts, output): id, role, kind, provider, model,
        price, asset, payment, status, time and the best-known verdict score (or None)."""
        sql = (
            "SELECT r.id, r.role, r.kind, r.provider_agent_id, r.provider, r.model_id, r.price,"
            " r.asset, r.payment_ref, r.timestamp, r.tx_hash, r.status, r.note, r.chain_id,"
            " (SELECT MIN(v.score) FROM verdicts v WHERE v.receipt_id = r.id) AS verdict,"
            " (SELECT v.tx_hash FROM verdicts v WHERE v.receipt_id = r.id LIMIT 1) AS verdict_tx"
            " FROM receipts r WHERE 1=1"
        )
        args: list[Any] = []
        if tx_hash is not None:
            sql, args = sql + " AND lower(r.tx_hash) = ?", [*args, tx_hash.lower()]
        if receipt_id is not None:
            sql, args = sql + " AND r.id = ?", [*args, receipt_id]
        if provider_agent_id is not None:
            sql, args = sql + " AND r.provider_agent_id = ?", [*args, provider_agent_id]
        with self._db.locked() as db:
            cur = db.execute(sql + " ORDER BY r.timestamp DESC, r.rowid DESC LIMIT ?",
                                   [*args, int(limit)])  # fmt: skip
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def get(self, receipt_id: str) -> StoredReceipt | None:
        found = self.query(receipt_id=receipt_id)
        return found[0] if found else None

    def add_verdict(self, verdict: StoredVerdict) -> None:
        with self._db.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO verdicts VALUES (?,?,?,?,?,?,?,?)",
                (
                    verdict.receipt_id, verdict.validator, verdict.provider_agent_id,
                    verdict.score, verdict.max_abs_diff, verdict.min_cosine,
                    verdict.request_hash, verdict.tx_hash,
                ),
            )  # fmt: skip

    def verdicts(self, *, provider_agent_id: int | None = None) -> list[StoredVerdict]:
        sql, args = "SELECT * FROM verdicts", []
        if provider_agent_id is not None:
            sql, args = sql + " WHERE provider_agent_id=?", [provider_agent_id]
        with self._db.locked() as db:
            rows = db.execute(sql + " ORDER BY rowid", args).fetchall()
        return [StoredVerdict(*row) for row in rows]


def _stored(row: dict[str, Any]) -> StoredReceipt:
    receipt: Receipt = Receipt(
        provider_agent_id=int(row["provider_agent_id"]),
        provider=row["provider"],
        model_id=row["model_id"],
        weights_hash=row["weights_hash"],
        input_hash=row["input_hash"],
        output_hash=row["output_hash"],
        asset=row["asset"],
        price=int(row["price"]),
        payment_ref=row["payment_ref"],
        timestamp=int(row["timestamp"]),
    )
    if row.get("kind") == "generation":
        receipt = GenerationReceipt(**receipt.to_json(), **json.loads(row["extra"]))
    elif row.get("kind") == "contract":
        receipt = ContractReceipt(**receipt.to_json(), **json.loads(row["extra"]))
    return StoredReceipt(
        signed=SignedReceipt(receipt, row["signature"], int(row["chain_id"])),
        role=row["role"],
        texts=json.loads(row["texts"]),
        output=bytes(row["output"]),
        tx_hash=row["tx_hash"],
        status=row["status"],
        note=row["note"],
    )
