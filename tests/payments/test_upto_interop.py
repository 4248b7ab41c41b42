"""``upto`` against the official SDK on anvil, over real HTTP, through our facilitator:

- the SDK's upto client pays our example service (``POST /echo``, metered by the byte);
- our signing (``Wallet.spend`` through ``PolicySigner``) pays a service built with the SDK's
  own upto server scheme and middleware; the policy charged the maximum, the ledger records what
  was settled;
- bad input (a usage above the authorized maximum, an expired permit, a replayed permit, a
  payment for another requirement, an unknown scheme): a 402 with the reason, nothing settled.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from upto_env import UptoEnv, setup_chain
from x402 import x402Client
from x402.http import HTTPFacilitatorClient, decode_payment_response_header
from x402.http.clients.httpx import x402HttpxClient
from x402.http.facilitator_client_base import FacilitatorConfig
from x402.http.middleware.fastapi import payment_middleware, set_settlement_overrides
from x402.http.types import PaymentOption, RouteConfig
from x402.mechanisms.evm import constants as c
from x402.mechanisms.evm.upto import UptoEvmClientScheme, UptoEvmServerScheme
from x402.schemas import AssetAmount

from agentbazaar.chain import Chain
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.errors import PolicyViolation
from agentbazaar.loopback import serve_in_thread
from agentbazaar.payments import permit2
from agentbazaar.payments.example import ECHO_PRICE, create_example_app
from agentbazaar.payments.facilitator import create_app
from agentbazaar.payments.metered import MeteredPrice, charge, metered_routes
from agentbazaar.payments.server import PaymentTerms, RoutePrice, install_paywall
from agentbazaar.wallet import Ledger, PolicySigner, SpendingPolicy, Wallet

pytestmark = pytest.mark.anvil
ECHO_MAX = 2_000  # 0.002 USDC in base units


@pytest.fixture(scope="module")
def env(anvil_chain: Chain) -> UptoEnv:
    return setup_chain(anvil_chain)


@pytest.fixture(scope="module")
def facilitator_url(env: UptoEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    fac = env.facilitator(tmp_path_factory.mktemp("upto") / "settlements.db")
    with serve_in_thread(create_app(fac)) as url:
        yield url


def terms(env: UptoEnv) -> PaymentTerms:
    return PaymentTerms(network=env.chain.network, token=env.token, pay_to=env.seller)


def sdk_client(env: UptoEnv, signer: Any) -> x402Client:
    client = x402Client().register(env.chain.network, UptoEvmClientScheme(signer))
    allowed = {
        "network": env.chain.network,
        "asset": str(env.usdc.address),
        "max_amount_per_payment": "100000",
    }
    return client.set_spend_controls({"allowed_assets": [allowed]})


def settle_header(response: httpx.Response) -> Any:
    header = response.headers.get("PAYMENT-RESPONSE")
    assert header is not None, response.text
    return decode_payment_response_header(header)


@pytest.fixture(scope="module")
def example_url(env: UptoEnv, facilitator_url: str) -> Iterator[str]:
    with serve_in_thread(create_example_app(terms(env), facilitator_url)) as url:
        yield url


def test_sdk_upto_client_pays_our_service_by_the_byte(env: UptoEnv, example_url: str) -> None:
    unpaid = httpx.post(f"{example_url}/echo", content=b"x")
    assert unpaid.status_code == 402
    required = json.loads(base64.b64decode(unpaid.headers["PAYMENT-REQUIRED"]))
    offers = {a["scheme"]: a for a in required["accepts"]}
    assert {"exact", "upto"} <= set(offers)
    assert (
        offers["upto"]["amount"] == str(ECHO_MAX)
        and offers["upto"]["extra"]["facilitatorAddress"] == env.gas.address
    )
    body = b"metered by the byte"
    seller, payer = env.balance(env.seller), env.balance(env.payer.address)

    async def go() -> httpx.Response:
        async with x402HttpxClient(sdk_client(env, env.payer)) as http:
            return await http.post(f"{example_url}/echo", content=body)

    paid = asyncio.run(go())
    assert paid.status_code == 200 and paid.json() == {"echo": body.decode()}
    settle = settle_header(paid)
    assert settle.success and settle.amount == str(len(body))
    assert "Settlement-Overrides" not in paid.headers
    assert env.balance(env.seller) == seller + len(body)
    assert env.balance(env.payer.address) == payer - len(body)


def sdk_upto_service(env: UptoEnv, facilitator_url: str, usage: int) -> FastAPI:
    """A seller written with the SDK alone: its upto server scheme, its middleware, a handler
    that reports ``usage`` through the SDK's settlement override."""
    from x402 import x402ResourceServer

    server = x402ResourceServer(HTTPFacilitatorClient(FacilitatorConfig(url=facilitator_url)))
    server.register(env.chain.network, UptoEvmServerScheme())
    option = PaymentOption(
        scheme="upto",
        pay_to=env.seller,
        network=env.chain.network,
        price=AssetAmount(amount=str(ECHO_MAX), asset=str(env.usdc.address), extra={}),
        max_timeout_seconds=300,
    )
    routes = {"GET /tokens": RouteConfig(accepts=option, mime_type="application/json")}
    app = FastAPI()
    middleware = payment_middleware(routes, server)
    app.middleware("http")(middleware)

    @app.get("/tokens")
    async def tokens(response: Response) -> dict[str, int]:
        set_settlement_overrides(response, {"amount": str(usage)})
        return {"tokens": usage}

    return app


