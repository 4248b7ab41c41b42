"""Pay 20 calls over one x402 batch-settlement channel, on an in-process chain.

    python examples/stream_channel.py

The seller: a ``ChannelSeller`` (durable store, voucher engine, HTTP paywall and the claim loop)
pricing GET /quote at 0.001 USDC. The buyer: a ``ChannelBuyer`` over a ``Wallet``: the first
call deposits 10 calls' worth into the channel (one ``Wallet.spend`` of kind ``deposit``,
relayed on chain by the seller), every call signs one cumulative voucher (kind ``voucher``),
and a second deposit tops the channel up when it runs low. When the service stops, the seller
claims what it was paid and settles it to its address, in one transaction each.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from pathlib import Path

import httpx
from eth_account import Account
from eth_typing import ChecksumAddress
from fastapi import FastAPI

from agentbazaar.chain import Chain
from agentbazaar.channels import ChannelBuyer, ChannelSeller, ChannelTerms
from agentbazaar.testing import LocalWorld, serve_in_thread
from agentbazaar.wallet import Ledger, SpendingPolicy, Wallet

PRICE = 1_000  # 0.001 USDC in base units
CALLS = 20


def seller_app(
    world: LocalWorld, directory: Path, receiver: ChecksumAddress
) -> tuple[FastAPI, ChannelSeller]:
    authorizer = world.new_account()  # signs and sends the seller's claims (it needs gas)
    terms = ChannelTerms(world.chain.chain_id, receiver, authorizer.address, world.usdc.address)
    seller = ChannelSeller(
        world.chain, authorizer, terms, directory / "seller.db", {"GET /quote": PRICE}
    )
    app = FastAPI(lifespan=seller.lifespan)  # runs the claim loop while the app serves
    app.middleware("http")(seller.paywall)

    @app.get("/quote")
    async def quote() -> dict[str, str]:
        return {"pair": "ETH/USDC", "price": "3150.25"}

    return app, seller


async def calls(buyer: ChannelBuyer, url: str) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as http:
        return [(await buyer.get(http, f"{url}/quote")).status_code for _ in range(CALLS)]


def main() -> None:
    world = LocalWorld.deploy(Chain.embedded(), only=("USDC", "batch-settlement"))
    receiver = Account.create().address
    payer = world.new_account(usdc=1_000_000)  # 1 USDC; the deposits need no gas of its own
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        wallet = Wallet("buyer", payer, SpendingPolicy(), Ledger(directory / "ledger.sqlite"))
        buyer = ChannelBuyer(wallet, chain_id=world.chain.chain_id, deposit_multiplier=10)
        app, seller = seller_app(world, directory, receiver)
        with serve_in_thread(app) as url:
            statuses = asyncio.run(calls(buyer, url))
        print("statuses:", dict(Counter(statuses)))
        kinds = Counter(r.kind for r in wallet.ledger.records("buyer"))
        print("ledger:", kinds["deposit"], "deposits,", kinds["voucher"], "vouchers")
        (record,) = seller.engine.records()
        print("charged:", record.charged, "claimed:", record.total_claimed)
    print("receiver balance:", world.balance(receiver), "base units")


if __name__ == "__main__":
    main()
