"""Running standing orders: one pass over a wallet's order book (``bazaar orders run``).

``run_once(book, suite, wallet, now=...)``:

1. fills left ``pending`` by an earlier run that stopped between its claim and its outcome
   are resumed under the same idempotency key: when the wallet's ledger holds the spend as
   settled it is recorded as filled, otherwise it is carried out (a key is spent at most
   once: ``Wallet.spend``);
2. for each active order: schedule periods that passed unwatched are recorded as skipped
   (never filled late); the price of a price order is read at the pools (what 1 token sells
   for in the quote token, fee and price impact included); the slot ``orders.due`` names is
   claimed in the book, then carried out as ``bazaar do`` would (planned at the current
   pools, re-simulated right before signing, through the wallet's policy), then its outcome
   is written: filled, or skipped with the reason (policy, slippage, balance, ...);
3. an order whose every slot is claimed is done.

An error that is not ours (the node went away) leaves the claimed fill pending, and so does a
spend that another runner holds or that was signed: a later pass resumes it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from agentbazaar.dex.onchain import Amm
from agentbazaar.errors import BazaarError
from agentbazaar.intents.act import carry_out
from agentbazaar.intents.orderbook import Fill, OrderBook
from agentbazaar.intents.orders import (
    PriceCondition,
    StandingOrder,
    due,
    finished,
    missed,
)
from agentbazaar.suite import Suite
from agentbazaar.wallet import Wallet

MISSED = "missed: the period passed while no runner was watching (never filled late)"


@dataclass
class Prices:
    """Prices read at the pools once per pass (one read of all pools)."""

    suite: Suite
    _seen: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    _amm: Amm | None = None

    def of(self, condition: PriceCondition) -> Decimal:
        pair = (condition.token, condition.quote)
        if pair not in self._seen:
            token = self.suite.tokens.get(condition.token)
            quote = self.suite.tokens.get(condition.quote)
            self._amm = self._amm or Amm.from_suite(self.suite)
            q = self._amm.quote(token, quote, 10**token.decimals, gas_price_wei=0)
            self._seen[pair] = Decimal(q.amount_out).scaleb(-quote.decimals)
        return self._seen[pair]


def run_once(
    book: OrderBook,
    suite: Suite,
    wallet: Wallet,
    *,
    now: float | None = None,
    approve: bool = False,
) -> list[Fill]:
    """One pass (see the module doc); returns the fills written in it."""
    at = time.time() if now is None else now
    written: list[Fill] = []
    for fill in book.pending():
        order = book.get(fill.order_id)
        if order.wallet == wallet.name:
            written.append(_resume(book, fill, order, suite, wallet, at, approve))
    prices = Prices(suite)
    for order in book.orders(wallet=wallet.name, status="active"):
        written.extend(_pass(book, order, suite, wallet, at, approve, prices))
    return [f for f in written if f.status != "pending"]


def _pass(
    book: OrderBook,
    order: StandingOrder,
    suite: Suite,
    wallet: Wallet,
    now: float,
    approve: bool,
    prices: Prices,
) -> list[Fill]:
    written: list[Fill] = []
    claimed = book.claimed(order.id)
    for slot in missed(order, now, claimed):
        fill = book.claim(order.id, slot, now=now)
        if fill is not None:
            written.append(book.finish(fill.id, "skipped", now=now, reason=MISSED))
        claimed.add(slot)
    price = None
    if isinstance(order.trigger, PriceCondition):
        try:
            price = prices.of(order.trigger)
        except BazaarError:
            price = None  # no pool, unknown token: nothing is due; the order waits
    due_slot = due(order, now, price, claimed)
    if due_slot is not None:
        shown = None if price is None else str(price)
        fill = book.claim(order.id, due_slot, now=now, price=shown)
        if fill is not None:
            written.append(_execute(book, fill, order, suite, wallet, now, approve))
        claimed.add(due_slot)
    if finished(order, claimed):
        book.mark_done(order.id)
    return written


def _resume(
    book: OrderBook,
    fill: Fill,
    order: StandingOrder,
    suite: Suite,
    wallet: Wallet,
    now: float,
    approve: bool,
) -> Fill:
    record = wallet.ledger.get(wallet.name, fill.idempotency_key)
    if record is not None and record.status == "settled":
        result = {"tx_hash": record.tx_hash, "amount": str(record.amount), "resumed": True}
        return book.finish(fill.id, "filled", now=now, result=result)
    return _execute(book, fill, order, suite, wallet, now, approve)


def _execute(
    book: OrderBook,
    fill: Fill,
    order: StandingOrder,
    suite: Suite,
    wallet: Wallet,
    now: float,
    approve: bool,
) -> Fill:
    try:
        outcome = carry_out(
            order.intent,
            suite=suite,
            wallet=wallet,
            execute=True,
            approve=approve,
            idempotency_key=fill.idempotency_key,
        )
    except BazaarError as exc:
        record = wallet.ledger.get(wallet.name, fill.idempotency_key)
        if record is not None and record.status in ("reserved", "signed", "settled"):
            # another runner holds the spend, or it was signed: resumed on a later pass
            return fill
        reason = f"{type(exc).__name__}: {exc}"
        return book.finish(fill.id, "skipped", now=now, reason=reason)
    return book.finish(fill.id, "filled", now=now, result=_jsonable(outcome.result or {}))


def _jsonable(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, (str, int, bool, type(None))) else str(v) for k, v in doc.items()}


__all__ = ["MISSED", "Prices", "run_once"]
