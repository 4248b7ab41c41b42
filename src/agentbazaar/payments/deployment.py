"""The payments layer in the suite (data only; ``agentbazaar.deployment`` lists it): the x402
``ExactBatchSettler``, and the step that places Permit2 with the x402 upto and exact Permit2 proxies
at their canonical addresses."""

from __future__ import annotations

from agentbazaar.chain.deploy import ContractSpec, SuiteContext, SuiteStep
from agentbazaar.payments.permit2 import install

EXACT_BATCH_SETTLER = ContractSpec(
    "ExactBatchSettler", "ExactBatchSettler", meta=lambda ctx: {"kind": "x402-batch-settler"}
)


def _place_permit2(ctx: SuiteContext) -> None:
    install(ctx.chain, ctx.deployer)


PLACE_PERMIT2 = SuiteStep("permit2", _place_permit2)
