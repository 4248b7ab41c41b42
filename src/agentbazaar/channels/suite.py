"""Suite step: the batch-settlement escrow and its ERC-3009 collector at the canonical addresses."""

from __future__ import annotations

from agentbazaar.channels.onchain import install
from agentbazaar.suite import SuiteContext, register_step


def _place_batch_settlement(ctx: SuiteContext) -> None:
    install(ctx.chain, ctx.deployer)


register_step("batch-settlement", _place_batch_settlement)
