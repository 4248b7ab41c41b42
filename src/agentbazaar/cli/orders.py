"""`bazaar orders`: standing orders, held in <home>/orders.sqlite and filled by a runner.

bazaar orders add "buy 0.1 WETH with USDC every day for a week" --wallet alice
bazaar orders add "sell half my WETH if the price goes above 3,000 USDC"
bazaar orders list --json
bazaar orders cancel 3
bazaar orders run --once          # one pass; without --once: a pass every --interval seconds
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import typer

from agentbazaar.cli._common import console, emit_json, emit_table, run_context, wallet_name
from agentbazaar.cli._understand import EXIT_QUESTION, emit_question
from agentbazaar.errors import BazaarError, InputError, NeedsClarification

if TYPE_CHECKING:
    from agentbazaar.intents.orderbook import Fill, OrderBook
    from agentbazaar.intents.orders import StandingOrder

app = typer.Typer(
    help="standing orders: schedules and price conditions, filled by `bazaar orders run`.",
    no_args_is_help=True,
)
WALLET = typer.Option(
    None, "--wallet", "-w", help="wallet name (default: BAZAAR_WALLET, default_wallet)"
)
JSON = typer.Option(False, "--json")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="orders")


def _book(ctx: typer.Context) -> OrderBook:
    from agentbazaar.intents.orderbook import OrderBook

    return OrderBook.at_home(run_context(ctx).config.home)


@app.command("add")
def add(
    ctx: typer.Context,
    sentence: str = typer.Argument(..., help="an action with a schedule or a price condition"),
    wallet: str | None = WALLET,
    json_out: bool = JSON,
) -> None:
    """Add a standing order (nothing is spent now). A sentence with a value missing prints
    the question (exit code 3).

    Example: bazaar orders add "when WETH drops below 2,500 USDC buy 1 WETH with at most
    0.5% slippage"
    """
    from agentbazaar.chain import Chain
    from agentbazaar.intents.orders import PriceCondition, parse_order
    from agentbazaar.suite import Suite

    try:
        spec = parse_order(sentence)
    except NeedsClarification as question:
        emit_question(question, json_out=json_out)
        raise typer.Exit(EXIT_QUESTION) from None
    from agentbazaar.wallet import KeyStore

    name = wallet_name(ctx, wallet)
    cfg = run_context(ctx).config
    KeyStore(cfg.keystore_dir).require(name)  # an order for no wallet is refused now
    tokens = Suite(Chain.from_config(cfg), cfg).tokens
    named = [spec.intent.token_in, spec.intent.token_out]
    if isinstance(spec.trigger, PriceCondition):
        named += [spec.trigger.token, spec.trigger.quote]
    for symbol in filter(None, named):
        tokens.get(symbol)  # UnknownToken now rather than at the first fill
    book = _book(ctx)
    try:
        order = book.add(spec, name)
    finally:
        book.close()
    _emit_orders([order], json_out, single=True)


@app.command("list")
def list_orders(
    ctx: typer.Context,
    wallet: str | None = typer.Option(None, "--wallet", "-w", help="only this wallet's orders"),
    json_out: bool = JSON,
) -> None:
    """Standing orders with their fills and skips."""
    book = _book(ctx)
    try:
        orders = book.orders(wallet=wallet)
        fills = {o.id: book.fills(o.id) for o in orders}
    finally:
        book.close()
    if json_out:
        emit_json([o.to_dict() | {"fills": [f.to_dict() for f in fills[o.id]]} for o in orders])
        return
    _emit_orders(orders, False)
    rows = [_fill_row(f) for o in orders for f in fills[o.id]]
    if rows:
        emit_table("fills", ["order", "slot", "status", "price", "tx / reason"], rows)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    order_id: int = typer.Argument(..., help="the order's id (bazaar orders list)"),
    json_out: bool = JSON,
) -> None:
    """Cancel an active standing order (a fill already under way still finishes)."""
    book = _book(ctx)
    try:
        order = book.cancel(order_id)
    finally:
        book.close()
    _emit_orders([order], json_out, single=True)


@app.command("run")
def run(
    ctx: typer.Context,
    wallet: str | None = WALLET,
    once: bool = typer.Option(False, "--once", help="one pass, then exit"),
    interval: float = typer.Option(30.0, "--interval", help="seconds between passes"),
    approve: bool = typer.Option(
        False, "--approve", help="approve fills above the policy's approval threshold"
    ),
    json_out: bool = JSON,
) -> None:
    """Fill the wallet's due orders: claim the slot, re-quote, spend through the policy,
    record the fill or the skip with its reason. Runs until interrupted unless --once.
    """
    from agentbazaar.chain import Chain
    from agentbazaar.cli._common import open_wallet
    from agentbazaar.intents.runner import run_once
    from agentbazaar.suite import Suite

    if interval <= 0:
        raise InputError(f"--interval must be a positive number of seconds, not {interval}")
    cfg = run_context(ctx).config
    suite = Suite(Chain.from_config(cfg), cfg)
    w = open_wallet(ctx, wallet)
    book = _book(ctx)
    try:
        while True:
            try:
                written = run_once(book, suite, w, approve=approve)
            except BazaarError as exc:
                if once:
                    raise
                console.print(f"pass failed: {exc}", highlight=False, markup=False)
                written = []
            _emit_fills(written, json_out)
            if once:
                return
            time.sleep(interval)
    finally:
        book.close()


def _emit_orders(orders: list[StandingOrder], json_out: bool, *, single: bool = False) -> None:
    if json_out:
        docs = [o.to_dict() for o in orders]
        emit_json(docs[0] if single else docs)
        return
    if not orders:
        console.print("no standing orders")
        return
    rows = [[o.id, o.wallet, o.status, _trigger_text(o), o.sentence] for o in orders]
    emit_table("standing orders", ["id", "wallet", "status", "trigger", "sentence"], rows)


def _trigger_text(order: StandingOrder) -> str:
    from agentbazaar.units import format_duration

    t = order.trigger.to_dict()
    if t["kind"] == "every":
        return f"every {format_duration(t['interval'])}, {t['count']} times"
    return f"{t['token']} {t['direction']} {t['threshold']} {t['quote']}"


def _fill_row(fill: Fill) -> list[Any]:
    detail = (fill.result or {}).get("tx_hash") if fill.status == "filled" else fill.reason
    return [fill.order_id, fill.slot, fill.status, fill.price or "", detail or ""]


def _emit_fills(fills: list[Fill], json_out: bool) -> None:
    if json_out:
        emit_json([f.to_dict() for f in fills])
        return
    if not fills:
        console.print("nothing due")
        return
    emit_table(
        "fills", ["order", "slot", "status", "price", "tx / reason"], [_fill_row(f) for f in fills]
    )
