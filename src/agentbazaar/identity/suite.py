"""The ERC-8004 registries in the contract suite (ours on every chain, not only local ones).

Reputation and validation are bound to the identity registry at construction. If the identity
registry is deployed again (its source changed) while they are reused, they would point at the
old one; the ``identity: link registries`` step deploys them again in that case.
"""

from __future__ import annotations

from typing import Any

from agentbazaar.chain.deploy import deploy_contract
from agentbazaar.identity.contracts import (
    EIP712_NAME,
    EIP712_VERSION,
    IDENTITY_KEY,
    REPUTATION_KEY,
    VALIDATION_KEY,
)
from agentbazaar.suite import ContractSpec, SuiteContext, register_contract, register_step

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


def _link_registries(ctx: SuiteContext) -> None:
    identity = ctx.contracts[IDENTITY_KEY].address
    for key, contract in (
        (REPUTATION_KEY, "ReputationRegistry"),
        (VALIDATION_KEY, "ValidationRegistry"),
    ):
        bound = ctx.chain.call(ctx.contracts[key].functions.getIdentityRegistry())
        if bound == identity:
            continue
        ctx.contracts[key], _ = deploy_contract(
            ctx.chain,
            ctx.deployer,
            ctx.manifest,
            key,
            contract,
            (identity,),
            artifacts_dir=ctx.cfg.artifacts_dir,
            force=True,
            meta={"kind": f"erc8004-{key.removesuffix('Registry').lower()}"},
        )
        ctx.statuses[key] = "changed"


register_contract(
    ContractSpec(
        IDENTITY_KEY,
        "IdentityRegistry",
        lambda ctx: (AGENT_TOKEN_NAME, AGENT_TOKEN_SYMBOL),
        _identity_meta,
    )
)
register_contract(
    ContractSpec(
        REPUTATION_KEY,
        "ReputationRegistry",
        _bound_args,
        lambda ctx: {"kind": "erc8004-reputation"},
    )
)
register_contract(
    ContractSpec(
        VALIDATION_KEY,
        "ValidationRegistry",
        _bound_args,
        lambda ctx: {"kind": "erc8004-validation"},
    )
)
register_step("identity: link registries", _link_registries)
