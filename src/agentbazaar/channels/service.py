"""A selling agent's channel stack in one object: durable store, engine, HTTP paywall and the
claim-and-settle loop running beside the service.

    seller = ChannelSeller(chain, authorizer, terms, store_path, routes={"GET /quote": 1_000})
    app = FastAPI(lifespan=seller.lifespan)
    app.middleware("http")(seller.paywall)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from agentbazaar.chain import Chain
from agentbazaar.channels.engine import ChannelEngine, ChannelTerms
from agentbazaar.channels.http import ChannelPaywall
from agentbazaar.channels.onchain import ChannelContracts
from agentbazaar.channels.settlement import ClaimLoop, ClaimPolicy
from agentbazaar.channels.store import ChannelStore


class ChannelSeller:
    def __init__(
        self,
        chain: Chain,
        authorizer: LocalAccount,
        terms: ChannelTerms,
        store_path: Path,
        routes: Mapping[str, int],
        *,
        token_name: str = "USD Coin",
        token_version: str = "2",
        policy: ClaimPolicy | None = None,
        claim_interval_s: float = 5.0,
    ) -> None:
        self.contracts = ChannelContracts(chain, authorizer)
        self.engine = ChannelEngine(ChannelStore(store_path), terms, chain=self.contracts)
        self.paywall = ChannelPaywall(
            self.engine, routes, token_name=token_name, token_version=token_version
        )
        self.claims = ClaimLoop(self.engine, self.contracts, policy)
        self.claim_interval_s = claim_interval_s

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """Run the claim loop while the app serves; on shutdown claim what is left, then close."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.claims.run(stop, interval_s=self.claim_interval_s))
        try:
            yield
        finally:
            stop.set()
            await task
            if any(r.unclaimed > 0 for r in self.engine.records()):
                await self.claims.tick(force=True)
            self.engine.store.close()
