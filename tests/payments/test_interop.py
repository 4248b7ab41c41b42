"""Both directions against the official SDK, on anvil, over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from x402 import x402Client
from x402.http import decode_payment_response_header
from x402.http.clients.httpx import x402HttpxClient
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402_env import PayEnv

from agentbazaar.payments.example import create_example_app
from agentbazaar.testing import serve_in_thread

pytestmark = pytest.mark.anvil


def sdk_client(env: PayEnv) -> x402Client:
    client = register_exact_evm_client(x402Client(), env.payer)
    client.set_spend_controls(
        {
            "allowed_assets": [
                {
                    "network": env.chain.network,
                    "asset": str(env.token.address),
                    "max_amount_per_payment": "10000",
                }
            ]
        }
    )
    return client


@pytest.fixture(scope="module")
def example_url(pay_env: PayEnv, facilitator_url: str) -> Iterator[str]:
    app = create_example_app(pay_env.terms(), facilitator_url)
    with serve_in_thread(app) as url:
        yield url


def test_sdk_client_pays_our_example_service(pay_env: PayEnv, example_url: str) -> None:
    before_payer, before_seller = (
        pay_env.balance(pay_env.payer.address),
        pay_env.balance(pay_env.seller),
    )

    async def go() -> tuple[int, str | None, dict[str, object]]:
        async with x402HttpxClient(sdk_client(pay_env)) as http:
            r = await http.get(f"{example_url}/quote")
            return r.status_code, r.headers.get("PAYMENT-RESPONSE"), r.json()

    status, header, body = asyncio.run(go())
    assert status == 200, body
    assert "quote_id" in body
    assert header is not None
    settle = decode_payment_response_header(header)
    assert settle.success and settle.transaction.startswith("0x")
    assert pay_env.balance(pay_env.payer.address) == before_payer - 1000
    assert pay_env.balance(pay_env.seller) == before_seller + 1000
