"""Our client with our wallet: the spending policy before any signature, the ledger as the
idempotency store, the PAYMENT-RESPONSE transaction in the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from x402_env import PayEnv

from agentbazaar.errors import PolicyViolation
from agentbazaar.payments.client import AcceptedToken, PayingClient
from agentbazaar.payments.example import create_example_app
from agentbazaar.payments.payers import WalletPayer
from agentbazaar.testing import serve_in_thread
from agentbazaar.wallet import Ledger, SpendingPolicy, TokenLimits, Wallet
from agentbazaar.wallet.policy import token_key

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def service(pay_env: PayEnv, facilitator_url: str) -> Iterator[str]:
    with serve_in_thread(create_example_app(pay_env.terms(), facilitator_url)) as url:
        yield url


def wallet(env: PayEnv, policy: SpendingPolicy, name: str = "buyer") -> Wallet:
    return Wallet(name, env.payer, policy, Ledger(env.tmp / f"{name}-ledger.db"))


def limits(env: PayEnv, max_per_payment: int) -> SpendingPolicy:
    token = token_key(str(env.token.address))
    return SpendingPolicy(
        tokens={token: TokenLimits("USDC", 6, max_per_payment=max_per_payment, daily=10_000)},
        allow=frozenset({env.seller.lower()}),
    )


def pay(env: PayEnv, payer: WalletPayer, url: str, key: str | None = None):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        accepted = [AcceptedToken(env.chain.network, str(env.token.address))]
        async with PayingClient(payer, accepted) as client:
            return await client.request("POST", url, content=b"hello", idempotency_key=key)

    return asyncio.run(go())


def test_wallet_pays_and_records_the_transaction(pay_env: PayEnv, service: str) -> None:
    w = wallet(pay_env, limits(pay_env, 5_000))
    before = pay_env.balance(pay_env.seller)
    paid = pay(pay_env, WalletPayer(w), f"{service}/echo", key="echo-1")
    assert paid.response.status_code == 200 and paid.response.json() == {"echo": "hello"}
    assert pay_env.balance(pay_env.seller) == before + 2000
    record = w.ledger.get("buyer", "echo-1")
    assert record is not None and record.status == "settled"
    assert record.tx_hash == paid.payment.transaction and record.amount == 2000


def test_policy_refuses_before_anything_is_signed(pay_env: PayEnv, service: str) -> None:
    w = wallet(pay_env, limits(pay_env, 1_999), name="tight")
    before = pay_env.balance(pay_env.payer.address)
    with pytest.raises(PolicyViolation):
        pay(pay_env, WalletPayer(w), f"{service}/echo", key="echo-2")
    record = w.ledger.get("tight", "echo-2")
    assert record is None or record.status == "failed"
    assert record is None or record.payload is None
    assert pay_env.balance(pay_env.payer.address) == before


def test_counterparty_allowlist(pay_env: PayEnv, service: str) -> None:
    policy = SpendingPolicy(allow=frozenset({"0x0000000000000000000000000000000000000001"}))
    with pytest.raises(PolicyViolation):
        pay(pay_env, WalletPayer(wallet(pay_env, policy, name="allow")), f"{service}/echo")


def test_retry_after_a_lost_answer_reuses_the_signed_authorization(
    pay_env: PayEnv, service: str
) -> None:
    """A first process signs (ledger: signed) and dies before sending; a second process retries
    with the same key: the ledger returns the same authorization, and it is paid once."""
    w = wallet(pay_env, limits(pay_env, 5_000), name="retry")
    payer = WalletPayer(w)
    import httpx
    from x402.http import decode_payment_required_header

    from agentbazaar.payments.payers import PaymentIntent

    r = httpx.post(f"{service}/echo", content=b"hello")
    required = decode_payment_required_header(r.headers["PAYMENT-REQUIRED"])
    req = required.accepts[0]
    intent = PaymentIntent(
        f"{service}/echo", req.network, req.asset, int(req.amount), req.pay_to, "quote-7"
    )
    first = payer.authorize(intent, required)  # signed and recorded, never sent
    assert not first.replayed
    before = pay_env.balance(pay_env.seller)
    paid = pay(
        pay_env,
        WalletPayer(wallet(pay_env, limits(pay_env, 5_000), name="retry")),
        f"{service}/echo",
        key="quote-7",
    )
    assert paid.response.status_code == 200
    assert paid.payment is not None and paid.payment.replayed
    assert pay_env.balance(pay_env.seller) == before + 2000
    assert w.ledger.get("retry", "quote-7").status == "settled"  # type: ignore[union-attr]
