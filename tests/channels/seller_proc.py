"""A paid seller in its own process (for the kill -9 test):
python seller_proc.py RPC DB PORT TOKEN RECEIVER FSYNC(1|0)"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

from agentbazaar.chain import Chain
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import ChannelContracts, ChannelEngine, ChannelStore, ChannelTerms
from agentbazaar.channels.http import ChannelPaywall, ChannelPaywallMiddleware

PRICE = 1_000


def main() -> None:
    rpc, db, port, token, receiver, fsync = sys.argv[1:7]
    chain = Chain.rpc(rpc, backend="local")
    authorizer = dev_account(2)
    terms = ChannelTerms(
        chain_id=chain.chain_id,
        receiver=receiver,  # type: ignore[arg-type]
        receiver_authorizer=authorizer.address,
        token=token,  # type: ignore[arg-type]
    )
    store = ChannelStore(db, fsync=fsync == "1")
    engine = ChannelEngine(store, terms, chain=ChannelContracts(chain, authorizer))
    app = FastAPI()
    paywall = ChannelPaywall(engine, {"GET /work": PRICE}, token_name="USD Coin", token_version="2")
    app.add_middleware(ChannelPaywallMiddleware, paywall=paywall)

    @app.get("/work")
    async def work() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")


if __name__ == "__main__":
    main()
