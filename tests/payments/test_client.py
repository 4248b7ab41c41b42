"""Our paying client (through a wallet: policy, ledger, key) against a service built only with
the SDK's FastAPI middleware."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from x402 import x402ResourceServer
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.http.middleware.fastapi import payment_middleware
from x402.http.types import PaymentOption, RouteConfig
from x402.mechanisms.evm.exact import register_exact_evm_server
from x402.schemas import AssetAmount
from x402_env import PayEnv

from agentbazaar.errors import PolicyViolation
from agentbazaar.payments.client import AcceptedToken, PayingClient
from agentbazaar.payments.payers import Payer, WalletPayer
from agentbazaar.testing import serve_in_thread
from agentbazaar.wallet import Ledger, SpendingPolicy, Wallet

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def sdk_service(pay_env: PayEnv, facilitator_url: str) -> Iterator[str]:
    facilitator = HTTPFacilitatorClient(FacilitatorConfig(url=facilitator_url))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await facilitator.aclose()  # its connections belong to the server's event loop

    app = FastAPI(lifespan=lifespan)
    server = x402ResourceServer(facilitator)
    register_exact_evm_server(server, pay_env.chain.network)
    routes = {
        "GET /data": RouteConfig(
            accepts=PaymentOption(
                scheme="exact",
                pay_to=pay_env.seller,
                network=pay_env.chain.network,
                price=AssetAmount(
                    amount="2500",
                    asset=str(pay_env.token.address),
                    extra={"name": "USD Coin", "version": "2"},
                ),
                max_timeout_seconds=300,
            ),
            mime_type="application/json",
        )
    }
    mw = payment_middleware(routes, server)

    @app.middleware("http")
    async def x402(request, call_next):  # type: ignore[no-untyped-def]
        return await mw(request, call_next)

    @app.get("/data")
    async def data() -> dict[str, int]:
        return {"answer": 42}

    with serve_in_thread(app) as url:
        yield url


def client(env: PayEnv, payer: Payer, **kw: object) -> PayingClient:
    accepted = [AcceptedToken(env.chain.network, str(env.token.address))]
    return PayingClient(payer, accepted, **kw)  # type: ignore[arg-type]


def wallet(env: PayEnv, name: str, policy: SpendingPolicy | None = None) -> Wallet:
    """A wallet over the test payer's key with its own ledger (every signature goes through
    ``Wallet.spend``: policy, ledger, key)."""
    return Wallet(name, env.payer, policy or SpendingPolicy(), Ledger(env.tmp / f"{name}.db"))


def test_our_client_pays_an_sdk_service(pay_env: PayEnv, sdk_service: str) -> None:
    before = pay_env.balance(pay_env.seller)
    w = wallet(pay_env, "client-pays")

    async def go():  # type: ignore[no-untyped-def]
        async with client(pay_env, WalletPayer(w)) as c:
            return await c.request("GET", f"{sdk_service}/data")

    paid = asyncio.run(go())
    assert paid.response.status_code == 200 and paid.response.json() == {"answer": 42}
    assert paid.paid and paid.payment is not None and paid.payment.success
    assert paid.payment.transaction and paid.payment.intent.amount == 2500
    assert paid.payment.scheme == "exact" and paid.payment.nonce
    assert pay_env.balance(pay_env.seller) == before + 2500
    (row,) = w.ledger.records("client-pays")
    assert (row.status, row.tx_hash, row.amount) == ("settled", paid.payment.transaction, 2500)


def test_policy_refuses_before_signing(pay_env: PayEnv, sdk_service: str) -> None:
    w = wallet(pay_env, "client-deny", SpendingPolicy(deny=frozenset({pay_env.seller.lower()})))
    before = pay_env.balance(pay_env.payer.address)

    async def go() -> None:
        async with client(pay_env, WalletPayer(w)) as c:
            await c.request("GET", f"{sdk_service}/data")

    with pytest.raises(PolicyViolation, match="denies paying") as refused:
        asyncio.run(go())
    assert str(refused.value.fields["counterparty"]).lower() == pay_env.seller.lower()
    assert w.ledger.records("client-deny") == []  # nothing reserved, nothing signed
    assert pay_env.balance(pay_env.payer.address) == before


def test_max_per_call(pay_env: PayEnv, sdk_service: str) -> None:
    w = wallet(pay_env, "client-max")

    async def go() -> None:
        async with client(pay_env, WalletPayer(w), max_amount=2499) as c:
            await c.request("GET", f"{sdk_service}/data")

    with pytest.raises(PolicyViolation):
        asyncio.run(go())
    assert w.ledger.records("client-max") == []


def test_retry_with_the_same_key_reuses_the_authorization(
    pay_env: PayEnv, sdk_service: str
) -> None:
    """The first attempt's paid request is lost before reaching the service; the retry with the
    same idempotency key sends the same authorization, and the service is paid exactly once."""
    w = wallet(pay_env, "client-retry")
    before = pay_env.balance(pay_env.seller)
    calls = {"n": 0}

    class LoseFirstPaidRequest(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if "payment-signature" in request.headers:
                calls["n"] += 1
                if calls["n"] == 1:
                    raise httpx.ConnectError("connection dropped", request=request)
            return await super().handle_async_request(request)

    async def go():  # type: ignore[no-untyped-def]
        http = httpx.AsyncClient(transport=LoseFirstPaidRequest())
        async with client(pay_env, WalletPayer(w), http=http, retries=0) as c:
            with pytest.raises(Exception, match="cannot reach"):
                await c.request("GET", f"{sdk_service}/data", idempotency_key="order-1")
            (first,) = w.ledger.records("client-retry")
            again = await c.request("GET", f"{sdk_service}/data", idempotency_key="order-1")
            return first, again

    first, again = asyncio.run(go())
    assert first.status == "signed" and first.payload is not None
    assert again.response.status_code == 200
    assert again.payment is not None and again.payment.replayed and again.payment.success
    (row,) = w.ledger.records("client-retry")
    assert row.id == first.id and row.payload == first.payload and row.status == "settled"
    assert pay_env.balance(pay_env.seller) == before + 2500
