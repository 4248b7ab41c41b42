"""The order book: standing orders and their fills, in ``<home>/orders.sqlite``.

A fill slot is claimed once (``UNIQUE (order_id, slot)``), in its own transaction, before
anything is spent: the claim is written ahead, then the spend runs under the slot's
idempotency key (``order-<id>-<slot>``), then the outcome is written. A process that dies in
between leaves the fill ``pending``; the next run resumes it with the same key, and the
wallet's ledger answers whether it was spent already (a key is never spent twice).

Fill status: ``pending`` (claimed, outcome not yet written), ``filled`` or ``skipped`` (with
the reason: refused by the policy, slippage, balance, a period that passed unwatched, ...).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agentbazaar.errors import InputError
from agentbazaar.intents.model import Intent
from agentbazaar.intents.orders import OrderSpec, StandingOrder, Status, trigger_from_dict
from agentbazaar.sqlite import Database

FillStatus = Literal["pending", "filled", "skipped"]

_MIGRATIONS = [
    """
    CREATE TABLE orders (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        wallet TEXT NOT NULL,
        sentence TEXT NOT NULL,
        intent TEXT NOT NULL,
        trigger TEXT NOT NULL,
        created_at REAL NOT NULL,
        status TEXT NOT NULL
    );
    CREATE TABLE fills (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        order_id INTEGER NOT NULL REFERENCES orders (id),
        slot INTEGER NOT NULL,
        idempotency_key TEXT NOT NULL,
        status TEXT NOT NULL,
        claimed_at REAL NOT NULL,
        finished_at REAL,
        price TEXT,
        reason TEXT,
        result TEXT,
        UNIQUE (order_id, slot)
    );
    CREATE INDEX fills_pending ON fills (status);
    """
]


@dataclass(frozen=True)
class Fill:
    id: int
    order_id: int
    slot: int
    idempotency_key: str
    status: FillStatus
    claimed_at: float
    finished_at: float | None
    price: str | None
    reason: str | None
    result: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "order_id": self.order_id,
            "slot": self.slot,
            "idempotency_key": self.idempotency_key,
            "status": self.status,
            "claimed_at": self.claimed_at,
            "finished_at": self.finished_at,
            "price": self.price,
            "reason": self.reason,
            "result": self.result,
        }


def fill_key(order_id: int, slot: int) -> str:
    return f"order-{order_id}-{slot}"


class OrderBook:
    """Standing orders and fills in one SQLite file (``agentbazaar.sqlite``)."""

    def __init__(self, path: Path | str | None) -> None:
        self.db = Database(path, _MIGRATIONS, synchronous="FULL", row_factory=sqlite3.Row)

    @classmethod
    def at_home(cls, home: Path) -> OrderBook:
        return cls(home / "orders.sqlite")

    def close(self) -> None:
        self.db.close()

    # ---- orders --------------------------------------------------------------------------
    def add(self, spec: OrderSpec, wallet: str, *, now: float | None = None) -> StandingOrder:
        created = time.time() if now is None else now
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO orders (wallet, sentence, intent, trigger, created_at, status)"
                " VALUES (?, ?, ?, ?, ?, 'active')",
                (
                    wallet,
                    spec.sentence,
                    json.dumps(spec.intent.stable()),
                    json.dumps(spec.trigger.to_dict()),
                    created,
                ),
            )
            order_id = int(cur.lastrowid or 0)
        return self.get(order_id)

    def get(self, order_id: int) -> StandingOrder:
        with self.db.locked() as conn:
            row = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
        if row is None:
            raise InputError(f"no standing order {order_id}", order_id=order_id)
        return _order(row)

    def orders(
        self, *, wallet: str | None = None, status: Status | None = None
    ) -> list[StandingOrder]:
        sql, args = "SELECT * FROM orders WHERE 1 = 1", list[object]()
        if wallet is not None:
            sql, args = sql + " AND wallet = ?", [*args, wallet]
        if status is not None:
            sql, args = sql + " AND status = ?", [*args, status]
        with self.db.locked() as conn:
            return [_order(r) for r in conn.execute(sql + " ORDER BY id", args)]

    def cancel(self, order_id: int) -> StandingOrder:
        """Cancel an active order (a fill already claimed still finishes)."""
        order = self.get(order_id)
        if order.status != "active":
            raise InputError(
                f"standing order {order_id} is {order.status}: only an active one is cancelled",
                order_id=order_id,
            )
        self._set_status(order_id, "cancelled")
        return self.get(order_id)

    def mark_done(self, order_id: int) -> None:
        self._set_status(order_id, "done")

    def _set_status(self, order_id: int, status: Status) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE orders SET status = ? WHERE id = ? AND status = 'active'",
                (status, order_id),
            )

    # ---- fills ---------------------------------------------------------------------------
    def claim(
        self, order_id: int, slot: int, *, now: float, price: str | None = None
    ) -> Fill | None:
        """Write the claim of ``slot`` (``pending``); None when it was claimed before."""
        try:
            with self.db.transaction() as conn:
                cur = conn.execute(
                    "INSERT INTO fills (order_id, slot, idempotency_key, status, claimed_at,"
                    " price) VALUES (?, ?, ?, 'pending', ?, ?)",
                    (order_id, slot, fill_key(order_id, slot), now, price),
                )
                fill_id = int(cur.lastrowid or 0)
        except sqlite3.IntegrityError:
            return None
        return self._fill(fill_id)

    def finish(
        self,
        fill_id: int,
        status: Literal["filled", "skipped"],
        *,
        now: float,
        reason: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> Fill:
        """Write the outcome of a pending fill (a finished one is never rewritten)."""
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE fills SET status = ?, finished_at = ?, reason = ?, result = ?"
                " WHERE id = ? AND status = 'pending'",
                (status, now, reason, None if result is None else json.dumps(result), fill_id),
            )
        return self._fill(fill_id)

    def fills(self, order_id: int | None = None) -> list[Fill]:
        sql, args = "SELECT * FROM fills", list[object]()
        if order_id is not None:
            sql, args = sql + " WHERE order_id = ?", [order_id]
        with self.db.locked() as conn:
            return [_fill(r) for r in conn.execute(sql + " ORDER BY id", args)]

    def claimed(self, order_id: int) -> set[int]:
        with self.db.locked() as conn:
            rows = conn.execute("SELECT slot FROM fills WHERE order_id = ?", (order_id,))
            return {int(r[0]) for r in rows}

    def pending(self) -> list[Fill]:
        with self.db.locked() as conn:
            rows = conn.execute("SELECT * FROM fills WHERE status = 'pending' ORDER BY id")
            return [_fill(r) for r in rows]

    def _fill(self, fill_id: int) -> Fill:
        with self.db.locked() as conn:
            row = conn.execute("SELECT * FROM fills WHERE id = ?", (fill_id,)).fetchone()
        return _fill(row)


def _order(row: sqlite3.Row) -> StandingOrder:
    return StandingOrder(
        id=int(row["id"]),
        wallet=str(row["wallet"]),
        sentence=str(row["sentence"]),
        intent=Intent.model_validate(json.loads(row["intent"])),
        trigger=trigger_from_dict(json.loads(row["trigger"])),
        created_at=float(row["created_at"]),
        status=row["status"],
    )


def _fill(row: sqlite3.Row) -> Fill:
    return Fill(
        id=int(row["id"]),
        order_id=int(row["order_id"]),
        slot=int(row["slot"]),
        idempotency_key=str(row["idempotency_key"]),
        status=row["status"],
        claimed_at=float(row["claimed_at"]),
        finished_at=None if row["finished_at"] is None else float(row["finished_at"]),
        price=row["price"],
        reason=row["reason"],
        result=None if row["result"] is None else json.loads(row["result"]),
    )


__all__ = ["Fill", "FillStatus", "OrderBook", "fill_key"]