def test_our_wallet_pays_the_sdks_upto_server(
    env: UptoEnv, facilitator_url: str, tmp_path: Path
) -> None:
    account = dev_account(7)
    env.fund(account.address, 1_000_000)
    env.approve_permit2(account)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    policy = SpendingPolicy().with_limits(
        str(env.usdc.address), "USDC", 6, max_per_payment=ECHO_MAX
    )
    wallet = Wallet("buyer", account, policy, ledger)
    signer = PolicySigner(wallet)
    seller = env.balance(env.seller)

    async def go(url: str) -> httpx.Response:
        async with x402HttpxClient(sdk_client(env, signer)) as http:
            return await http.get(f"{url}/tokens")

    with serve_in_thread(sdk_upto_service(env, facilitator_url, usage=345)) as url:
        paid = asyncio.run(go(url))
    assert paid.status_code == 200, paid.text
    settle = settle_header(paid)
    assert settle.success and settle.amount == "345"
    assert env.balance(env.seller) == seller + 345
    assert signer.last_spend is not None
    (before,) = ledger.records()
    assert (before.status, before.amount) == ("signed", ECHO_MAX)  # the policy charged the maximum
    after = wallet.settle(
        signer.last_spend.key, tx_hash=settle.transaction, amount=int(settle.amount)
    )
    assert (after.status, after.amount, after.memo["authorized"]) == ("settled", 345, str(ECHO_MAX))
    assert ledger.spent_in_window("buyer", str(env.usdc.address).lower(), 86_400) == 345


def test_our_policy_refuses_a_maximum_above_its_limit(
    env: UptoEnv, facilitator_url: str, tmp_path: Path
) -> None:
    account = dev_account(8)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    policy = SpendingPolicy().with_limits(
        str(env.usdc.address), "USDC", 6, max_per_payment=ECHO_MAX - 1
    )
    signer = PolicySigner(Wallet("buyer", account, policy, ledger))
    seller = env.balance(env.seller)

    async def go(url: str) -> None:
        async with x402HttpxClient(sdk_client(env, signer)) as http:
            await http.get(f"{url}/tokens")

    with serve_in_thread(sdk_upto_service(env, facilitator_url, usage=1)) as url:
        with pytest.raises(Exception) as refused:
            asyncio.run(go(url))  # however little it would use: the maximum is over the policy
    chain = [refused.value, refused.value.__cause__, refused.value.__context__]
    assert any(isinstance(e, PolicyViolation) for e in chain), repr(refused.value)
    assert ledger.count() == 0 and env.balance(env.seller) == seller


