"""The dataset registry in the contract suite (ours on every chain, like the ERC-8004 registries).

``RevenueSplitter`` is deployed once as the implementation every dataset's splitter clones
(constructed with the zero token, so it can never be initialized itself); ``DatasetRegistry`` is
bound to the identity registry and that implementation. The ``data: link and licences`` step
deploys the registry again if either moved, and adds the licence templates of
``data.licences.TEMPLATES`` that are not on chain yet (checking those that are).

Data only: ``agentbazaar.deployment`` lists these specs and the step.
"""

from __future__ import annotations

from typing import Any

from agentbazaar.chain.deploy import ContractSpec, SuiteContext, SuiteStep
from agentbazaar.data.licences import TEMPLATES
from agentbazaar.data.registry import REGISTRY_KEY, SPLITTER_KEY
from agentbazaar.errors import ContractError
from agentbazaar.identity.contracts import IDENTITY_KEY

_ZERO = "0x0000000000000000000000000000000000000000"


def _registry_args(ctx: SuiteContext) -> tuple[Any, ...]:
    return (ctx.contracts[IDENTITY_KEY].address, ctx.contracts[SPLITTER_KEY].address)


def _link_and_licences(ctx: SuiteContext) -> None:
    registry = ctx.contracts[REGISTRY_KEY]
    bound = (
        ctx.chain.call(registry.functions.identity()),
        ctx.chain.call(registry.functions.splitterImplementation()),
    )
    if bound != _registry_args(ctx):
        DATASET_REGISTRY.deploy(ctx, force=True)
        registry = ctx.contracts[REGISTRY_KEY]
        ctx.statuses[REGISTRY_KEY] = "changed"
    count = int(ctx.chain.call(registry.functions.licenceCount()))
    for number, template in enumerate(TEMPLATES, start=1):
        if number <= count:
            on_chain = ctx.chain.call(registry.functions.getLicence(number))
            if bytes(on_chain[4]) != template.terms_hash:
                raise ContractError(
                    f"licence {number} on chain is not the {template.key!r} template"
                )
            continue
        ctx.chain.transact(
            ctx.deployer,
            registry.functions.addLicence(
                template.name[:32],
                template.commercial,
                template.derivatives,
                template.attribution,
                template.terms_hash,
            ),
        )


SPLITTER_IMPLEMENTATION = ContractSpec(
    SPLITTER_KEY,
    "RevenueSplitter",
    lambda ctx: (_ZERO, [], [], [], [], _ZERO),
    lambda ctx: {"kind": "splitter-implementation"},
)
DATASET_REGISTRY = ContractSpec(
    REGISTRY_KEY,
    "DatasetRegistry",
    _registry_args,
    lambda ctx: {"kind": "dataset-registry"},
    needs=(IDENTITY_KEY, SPLITTER_KEY),
)
LINK_DATASETS = SuiteStep(
    "data: link and licences", _link_and_licences, needs=(IDENTITY_KEY, SPLITTER_KEY, REGISTRY_KEY)
)
