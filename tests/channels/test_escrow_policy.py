"""Our buyer against our seller on the embedded chain, under a spending policy: a deposit is
escrow (capped by ``max_escrow``, not counted against the budget or the per-payment maximum),
each charge counts against the budget, and a refund on chain frees the escrow in the ledger."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from test_buyer import PRICE, seller, wallet

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import ChannelContracts
from agentbazaar.channels.buyer import ChannelBuyer
from agentbazaar.channels.errors import ChannelError
from agentbazaar.errors import LedgerError, PolicyViolation
from agentbazaar.testing import LocalWorld, serve_in_thread
from agentbazaar.wallet import SpendingPolicy, TokenLimits


async def calls(buyer: ChannelBuyer, url: str, n: int) -> list[int | str]:
    out: list[int | str] = []
    async with httpx.AsyncClient(timeout=30) as http:
        for _ in range(n):
            try:
                out.append((await buyer.get(http, url)).status_code)
            except PolicyViolation as exc:
                out.append(str(exc.fields["rule"]))
    return out


def test_a_deposit_of_the_whole_budget_then_charges_up_to_it(
    embedded: LocalWorld, tmp_path: Path
) -> None:
    d = embedded
    d.mint(dev_account(1).address, 10**9)
    app, engine = seller(d, tmp_path / "seller.db")
    limits = TokenLimits("USDC", 6, max_per_payment=PRICE, daily=10 * PRICE)
    w = wallet(tmp_path, SpendingPolicy(tokens={d.token.lower(): limits}))
    buyer = ChannelBuyer(w, chain_id=d.chain.chain_id, deposit_multiplier=10)
    with serve_in_thread(app) as url:  # the deposit is 10 x PRICE: 10 times the per-payment maximum
        assert asyncio.run(calls(buyer, url + "/quote", 11)) == [200] * 10 + ["daily"]
    [rec] = engine.records()
    assert (rec.charged, rec.balance) == (10 * PRICE, 10 * PRICE)
    assert w.ledger.spent_in_window(w.name, d.token.lower(), 86_400) == 10 * PRICE
    assert w.escrowed()[d.token.lower()] == 0  # all of the deposit was charged
    [deposit] = [r for r in w.ledger.records(w.name) if r.kind == "deposit"]
    assert (deposit.amount, deposit.status) == (10 * PRICE, "settled")


def test_escrow_cap_refuses_a_deposit_and_a_refund_frees_it(
    embedded: LocalWorld, tmp_path: Path
) -> None:
    d = embedded
    token = d.token.lower()
    d.mint(dev_account(1).address, 10**9)
    app, engine = seller(d, tmp_path / "seller.db")
    capped = TokenLimits("USDC", 6, max_escrow=12 * PRICE)
    w = wallet(tmp_path, SpendingPolicy(tokens={token: capped}))
    with serve_in_thread(app) as url:
        big = ChannelBuyer(w, chain_id=d.chain.chain_id, deposit_multiplier=20)
        assert asyncio.run(calls(big, url + "/quote", 1)) == ["max_escrow"]
        assert engine.records() == []  # nothing deposited
        assert [(r.kind, r.status) for r in w.ledger.records(w.name)] == [("voucher", "failed")]
        assert w.ledger.spent_in_window(w.name, token, 86_400) == 0  # the charge was released

        buyer = ChannelBuyer(w, chain_id=d.chain.chain_id, chain=d.chain, deposit_multiplier=5)
        assert asyncio.run(calls(buyer, url + "/quote", 2)) == [200, 200]
        assert w.escrowed()[token] == 8 * PRICE  # deposited the seller's minimum 10, charged 2
        [rec] = engine.records()
        contracts = ChannelContracts(d.chain, dev_account(2))
        tx = contracts.refund_direct(rec.config, 8 * PRICE)  # the seller returns the unspent rest
        assert d.balance(dev_account(1).address) == 10**9 - 2 * PRICE
        [channel] = buyer.channels.values()
        buyer.refunded(channel, 8 * PRICE, tx_hash=tx)
        buyer.refunded(channel, 8 * PRICE, tx_hash=tx)  # recorded once
        assert w.escrowed()[token] == 0
        # the cap is free again: the next call deposits 10 x PRICE more (0 - 1 + 10 <= 12)
        assert asyncio.run(calls(buyer, url + "/quote", 1)) == [200]
    assert w.escrowed()[token] == 9 * PRICE
    assert engine.records()[0].balance == 12 * PRICE  # 10 - 8 refunded + 10
    kinds = [r.kind for r in w.ledger.records(w.name) if r.status != "failed"]
    assert kinds.count("deposit") == 2 and kinds.count("refund") == 1
    assert kinds.count("voucher") == 3


def test_a_refund_larger_than_the_escrow_is_refused(embedded: LocalWorld, tmp_path: Path) -> None:
    d = embedded
    d.mint(dev_account(1).address, 10**9)
    app, _ = seller(d, tmp_path / "seller.db")
    w = wallet(tmp_path)
    buyer = ChannelBuyer(
        w, chain_id=d.chain.chain_id, deposit_multiplier=1
    )  # the seller asks for 10 x PRICE at least
    with serve_in_thread(app) as url:
        assert asyncio.run(calls(buyer, url + "/quote", 1)) == [200]
    [channel] = buyer.channels.values()
    with pytest.raises(LedgerError):
        buyer.refunded(channel, 9 * PRICE + 1, tx_hash="0x" + "11" * 32)
    assert w.escrowed()[d.token.lower()] == 9 * PRICE
    assert channel.balance == 10 * PRICE  # nothing changed


def test_cooperative_refund_returns_the_unspent_escrow_and_frees_the_cap(
    embedded: LocalWorld, tmp_path: Path
) -> None:
    d = embedded
    token, payer = d.token.lower(), dev_account(1).address
    d.mint(payer, 10**9)
    app, engine = seller(d, tmp_path / "seller.db")
    capped = TokenLimits("USDC", 6, max_escrow=10 * PRICE)
    w = wallet(tmp_path, SpendingPolicy(tokens={token: capped}))
    buyer = ChannelBuyer(w, chain_id=d.chain.chain_id, chain=d.chain, deposit_multiplier=10)

    async def go(url: str) -> tuple[list[int], int, int, list[int | str]]:
        async with httpx.AsyncClient(timeout=30) as http:
            with pytest.raises(ChannelError, match="nothing to refund"):
                await buyer.refund(http, url)  # nothing charged yet: no voucher to refund with
            first = [(await buyer.get(http, url)).status_code for _ in range(3)]
            part = await buyer.refund(http, url, amount=2 * PRICE)
            rest = await buyer.refund(http, url)
        return first, part, rest, await calls(buyer, url, 1)

    with serve_in_thread(app) as url:
        first, part, rest, after = asyncio.run(go(url + "/quote"))
    assert first == [200] * 3 and (part, rest) == (2 * PRICE, 5 * PRICE)
    assert after == [200]  # escrow 0 again: a new 10 x PRICE deposit fits the cap
    assert d.balance(payer) == 10**9 - 3 * PRICE - 10 * PRICE  # 3 charged, 7 back, 10 again
    assert w.escrowed()[token] == 9 * PRICE
    refunds = [r for r in w.ledger.records(w.name) if r.kind == "refund"]
    assert [(r.amount, r.status) for r in refunds] == [
        (2 * PRICE, "settled"),
        (5 * PRICE, "settled"),
    ]
    assert all(r.tx_hash and r.tx_hash.startswith("0x") for r in refunds)
    [rec] = engine.records()
    assert (rec.charged, rec.balance) == (4 * PRICE, 3 * PRICE + 10 * PRICE)
