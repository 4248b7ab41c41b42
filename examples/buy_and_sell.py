"""Sell a route for 0.001 USDC and buy it, on an in-process chain (no anvil, no network).

    python examples/buy_and_sell.py

The seller: a FastAPI app with ``install_paywall`` (the x402 SDK's middleware) and our
facilitator in process, settling with its own gas wallet. The buyer: a ``Wallet`` (spending
policy, ledger, key) paying through ``PayingClient``. Everything runs on the embedded py-evm
chain with the suite's USDC, deployed by ``agentbazaar.testing.LocalWorld``.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from eth_account import Account
from fastapi import FastAPI

from agentbazaar.chain import Chain
from agentbazaar.payments.client import AcceptedToken, PayingClient
from agentbazaar.payments.facilitator import exact_facilitator
from agentbazaar.payments.payers import WalletPayer
from agentbazaar.payments.server import PaymentTerms, RoutePrice, install_paywall
from agentbazaar.testing import LocalWorld, serve_in_thread
from agentbazaar.wallet import Ledger, SpendingPolicy, TokenLimits, Wallet


# --8<-- [start:seller]
def seller_app(world: LocalWorld, pay_to: str) -> FastAPI:
    """A service with one paid route, GET /weather at 0.001 USDC, paid to ``pay_to``."""
    gas = world.new_account()  # the facilitator's gas wallet: it pays for the settlements
    facilitator = exact_facilitator(world.chain, gas, assets=[world.token])
    app = FastAPI()

    @app.get("/weather")
    async def weather() -> dict[str, str]:
        return {"city": "Oslo", "sky": "clear"}

    terms = PaymentTerms(network=world.chain.network, token=world.usdc_token, pay_to=pay_to)
    install_paywall(
        app, [RoutePrice("GET /weather", "0.001")], terms=terms, facilitator=facilitator
    )
    return app


# --8<-- [end:seller]


def buyer_wallet(world: LocalWorld, directory: Path) -> Wallet:
    """A wallet holding 5 USDC whose policy allows at most 0.01 USDC a payment."""
    key = world.new_account(usdc=5_000_000)  # 5 USDC in base units (6 decimals)
    usdc = TokenLimits("USDC", 6, max_per_payment=10_000)
    policy = SpendingPolicy(tokens={world.token.lower(): usdc})
    return Wallet("buyer", key, policy, Ledger(directory / "ledger.sqlite"))


async def buy(url: str, world: LocalWorld, wallet: Wallet) -> None:
    accepted = [AcceptedToken(world.chain.network, world.token)]
    async with PayingClient(WalletPayer(wallet), accepted, max_amount=10_000) as client:
        paid = await client.request("GET", f"{url}/weather")
    assert paid.paid and paid.payment is not None
    print("status:", paid.response.status_code, paid.response.json())
    print("paid:", paid.payment.amount, "base units of USDC, tx", paid.payment.transaction)


def main() -> None:
    world = LocalWorld.deploy(Chain.embedded())  # a fresh chain with the suite's USDC
    seller = Account.create().address
    with tempfile.TemporaryDirectory() as scratch:
        wallet = buyer_wallet(world, Path(scratch))
        with serve_in_thread(seller_app(world, seller)) as url:
            asyncio.run(buy(url, world, wallet))
        (row,) = wallet.ledger.records("buyer")
        print("ledger:", row.kind, row.amount, row.status)
    print("seller balance:", world.balance(seller), "base units")


if __name__ == "__main__":
    main()
