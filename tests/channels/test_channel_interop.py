"""Interop on anvil: the official x402 SDK's batch-settlement client pays our seller over HTTP;
the charges are claimed and settled on chain and reconcile to the last unit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI
from x402 import x402Client
from x402.http.clients import x402HttpxClient
from x402.mechanisms.evm.batch_settlement.client import BatchSettlementEvmScheme

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import (
    ChannelContracts,
    ChannelEngine,
    ChannelRecord,
    ChannelStore,
    ChannelTerms,
)
from agentbazaar.channels.buyer import ChannelBuyer
from agentbazaar.channels.http import ChannelPaywall, ChannelPaywallMiddleware
from agentbazaar.channels.settlement import ClaimLoop
from agentbazaar.testing import LocalWorld, serve_in_thread
from agentbazaar.wallet import Ledger, SpendingPolicy, Wallet

PRICE = 1_000


def seller_app(d: LocalWorld, store_path: Path) -> tuple[FastAPI, ChannelEngine, ChannelContracts]:
    authorizer = dev_account(2)
    contracts = ChannelContracts(d.chain, authorizer)
    terms = ChannelTerms(
        chain_id=d.chain.chain_id,
        receiver=dev_account(4).address,
        receiver_authorizer=authorizer.address,
        token=d.usdc.address,
    )
    engine = ChannelEngine(ChannelStore(store_path), terms, chain=contracts)
    app = FastAPI()
    paywall = ChannelPaywall(
        engine, {"GET /quote": PRICE}, token_name="USD Coin", token_version="2"
    )
    app.add_middleware(ChannelPaywallMiddleware, paywall=paywall)

    @app.get("/quote")
    async def quote() -> dict[str, int]:
        return {"price": 42}

    return app, engine, contracts


def sdk_client(
    d: LocalWorld, buyer: LocalAccount, scheme: BatchSettlementEvmScheme | None = None
) -> x402Client:
    client = x402Client()
    network = f"eip155:{d.chain.chain_id}"
    client.register(network, scheme or BatchSettlementEvmScheme(buyer))
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
    on_anvil: LocalWorld, tmp_path: Path
) -> None:
    d = on_anvil
    buyer = dev_account(1)
    d.mint(buyer.address, 10_000_000)
    app, engine, contracts = seller_app(d, tmp_path / "seller.db")
    scheme = BatchSettlementEvmScheme(buyer)
    with serve_in_thread(app) as url:
        statuses = asyncio.run(_pay(url, sdk_client(d, buyer, scheme), 25))
        [rec] = engine.records()
        deposited = rec.balance
        assert d.balance(buyer.address) == 10_000_000 - deposited
        # an SDK client that lost its local state resynchronises from our corrective 402
        from x402.mechanisms.evm.signers import EthAccountSignerWithRPC

        fresh = BatchSettlementEvmScheme(EthAccountSignerWithRPC(buyer, d.chain.url or ""))
        assert asyncio.run(_pay(url, sdk_client(d, buyer, fresh), 3)) == [200] * 3
        [rec] = engine.records()
        assert rec.charged == 28 * PRICE
        deposited = rec.balance
        refund = fresh.refund(url + "/quote")  # the SDK's cooperative refund, our seller
    assert statuses == [200] * 25
    assert refund.success and int(refund.amount or 0) == deposited - 28 * PRICE
    [rec] = engine.records()
    assert (rec.charged, rec.total_claimed, rec.balance) == (28 * PRICE, 28 * PRICE, 28 * PRICE)
    assert d.balance(buyer.address) == 10_000_000 - 28 * PRICE  # the rest came back
    contracts.settle(engine.terms.receiver, d.token)
    assert d.balance(engine.terms.receiver) == 28 * PRICE
    assert contracts.state(rec.channel_id).total_claimed == 28 * PRICE
    engine.store.close()


def sdk_seller_app(d: LocalWorld, receiver: str) -> tuple[FastAPI, Any]:
    """A paid route built with the SDK's batch-settlement server and its in-process facilitator."""
    from x402 import x402Facilitator, x402ResourceServer
    from x402.http import PaymentOption, RouteConfig
    from x402.http.middleware.fastapi import payment_middleware
    from x402.mechanisms.evm import FacilitatorWeb3Signer
    from x402.mechanisms.evm.batch_settlement.authorizer_signer import LocalAuthorizerSigner
    from x402.mechanisms.evm.batch_settlement.facilitator import BatchSettlementEvmFacilitator
    from x402.mechanisms.evm.batch_settlement.server import BatchSettlementEvmScheme as Server
    from x402.schemas import AssetAmount

    network = f"eip155:{d.chain.chain_id}"
    facilitator = x402Facilitator()
    facilitator.register(
        [network],
        BatchSettlementEvmFacilitator(
            FacilitatorWeb3Signer(
                private_key="0x" + bytes(dev_account(5).key).hex(), rpc_url=d.chain.url
            ),
            authorizer_signer=LocalAuthorizerSigner(dev_account(2)),
        ),
    )
    scheme = Server(receiver)
    server = x402ResourceServer(facilitator)  # type: ignore[arg-type]
    server.register(network, scheme)
    price = AssetAmount(
        amount=str(PRICE), asset=d.token, extra={"name": "USD Coin", "version": "2"}
    )
    routes = {
        "GET /quote": RouteConfig(
            accepts=PaymentOption(
                scheme="batch-settlement", pay_to=receiver, network=network, price=price
            ),
            mime_type="application/json",
        )
    }
    mw = payment_middleware(routes, server)
    app = FastAPI()

    @app.middleware("http")
    async def x402(request: Any, call_next: Any) -> Any:
        return await mw(request, call_next)

    @app.get("/quote")
    async def quote() -> dict[str, int]:
        return {"price": 42}

    return app, scheme


