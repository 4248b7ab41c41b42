"""Suite step: the batch-settlement escrow and its ERC-3009 collector at the canonical addresses
(data only; ``agentbazaar.deployment`` lists it)."""

from __future__ import annotations

from agentbazaar.chain.deploy import SuiteContext, SuiteStep
from agentbazaar.channels.onchain import install


def _place_batch_settlement(ctx: SuiteContext) -> None:
    install(ctx.chain, ctx.deployer)


PLACE_BATCH_SETTLEMENT = SuiteStep("batch-settlement", _place_batch_settlement)
