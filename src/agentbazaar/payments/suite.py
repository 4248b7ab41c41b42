"""What the payments layer adds to the local suite: the x402 ``BatchSettler``, and Permit2 with
the x402 upto and exact Permit2 proxies at their canonical addresses (a set-up step)."""

from __future__ import annotations

from agentbazaar.payments.permit2 import install
from agentbazaar.suite import ContractSpec, SuiteContext, register_contract, register_step

register_contract(
    ContractSpec(
        "BatchSettler",
        "BatchSettler",
        lambda ctx: (),
        lambda ctx: {"kind": "x402-batch-settler"},
        local_only=False,
    )
)


def _place_permit2(ctx: SuiteContext) -> None:
    install(ctx.chain, ctx.deployer)


register_step("permit2", _place_permit2)