@pytest.mark.anvil
def test_our_buyer_pays_an_sdk_batch_settlement_server(
    on_anvil: LocalWorld, tmp_path: Path
) -> None:
    d = on_anvil
    buyer_account = dev_account(1)
    d.mint(buyer_account.address, 10**9)
    receiver = dev_account(4).address
    app, scheme = sdk_seller_app(d, receiver)
    wallet = Wallet("buyer", buyer_account, SpendingPolicy(), Ledger(tmp_path / "ledger.db"))
    buyer = ChannelBuyer(wallet, chain_id=d.chain.chain_id, chain=d.chain)

    async def go(url: str) -> list[int]:
        async with httpx.AsyncClient(timeout=60) as http:
            return [(await buyer.get(http, url + "/quote")).status_code for _ in range(20)]

    with serve_in_thread(app) as url:
        assert asyncio.run(go(url)) == [200] * 20
    [channel] = buyer.channels.values()
    sdk_state = scheme.get_storage().get("0x" + channel.channel_id.hex())
    assert int(sdk_state.charged_cumulative_amount) == channel.charged == 20 * PRICE
    # the SDK server's latest voucher claims on our contract
    record = ChannelRecord(
        channel.channel_id,
        channel.config,
        charged=int(sdk_state.charged_cumulative_amount),
        signed_max=int(sdk_state.signed_max_claimable),
        signature=bytes.fromhex(sdk_state.signature[2:]),
    )
    contracts = ChannelContracts(d.chain, dev_account(2))
    contracts.claim([record])
    contracts.settle(receiver, d.token)
    assert d.balance(receiver) == 20 * PRICE
    assert d.balance(buyer_account.address) == 10**9 - channel.balance


@pytest.mark.anvil
@pytest.mark.slow
def test_full_cycle_1000_vouchers_reconciles_on_chain(
    on_own_anvil: LocalWorld, tmp_path: Path
) -> None:
    """deposit -> 1,000 vouchers -> claim -> settle -> refund -> withdraw, to the last unit."""
    d = on_own_anvil  # moves the chain clock
    payer = dev_account(1)
    start = 10**9
    d.mint(payer.address, start)
    app, engine, contracts = seller_app(d, tmp_path / "seller.db")
    wallet = Wallet("buyer", payer, SpendingPolicy(), Ledger(tmp_path / "ledger.db"))
    buyer = ChannelBuyer(wallet, chain_id=d.chain.chain_id, deposit_multiplier=1_500)

    async def go(url: str) -> None:
        async with httpx.AsyncClient(timeout=60) as http:
            for _ in range(1_000):
                assert (await buyer.get(http, url + "/quote")).status_code == 200

    with serve_in_thread(app) as url:
        asyncio.run(go(url))
    [rec] = engine.records()
    deposit = 1_500 * PRICE
    assert (rec.charged, rec.balance) == (1_000 * PRICE, deposit)
    report = asyncio.run(ClaimLoop(engine, contracts).tick(force=True))
    assert report.amount == 1_000 * PRICE
    receiver, token = engine.terms.receiver, d.token
    assert d.balance(receiver) == 1_000 * PRICE
    contracts.refund_direct(rec.config, 200 * PRICE)  # the seller refunds part of the rest
    cfg = rec.config.as_tuple()
    escrow = contracts.escrow.functions
    d.chain.transact(payer, escrow.initiateWithdraw(cfg, 300 * PRICE))
    d.chain.w3.provider.make_request("evm_increaseTime", [900])  # type: ignore[arg-type]
    d.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    d.chain.transact(payer, escrow.finalizeWithdraw(cfg))
    assert d.balance(payer.address) == start - 1_000 * PRICE
    assert d.balance(receiver) == 1_000 * PRICE
    assert d.balance(contracts.escrow.address) == 0
    assert contracts.state(rec.channel_id).balance == 1_000 * PRICE  # = claimed: nothing left
    assert contracts.receiver_totals(receiver, token) == (1_000 * PRICE, 1_000 * PRICE)
    vouchers = [r for r in wallet.ledger.records(wallet.name) if r.kind == "voucher"]
    assert len(vouchers) == 1_000 and sum(r.amount for r in vouchers) == 1_000 * PRICE