# ---- bad input ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def greedy_url(env: UptoEnv, facilitator_url: str) -> Iterator[str]:
    """A service whose handler reports more than the buyer authorized."""
    app = FastAPI()

    @app.post("/greedy")
    async def greedy(request: Request, response: Response) -> dict[str, bool]:
        charge(request, response, ECHO_MAX + 1)
        return {"served": True}

    prices = [MeteredPrice("POST /greedy", ECHO_PRICE)]
    install_paywall(app, [RoutePrice("POST /fixed", "0.001")], terms=terms(env),
                    facilitator=facilitator_url, extend=metered_routes(prices, terms(env)))  # fmt: skip
    with serve_in_thread(app) as url:
        yield url


def test_usage_above_the_maximum_is_refused_nothing_settled(env: UptoEnv, greedy_url: str) -> None:
    seller = env.balance(env.seller)

    async def go() -> httpx.Response:
        async with x402HttpxClient(sdk_client(env, env.payer)) as http:
            return await http.post(f"{greedy_url}/greedy")

    refused = asyncio.run(go())
    assert refused.status_code == 402
    assert refused.json()["error"] == c.ERR_UPTO_SETTLEMENT_EXCEEDS_AMOUNT
    assert "served" not in refused.text
    assert env.balance(env.seller) == seller


def _paid_header(
    env: UptoEnv, url: str, *, path: str = "/echo", **auth_changes: str
) -> tuple[str, dict[str, Any]]:
    """A PAYMENT-SIGNATURE for the 402 of ``url+path`` signed by the SDK's client (fields of
    the permit changed on purpose when asked)."""
    unpaid = httpx.post(f"{url}{path}", content=b"abc")
    required = json.loads(base64.b64decode(unpaid.headers["PAYMENT-REQUIRED"]))
    accepted = next(a for a in required["accepts"] if a["scheme"] == "upto")
    from x402.schemas import PaymentRequirements

    inner = UptoEvmClientScheme(env.payer).create_payment_payload(
        PaymentRequirements.model_validate(accepted)
    )
    inner["permit2Authorization"].update(auth_changes)
    envelope = {
        "x402Version": 2,
        "accepted": accepted,
        "payload": inner,
        "resource": required.get("resource"),
    }
    return base64.b64encode(json.dumps(envelope).encode()).decode(), envelope


def _post(url: str, header: str) -> httpx.Response:
    return httpx.post(f"{url}/echo", content=b"abc", headers={"PAYMENT-SIGNATURE": header})


def test_bad_payments_are_402_with_a_reason(env: UptoEnv, example_url: str) -> None:
    seller = env.balance(env.seller)
    expired, _ = _paid_header(env, example_url, deadline="1000")
    refused = _post(example_url, expired)
    assert refused.status_code == 402 and c.ERR_PERMIT2_DEADLINE_EXPIRED in refused.text

    good, envelope = _paid_header(env, example_url)
    assert _post(example_url, good).status_code == 200
    replay = _post(example_url, good)
    assert replay.status_code == 402 and permit2.ERR_INVALID_NONCE in replay.text

    other_route = {
        **envelope,
        "accepted": {**envelope["accepted"], "payTo": dev_account(5).address},
    }
    mismatch = _post(example_url, base64.b64encode(json.dumps(other_route).encode()).decode())
    assert mismatch.status_code == 402
    unknown = {**envelope, "accepted": {**envelope["accepted"], "scheme": "stream"}}
    refused_scheme = _post(example_url, base64.b64encode(json.dumps(unknown).encode()).decode())
    assert refused_scheme.status_code == 402
    assert env.balance(env.seller) == seller + 3  # the one good payment: 3 bytes


def test_concurrent_settles_over_http_pay_once(env: UptoEnv, facilitator_url: str) -> None:
    req = env.requirement(ECHO_MAX)
    payload = env.pay(req)
    body = {
        "x402Version": 2,
        "paymentPayload": payload.model_dump(by_alias=True, mode="json", exclude_none=True),
        "paymentRequirements": req.model_copy(update={"amount": "99"}).model_dump(
            by_alias=True, mode="json", exclude_none=True
        ),
    }
    seller = env.balance(env.seller)

    async def many() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=60) as http:
            answers = await asyncio.gather(
                *(http.post(f"{facilitator_url}/settle", json=body) for _ in range(8))
            )
        return [a.json() for a in answers]

    answers = asyncio.run(many())
    settled = [a for a in answers if a.get("success")]
    assert settled and {a["transaction"] for a in settled} == {settled[0]["transaction"]}
    assert all(
        a.get("success") or a.get("errorReason") == c.ERR_SETTLEMENT_PENDING for a in answers
    )
    assert env.balance(env.seller) == seller + 99


