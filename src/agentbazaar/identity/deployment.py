"""The ERC-8004 registries in the contract suite (ours on every chain, not only local ones).

Reputation and validation are bound to the identity registry at construction. If the identity
registry is deployed again (its source changed) while they are reused, they would point at the
old one; the ``identity: link registries`` step deploys them again in that case.

Data only: ``agentbazaar.deployment`` lists these specs and the step.
"""

from __future__ import annotations

from typing import Any

from agentbazaar.chain.deploy import ContractSpec, SuiteContext, SuiteStep
from agentbazaar.identity.contracts import (
    EIP712_NAME,
    EIP712_VERSION,
    IDENTITY_KEY,
    REPUTATION_KEY,
    VALIDATION_KEY,
)

AGENT_TOKEN_NAME = "agentbazaar Agent"
AGENT_TOKEN_SYMBOL = "AGENT"


def _identity_meta(ctx: SuiteContext) -> dict[str, Any]:
    return {
        "kind": "erc8004-identity",
        "token_name": AGENT_TOKEN_NAME,
        "token_symbol": AGENT_TOKEN_SYMBOL,
        "eip712_name": EIP712_NAME,
        "eip712_version": EIP712_VERSION,
    }


def _bound_args(ctx: SuiteContext) -> tuple[Any, ...]:
    return (ctx.contracts[IDENTITY_KEY].address,)


def _bound_spec(key: str, contract: str) -> ContractSpec:
    kind = f"erc8004-{key.removesuffix('Registry').lower()}"
    return ContractSpec(
        key, contract, _bound_args, lambda ctx: {"kind": kind}, needs=(IDENTITY_KEY,)
    )


IDENTITY_REGISTRY = ContractSpec(
    IDENTITY_KEY,
    "IdentityRegistry",
    lambda ctx: (AGENT_TOKEN_NAME, AGENT_TOKEN_SYMBOL),
    _identity_meta,
)
REPUTATION_REGISTRY = _bound_spec(REPUTATION_KEY, "ReputationRegistry")
VALIDATION_REGISTRY = _bound_spec(VALIDATION_KEY, "ValidationRegistry")


def _link_registries(ctx: SuiteContext) -> None:
    identity = ctx.contracts[IDENTITY_KEY].address
    for spec in (REPUTATION_REGISTRY, VALIDATION_REGISTRY):
        bound = ctx.chain.call(ctx.contracts[spec.key].functions.getIdentityRegistry())
        if bound != identity:
            spec.deploy(ctx, force=True)
            ctx.statuses[spec.key] = "changed"


LINK_REGISTRIES = SuiteStep(
    "identity: link registries",
    _link_registries,
    needs=(IDENTITY_KEY, REPUTATION_KEY, VALIDATION_KEY),
)