@pytest.mark.anvil
def test_sdk_client_and_sdk_server_with_our_facilitator(on_anvil: LocalWorld) -> None:
    """The SDK's batch-settlement server delegates to our facilitator (deposit relay, receiver
    authorizer from /supported, claim and settle); the SDK's client pays it."""
    from x402 import x402ResourceServer
    from x402.http import PaymentOption, RouteConfig
    from x402.http.middleware.fastapi import payment_middleware
    from x402.mechanisms.evm.batch_settlement.server import BatchSettlementEvmScheme as Server
    from x402.schemas import AssetAmount, PaymentPayload, PaymentRequirements

    from agentbazaar.channels.facilitator import BatchSettlementHandler
    from agentbazaar.payments.facilitator import Facilitator

    d = on_anvil
    network = f"eip155:{d.chain.chain_id}"
    buyer, receiver, authorizer = dev_account(1), dev_account(4).address, dev_account(2)
    d.mint(buyer.address, 10**9)
    facilitator = Facilitator([BatchSettlementHandler(d.chain, dev_account(5), authorizer)])
    [kind] = facilitator.get_supported().kinds
    assert (kind.scheme, kind.extra) == (
        "batch-settlement",
        {"receiverAuthorizer": authorizer.address},
    )
    scheme = Server(receiver)
    server = x402ResourceServer(facilitator)  # type: ignore[arg-type]
    server.register(network, scheme)
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

    with serve_in_thread(app) as url:
        assert asyncio.run(_pay(url, sdk_client(d, buyer), 15)) == [200] * 15
    [channel] = scheme.get_storage().list()
    assert int(channel.charged_cumulative_amount) == 15 * PRICE
    req = PaymentRequirements(
        scheme="batch-settlement",
        network=network,
        asset=d.token,
        amount=str(PRICE),
        pay_to=receiver,
        max_timeout_seconds=300,
        extra={},
    )
    claim = {
        "type": "claim",
        "claims": [
            {
                "voucher": {
                    "channel": channel.channel_config.to_dict(),
                    "maxClaimableAmount": channel.signed_max_claimable,
                },
                "signature": channel.signature,
                "totalClaimed": channel.charged_cumulative_amount,
            }
        ],
    }

    def settle(payload: dict[str, Any]) -> Any:
        pp = PaymentPayload(x402_version=2, payload=payload, accepted=req)
        return asyncio.run(facilitator.settle(pp, req))

    assert settle(claim).success
    assert settle({"type": "settle", "receiver": receiver, "token": d.token}).success
    assert d.balance(receiver) == 15 * PRICE
    # a forged voucher is refused by our facilitator's verify
    forged = dict(claim["claims"][0])
    bad = {
        "type": "voucher",
        "channelConfig": channel.channel_config.to_dict(),
        "voucher": {
            "channelId": channel.channel_id,
            "maxClaimableAmount": str(16 * PRICE),
            "signature": "0x" + "11" * 65,
        },
    }
    assert forged["totalClaimed"] == str(15 * PRICE)
    pp = PaymentPayload(x402_version=2, payload=bad, accepted=req)
    verdict = asyncio.run(facilitator.verify(pp, req))
    assert not verdict.is_valid
    assert verdict.invalid_reason == "invalid_batch_settlement_evm_voucher_signature"
