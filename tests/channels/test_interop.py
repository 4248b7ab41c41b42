"""Interop on anvil: the official x402 SDK's batch-settlement client pays our seller over HTTP;
the charges are claimed and settled on chain and reconcile to the last unit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from channel_helpers import Deployed, serve
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI
from x402.http.clients import x402HttpxClient
from x402.mechanisms.evm.batch_settlement.client import BatchSettlementEvmScheme

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import ChannelContracts, ChannelEngine, ChannelStore, SellerTerms
from agentbazaar.channels.http import ChannelPaywall
from x402 import x402Client

PRICE = 1_000


def seller_app(d: Deployed, store_path: Path) -> tuple[FastAPI, ChannelEngine, ChannelContracts]:
    authorizer = dev_account(2)
    contracts = ChannelContracts(d.chain, authorizer)
    terms = SellerTerms(
        chain_id=d.chain.chain_id,
        receiver=dev_account(4).address,
        receiver_authorizer=authorizer.address,
        token=d.usdc.address,
    )
    engine = ChannelEngine(ChannelStore(store_path), terms, chain=contracts)
    app = FastAPI()
    app.middleware("http")(
        ChannelPaywall(engine, {"GET /quote": PRICE}, token_name="USD Coin", token_version="2")
    )

    @app.get("/quote")
    async def quote() -> dict[str, int]:
        return {"price": 42}

    return app, engine, contracts


def sdk_client(d: Deployed, buyer: LocalAccount) -> x402Client:
    client = x402Client()
    network = f"eip155:{d.chain.chain_id}"
    client.register(network, BatchSettlementEvmScheme(buyer))
    client.set_spend_controls(
        {
            "allowed_assets": [
                {"network": network, "asset": d.token, "max_amount_per_payment": "10000"}
            ]
        }
    )
    return client


async def _pay(url: str, client: x402Client, n: int) -> list[int]:
    statuses = []
    async with x402HttpxClient(client, timeout=30) as http:
        for _ in range(n):
            r = await http.get(url + "/quote")
            statuses.append(r.status_code)
    return statuses


@pytest.mark.anvil
def test_sdk_client_pays_our_seller_and_claims_reconcile(
    on_anvil: Deployed, tmp_path: Path
) -> None:
    d = on_anvil
    buyer = dev_account(1)
    d.mint(buyer.address, 10_000_000)
    app, engine, contracts = seller_app(d, tmp_path / "seller.db")
    with serve(app) as url:
        statuses = asyncio.run(_pay(url, sdk_client(d, buyer), 25))
    assert statuses == [200] * 25
    [rec] = engine.records()
    assert rec.charged == 25 * PRICE
    deposited = rec.balance
    assert d.balance(buyer.address) == 10_000_000 - deposited
    contracts.claim([rec])
    contracts.settle(engine.terms.receiver, d.token)
    assert d.balance(engine.terms.receiver) == 25 * PRICE
    assert contracts.state(rec.channel_id).total_claimed == 25 * PRICE
    engine.store.close()