def test_exact_on_the_metered_route_still_pays_the_fixed_price(
    env: UptoEnv, example_url: str
) -> None:
    from x402.mechanisms.evm.exact import register_exact_evm_client

    client = register_exact_evm_client(x402Client(), env.payer)
    allowed = {
        "network": env.chain.network,
        "asset": str(env.usdc.address),
        "max_amount_per_payment": "100000",
    }
    client.set_spend_controls({"allowed_assets": [allowed]})
    seller = env.balance(env.seller)

    async def go() -> httpx.Response:
        async with x402HttpxClient(client) as http:
            return await http.post(f"{example_url}/echo", content=b"tiny")

    paid = asyncio.run(go())
    assert paid.status_code == 200 and settle_header(paid).success
    assert env.balance(env.seller) == seller + ECHO_MAX


def test_the_sdks_own_upto_facilitator_settles_on_our_contracts(env: UptoEnv) -> None:
    """Wire compatibility seen from the other side: the SDK's upto facilitator (its
    verification cascade, its simulation and its settle call) against our Vyper Permit2 and
    upto proxy at the canonical addresses."""
    from x402.mechanisms.evm import FacilitatorWeb3Signer
    from x402.mechanisms.evm.upto import UptoEvmFacilitatorScheme

    key = dev_account(9)
    sdk = UptoEvmFacilitatorScheme(
        FacilitatorWeb3Signer(private_key=key.key.hex(), rpc_url=str(env.chain.url))
    )
    req = env.requirement(ECHO_MAX).model_copy(
        update={"extra": {"facilitatorAddress": key.address}}
    )
    payload = env.pay(req)
    seller = env.balance(env.seller)
    verified = sdk.verify(payload, req)
    assert verified.is_valid, verified
    settled = sdk.settle(payload, req.model_copy(update={"amount": "640"}))
    assert settled.success, settled
    assert env.balance(env.seller) == seller + 640
    again = sdk.verify(payload, req)  # Permit2's nonce is spent: the SDK's simulation refuses
    assert not again.is_valid


@pytest.fixture(scope="module")
def second_example_url(env: UptoEnv, facilitator_url: str) -> Iterator[str]:
    """Another seller (its own middleware and memory) on the same facilitator."""
    with serve_in_thread(create_example_app(terms(env), facilitator_url)) as url:
        yield url


def test_one_upto_permit_on_many_requests_and_sellers_is_served_once(
    env: UptoEnv, example_url: str, second_example_url: str
) -> None:
    """Attack: one signed upto permit sent at once on 6 connections to two seller instances:
    exactly one request is served and settled, the others are 402 with a typed reason, the
    payer is charged once; both sellers keep serving honest payments."""
    header, _ = _paid_header(env, example_url)
    seller, payer = env.balance(env.seller), env.balance(env.payer.address)
    urls = [example_url, second_example_url] * 3
    with ThreadPoolExecutor(len(urls)) as pool:
        answers = list(pool.map(lambda u: _post(u, header), urls))
    served = [a for a in answers if a.status_code == 200]
    assert len(served) == 1, [(a.status_code, a.text[:100]) for a in answers]
    refused = {a.json()["error"] for a in answers if a.status_code != 200}
    assert all(a.status_code in (200, 402) for a in answers)
    assert refused <= {"authorization_in_use", permit2.ERR_INVALID_NONCE}, refused
    assert env.balance(env.seller) == seller + 3  # b"abc", by the byte, once
    assert env.balance(env.payer.address) == payer - 3
    for url in (example_url, second_example_url):
        fresh, _ = _paid_header(env, url)
        assert _post(url, fresh).status_code == 200
