"""Payments keep working after the local chain's clock is moved ahead (`bazaar chain warp`):
our buyer widens an authorization's window by the chain's lead, so the chain, which checks
``validBefore`` against the block's time, still takes it. The module has its own anvil (the
conftest's is per module): a warp cannot be undone and would age every other module's
authorizations."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from x402_env import PayEnv

from agentbazaar.payments.client import AcceptedToken, PaidResponse, PayingClient
from agentbazaar.payments.example import create_example_app
from agentbazaar.payments.payers import WalletPayer
from agentbazaar.testing import serve_in_thread
from agentbazaar.wallet import Ledger, SpendingPolicy, TokenLimits, Wallet
from agentbazaar.wallet.policy import token_key

pytestmark = pytest.mark.anvil

WARP_S = 2 * 3600  # far beyond the example's 300 s window


@pytest.fixture(scope="module")
def service(pay_env: PayEnv, facilitator_url: str) -> Iterator[str]:
    with serve_in_thread(create_example_app(pay_env.terms(), facilitator_url)) as url:
        yield url


def _wallet(env: PayEnv, name: str) -> Wallet:
    token = token_key(str(env.token.address))
    policy = SpendingPolicy(
        tokens={token: TokenLimits("USDC", 6, max_per_payment=5_000, daily=100_000)},
        allow=frozenset({env.seller.lower()}),
    )
    return Wallet(name, env.payer, policy, Ledger(env.tmp / f"{name}-ledger.db"))


def _pay(env: PayEnv, payer: WalletPayer, url: str, key: str) -> PaidResponse:
    async def go() -> PaidResponse:
        accepted = [AcceptedToken(env.chain.network, str(env.token.address))]
        async with PayingClient(payer, accepted) as client:
            return await client.request("POST", url, content=b"hello", idempotency_key=key)

    return asyncio.run(go())


def test_payments_keep_working_after_a_warp(pay_env: PayEnv, service: str) -> None:
    assert pay_env.chain.seconds_ahead() < 60
    pay_env.chain.advance_time(WARP_S)
    assert pay_env.chain.seconds_ahead() >= WARP_S - 60

    # signed with the wall clock alone, the authorization is dead on this chain: refused, unpaid
    blind = _wallet(pay_env, "blind")
    before = pay_env.balance(pay_env.seller)
    refused = _pay(pay_env, WalletPayer(blind), f"{service}/echo", "warp-blind")
    assert refused.response.status_code == 402
    assert refused.payment is None or not refused.payment.success
    assert pay_env.balance(pay_env.seller) == before
    row = blind.ledger.get("blind", "warp-blind")
    assert row is None or row.status != "settled"

    # knowing its chain, the payer widens the window by the lead: paid once, recorded
    aware = _wallet(pay_env, "aware")
    paid = _pay(pay_env, WalletPayer(aware, chain=pay_env.chain), f"{service}/echo", "warp-ok")
    assert paid.response.status_code == 200 and paid.response.json() == {"echo": "hello"}
    assert pay_env.balance(pay_env.seller) == before + 2000
    record = aware.ledger.get("aware", "warp-ok")
    assert record is not None and record.status == "settled"
    assert record.tx_hash == paid.payment.transaction  # type: ignore[union-attr]
