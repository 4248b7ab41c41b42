"""What `bazaar deploy` puts on a chain: the suite as one explicit list, and the deployment run.

On local chains (embedded, anvil) everything is deployed by the well-known dev account, which is
also the stablecoin's minter (so the faucet can mint). On an rpc chain only the contracts that are
ours to deploy are deployed (by a wallet the user names), and tokens come from ``bazaar.toml``.

``SUITE`` lists contract specs (``ContractSpec``) and set-up steps (``SuiteStep``), run in the
order listed. Each layer describes its own contracts as data in its ``deployment`` module
(``agentbazaar.identity.deployment`` ...); importing them registers nothing. Reading what is
deployed at run time is ``agentbazaar.suite.Suite``, which needs none of this.

Adding a contract is one line here, after the spec is written beside the code that uses it::

    # agentbazaar/<layer>/deployment.py
    DATASET_REGISTRY = ContractSpec("DatasetRegistry", "DatasetRegistry",
                                    args=lambda ctx: (ctx.contracts["USDC"].address,),
                                    meta=lambda ctx: {"kind": "dataset-registry"},
                                    needs=("USDC",))
    # in SUITE, after the contracts it needs
    data_deployment.DATASET_REGISTRY,

``deploy_suite(chain, cfg, only={...})`` deploys a part: the keys named, the keys they need
(``ContractSpec.needs``, transitively), and the steps named or whose needs are all selected.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from eth_account.signers.local import LocalAccount

from agentbazaar.chain import Chain
from agentbazaar.chain.deploy import (
    ContractSpec,
    Manifest,
    SuiteContext,
    SuiteStep,
)
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import deployment as channels_deployment
from agentbazaar.config import BazaarConfig
from agentbazaar.data import deployment as data_deployment
from agentbazaar.dex import deployment as dex_deployment
from agentbazaar.errors import ContractError
from agentbazaar.identity import deployment as identity_deployment
from agentbazaar.jobs import deployment as jobs_deployment
from agentbazaar.payments import deployment as payments_deployment
from agentbazaar.suite import manifest_for

DEPLOYER_GAS_WEI = 10**21  # 1,000 ETH of local gas money for the dev deployer

USDC = ContractSpec(
    "USDC",
    "Stablecoin",
    lambda ctx: ("USD Coin", "USDC", ctx.cfg.stablecoin_name, ctx.cfg.stablecoin_version),
    lambda ctx: {
        "kind": "token",
        "symbol": "USDC",
        "decimals": 6,
        "eip712_name": ctx.cfg.stablecoin_name,
        "eip712_version": ctx.cfg.stablecoin_version,
    },
    local_only=True,
)
WETH = ContractSpec(
    "WETH",
    "WrappedNative",
    lambda ctx: ("Wrapped Ether", "WETH"),
    lambda ctx: {"kind": "token", "symbol": "WETH", "decimals": 18},
    local_only=True,
)

SUITE: tuple[ContractSpec | SuiteStep, ...] = (
    USDC,
    WETH,
    identity_deployment.IDENTITY_REGISTRY,
    identity_deployment.REPUTATION_REGISTRY,
    identity_deployment.VALIDATION_REGISTRY,
    payments_deployment.EXACT_BATCH_SETTLER,
    *dex_deployment.TEST_TOKEN_SPECS,
    dex_deployment.AMM_FACTORY,
    dex_deployment.AMM_ROUTER,
    identity_deployment.LINK_REGISTRIES,
    dex_deployment.LINK_AMM,
    dex_deployment.SEED_AMM_POOLS,
    channels_deployment.PLACE_BATCH_SETTLEMENT,
    payments_deployment.PLACE_PERMIT2,
    data_deployment.SPLITTER_IMPLEMENTATION,
    data_deployment.DATASET_REGISTRY,
    data_deployment.LINK_DATASETS,
    jobs_deployment.STAKE_REGISTRY,
    jobs_deployment.FEEDBACK_GATE,
    jobs_deployment.JOB_ESCROW,
    jobs_deployment.LINK_JOBS,
)


def select(only: Collection[str] | None = None) -> tuple[ContractSpec | SuiteStep, ...]:
    """The entries of ``SUITE`` that ``deploy_suite(only=...)`` runs, in order (all: None)."""
    if only is None:
        return SUITE
    specs = {e.key: e for e in SUITE if isinstance(e, ContractSpec)}
    steps = {e.name for e in SUITE if isinstance(e, SuiteStep)}
    unknown = set(only) - specs.keys() - steps
    if unknown:
        raise ContractError(f"not in the suite: {', '.join(sorted(unknown))}")
    keys: set[str] = set()
    todo = [name for name in only if name in specs]
    while todo:
        key = todo.pop()
        if key not in keys:
            keys.add(key)
            todo.extend(specs[key].needs)
    return tuple(
        e
        for e in SUITE
        if (e.key in keys if isinstance(e, ContractSpec) else _step_selected(e, only, keys))
    )


def _step_selected(step: SuiteStep, only: Collection[str], keys: set[str]) -> bool:
    return step.name in only or (bool(step.needs) and set(step.needs) <= keys)


def _dev_deployer(chain: Chain) -> LocalAccount:
    if not chain.is_dev:
        raise ContractError("deploying to a public chain needs a funded wallet: --wallet NAME")
    deployer = dev_account(0)
    if chain.native_balance(deployer.address) < DEPLOYER_GAS_WEI // 10:
        chain.fund_native(deployer.address, DEPLOYER_GAS_WEI)
    return deployer


def deploy_suite(
    chain: Chain,
    cfg: BazaarConfig,
    *,
    deployer: LocalAccount | None = None,
    manifest: Manifest | None = None,
    force: bool = False,
    only: Collection[str] | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> SuiteContext:
    """Deploy (or reuse) the suite, or the part ``only`` selects (see ``select``); returns the
    run's context: contracts and statuses per manifest key."""
    entries = select(only)
    ctx = SuiteContext(
        chain=chain,
        cfg=cfg,
        manifest=manifest or manifest_for(chain, cfg),
        deployer=deployer or _dev_deployer(chain),
    )
    for entry in entries:
        if isinstance(entry, SuiteStep):
            entry.run(ctx)
            if progress:
                progress(entry.name, "done")
        elif chain.is_dev or not entry.local_only:
            status = entry.deploy(ctx, force=force)
            if progress:
                progress(entry.key, status)
    return ctx
