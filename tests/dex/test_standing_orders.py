"""Standing orders filled on the embedded chain with the local AMM: a schedule fills once per
elapsed period, a price order fills once when the pools cross its threshold, a fill the
policy refuses is recorded as a skip, and a restart neither loses nor repeats a fill. The
clock of the orders is passed in (``now``); balances are read on chain.

The suite is deployed afresh for this module: a whale moves the pool price here.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from dex_fixtures import Deployed, deploy

from agentbazaar.chain import Chain
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.config import load_config
from agentbazaar.intents import parse_intent
from agentbazaar.intents.act import carry_out
from agentbazaar.intents.orderbook import OrderBook
from agentbazaar.intents.orders import PriceCondition, parse_order
from agentbazaar.intents.plan import erc20_balance
from agentbazaar.intents.runner import MISSED, Prices, run_once
from agentbazaar.wallet import KeyStore, PolicyStore, Wallet, open_wallet, write_default_policy

PASSPHRASE = "orders-test-passphrase"
HOUR = 3_600
T0 = 1_000_000.0


@pytest.fixture(autouse=True)
def _cheap_keystores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAZAAR_SCRYPT_N", "1024")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    cfg = load_config(tmp_path_factory.mktemp("orders-home"), env={})
    yield deploy(Chain.embedded(), cfg)


@pytest.fixture
def book(tmp_path: Path) -> Iterator[OrderBook]:
    store = OrderBook(tmp_path / "orders.sqlite")
    yield store
    store.close()


def _wallet(d: Deployed, name: str, index: int, usdc: str) -> Wallet:
    store = KeyStore(d.cfg.keystore_dir)
    if name not in store.names():
        store.import_key(name, bytes(dev_account(index).key), PASSPHRASE)
    write_default_policy(d.cfg, name, d.suite.tokens)  # USDC limited, WETH refused
    wallet = open_wallet(d.cfg, name, PASSPHRASE)
    d.chain.fund_native(wallet.address, 10**19)
    token = d.suite.token_contract("USDC")
    units = d.suite.tokens.get("USDC").parse(usdc)
    d.chain.transact(dev_account(0), token.functions.mint(wallet.address, units))
    return wallet


def _balances(d: Deployed, wallet: Wallet) -> tuple[int, int]:
    usdc, weth = d.suite.tokens.get("USDC"), d.suite.tokens.get("WETH")
    return erc20_balance(d.chain, usdc, wallet.address), erc20_balance(
        d.chain, weth, wallet.address
    )


def _settled_keys(wallet: Wallet) -> list[str]:
    """The settled swaps (an approval of the router is its own entry, ``<key>:allowance``)."""
    records = wallet.ledger.records(wallet.name)
    return sorted(r.idempotency_key for r in records if r.status == "settled" and r.kind == "swap")


def test_a_schedule_fills_once_per_elapsed_period(world: Deployed, book: OrderBook) -> None:
    d = world
    trader = _wallet(d, "sched41", 41, "500")
    order = book.add(
        parse_order("buy 0.005 WETH with USDC every hour for 3 hours"), trader.name, now=T0
    )
    usdc0, weth0 = _balances(d, trader)

    first = run_once(book, d.suite, trader, now=T0)
    assert [(f.slot, f.status) for f in first] == [(0, "filled")]
    assert run_once(book, d.suite, trader, now=T0 + 60) == []  # same period: nothing
    second = run_once(book, d.suite, trader, now=T0 + HOUR + 1)
    assert [(f.slot, f.status) for f in second] == [(1, "filled")]
    # the runner was away for the third period: recorded as missed, never filled late
    late = run_once(book, d.suite, trader, now=T0 + 5 * HOUR)
    assert [(f.slot, f.status, f.reason) for f in late] == [(2, "skipped", MISSED)]
    assert book.get(order.id).status == "done"
    assert run_once(book, d.suite, trader, now=T0 + 6 * HOUR) == []

    usdc1, weth1 = _balances(d, trader)
    bought = d.suite.tokens.get("WETH").parse("0.005")
    assert 2 * bought <= weth1 - weth0 < 2 * bought * 1001 // 1000
    assert usdc1 < usdc0
    assert _settled_keys(trader) == [f"order-{order.id}-0", f"order-{order.id}-1"]
    filled = [f for f in book.fills(order.id) if f.status == "filled"]
    assert all(f.result and f.result["tx_hash"].startswith("0x") for f in filled)


def test_a_restart_resumes_a_claimed_fill_with_the_same_key_and_never_spends_twice(
    world: Deployed, tmp_path: Path
) -> None:
    d = world
    trader = _wallet(d, "resume42", 42, "500")
    path = tmp_path / "orders.sqlite"
    book = OrderBook(path)
    order = book.add(
        parse_order("buy 0.005 WETH with USDC every day for 2 days"), trader.name, now=T0
    )
    weth = d.suite.tokens.get("WETH")
    _, weth0 = _balances(d, trader)
    # slot 0: claimed and spent, then the process died before writing the outcome
    spent = book.claim(order.id, 0, now=T0)
    assert spent is not None
    carry_out(
        order.intent,
        suite=d.suite,
        wallet=trader,
        execute=True,
        idempotency_key=spent.idempotency_key,
    )
    # slot 1: claimed, then the process died before spending
    claimed = book.claim(order.id, 1, now=T0 + 86_400)
    assert claimed is not None
    book.close()

    book = OrderBook(path)  # the restart
    written = run_once(book, d.suite, trader, now=T0 + 86_400 + 5)
    assert sorted((f.slot, f.status) for f in written) == [(0, "filled"), (1, "filled")]
    assert book.pending() == []
    assert book.get(order.id).status == "done"
    assert _settled_keys(trader) == [f"order-{order.id}-0", f"order-{order.id}-1"]
    _, weth1 = _balances(d, trader)
    assert 2 * weth.parse("0.005") <= weth1 - weth0 < 2 * weth.parse("0.005") * 1001 // 1000
    book.close()


def test_price_orders_fill_once_when_the_pools_cross_and_a_refused_fill_is_a_skip(
    world: Deployed, book: OrderBook
) -> None:
    d = world
    trader = _wallet(d, "price43", 43, "500")
    price = Prices(d.suite).of(PriceCondition("WETH", "USDC", "above", "1"))
    assert Decimal(2_000) < price < Decimal(3_100)
    threshold = (price * Decimal("1.1")).quantize(Decimal(1))
    buy = book.add(
        parse_order(f"buy 0.005 WETH with USDC if WETH goes above {threshold} USDC"), trader.name
    )
    sell = book.add(
        parse_order(f"sell 0.001 WETH for USDC when WETH rises above {threshold} USDC"),
        trader.name,
    )
    dip = book.add(
        parse_order("when WETH drops below 1,000 USDC buy 0.005 WETH with at most 1% slippage"),
        trader.name,
    )
    assert run_once(book, d.suite, trader) == []  # not there yet
    _, weth0 = _balances(d, trader)

    _pump(d)  # a whale buys WETH: its price rises above the threshold
    assert Prices(d.suite).of(buy.trigger) > threshold  # type: ignore[arg-type]
    written = {f.order_id: f for f in run_once(book, d.suite, trader)}
    assert set(written) == {buy.id, sell.id}
    assert written[buy.id].status == "filled"
    assert Decimal(written[buy.id].price or "0") > threshold
    refused = written[sell.id]
    assert refused.status == "skipped"
    assert refused.reason and refused.reason.startswith("PolicyViolation")  # WETH not allowed
    assert run_once(book, d.suite, trader) == []  # each fills once
    assert [book.get(o.id).status for o in (buy, sell, dip)] == ["done", "done", "active"]
    _, weth1 = _balances(d, trader)
    assert weth1 - weth0 >= d.suite.tokens.get("WETH").parse("0.005")
    assert _settled_keys(trader) == [f"order-{buy.id}-0"]


def _pump(d: Deployed) -> None:
    whale = _wallet(d, "whale44", 44, "2000000")
    usdc = d.suite.tokens.get("USDC")
    PolicyStore(d.cfg.policy_dir).save(
        whale.name,
        whale.policy.with_limits(
            str(usdc.address), "USDC", usdc.decimals, max_per_payment=None, daily=None
        ),
    )
    intent = parse_intent("swap 1,500,000 USDC for WETH with at most 5% slippage")
    carry_out(intent, suite=d.suite, wallet=whale, execute=True)
