"""Our facilitator settles the SDK server's enriched cooperative `refund` (outstanding claims and
`refundWithSignature` in one multicall), on anvil: the SDK's client asks the SDK's server to
refund, the server delegates to our facilitator, and the escrow reconciles to the last unit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from x402 import x402Client, x402ResourceServer
from x402.http import PaymentOption, RouteConfig
from x402.http.clients import x402HttpxClient
from x402.http.middleware.fastapi import payment_middleware
from x402.mechanisms.evm.batch_settlement.client import BatchSettlementEvmScheme
from x402.mechanisms.evm.batch_settlement.server import BatchSettlementEvmScheme as Server
from x402.mechanisms.evm.signers import EthAccountSignerWithRPC
from x402.schemas import AssetAmount, PaymentPayload, PaymentRequirements

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import _crypto as cx
from agentbazaar.channels.facilitator import BatchSettlementHandler
from agentbazaar.channels.onchain import ChannelContracts
from agentbazaar.channels.wire import BATCH_SETTLEMENT_ADDRESS
from agentbazaar.payments.facilitator import Facilitator
from agentbazaar.testing import LocalWorld, serve_in_thread

PRICE = 1_000
START = 10**9


def sdk_server_app(d: LocalWorld, facilitator: Facilitator, receiver: str) -> FastAPI:
    network = f"eip155:{d.chain.chain_id}"
    server = x402ResourceServer(facilitator)  # type: ignore[arg-type]
    server.register(network, Server(receiver))  # type: ignore[arg-type]
    price = AssetAmount(
        amount=str(PRICE), asset=d.token, extra={"name": "USD Coin", "version": "2"}
    )
    option = PaymentOption(scheme="batch-settlement", pay_to=receiver, network=network, price=price)
    mw = payment_middleware({"GET /quote": RouteConfig(accepts=option)}, server)
    app = FastAPI()

    @app.middleware("http")
    async def x402(request: Any, call_next: Any) -> Any:
        return await mw(request, call_next)

    @app.get("/quote")
    async def quote() -> dict[str, int]:
        return {"price": 42}

    return app


async def pay(url: str, client: x402Client, n: int) -> list[int]:
    async with x402HttpxClient(client, timeout=30) as http:
        return [(await http.get(url + "/quote")).status_code for _ in range(n)]


@pytest.mark.anvil
def test_sdk_refund_through_our_facilitator(on_anvil: LocalWorld) -> None:
    d = on_anvil
    network = f"eip155:{d.chain.chain_id}"
    buyer, receiver, authorizer = dev_account(1), dev_account(4).address, dev_account(2)
    d.mint(buyer.address, START)
    facilitator = Facilitator([BatchSettlementHandler(d.chain, dev_account(5), authorizer)])
    scheme = BatchSettlementEvmScheme(EthAccountSignerWithRPC(buyer, d.chain.url or ""))
    client = x402Client()
    client.register(network, scheme)
    client.set_spend_controls(
        {
            "allowed_assets": [
                {"network": network, "asset": d.token, "max_amount_per_payment": "10000"}
            ]
        }
    )
    with serve_in_thread(sdk_server_app(d, facilitator, receiver)) as url:
        assert asyncio.run(pay(url, client, 7)) == [200] * 7
        deposited = START - d.balance(buyer.address)
        assert deposited > 7 * PRICE
        refund = scheme.refund(url + "/quote")  # SDK client -> SDK server -> our facilitator
    assert refund.success, refund
    assert int(refund.amount or 0) == deposited - 7 * PRICE
    assert d.balance(buyer.address) == START - 7 * PRICE  # everything unspent came back
    contracts = ChannelContracts(d.chain, dev_account(5))
    assert contracts.receiver_totals(receiver, d.token)[0] == 7 * PRICE  # claimed in the refund
    contracts.settle(receiver, d.token)
    assert d.balance(receiver) == 7 * PRICE


@pytest.mark.anvil
def test_refund_bad_input_is_a_typed_failure(on_anvil: LocalWorld) -> None:
    d = on_anvil
    network = f"eip155:{d.chain.chain_id}"
    payer, authorizer = dev_account(1), dev_account(2)
    handler = BatchSettlementHandler(d.chain, dev_account(5), authorizer)
    req = PaymentRequirements(
        scheme="batch-settlement",
        network=network,
        asset=d.token,
        amount=str(PRICE),
        pay_to=dev_account(4).address,
        max_timeout_seconds=300,
        extra={},
    )
    config = cx.ChannelConfig(
        payer=payer.address,
        payer_authorizer=payer.address,
        receiver=dev_account(4).address,
        receiver_authorizer=authorizer.address,
        token=d.token,
        withdraw_delay=900,
        salt=b"\1" * 32,
    )
    domain = cx.domain_separator(d.chain.chain_id, BATCH_SETTLEMENT_ADDRESS)
    cid = cx.channel_id(domain, config)
    base = {
        "type": "refund",
        "channelConfig": config.to_wire(),
        "voucher": {"channelId": "0x" + cid.hex(), "maxClaimableAmount": "0", "signature": "0x"},
        "refundNonce": "0",
        "claims": [],
    }

    def settle(payload: dict[str, Any]) -> Any:
        pp = PaymentPayload(x402_version=2, payload=payload, accepted=req)
        return asyncio.run(handler.settle(pp, req))

    empty = settle({**base, "amount": "5000"})  # no deposit: nothing to refund
    assert not empty.success
    assert empty.error_reason == "invalid_batch_settlement_evm_refund_no_balance"
    garbage = settle({**base, "amount": "lots"})
    assert not garbage.success
    assert garbage.error_reason == "invalid_batch_settlement_evm_refund_payload"
