"""The local contract suite that `bazaar deploy` puts on a chain, and access to it at run time.

On local chains (embedded, anvil) everything is deployed by the well-known dev account, which is
also the stablecoin's minter (so the faucet can mint). On an rpc chain only the contracts that are
ours to deploy are deployed (by a wallet the user names), and tokens come from ``bazaar.toml``.

The suite is one explicit list, ``SUITE``: contract specs (``ContractSpec``) and set-up steps
(``SuiteStep``), run in the order listed. Each layer describes its own contracts as data in its
``suite`` module (``agentbazaar.identity.suite`` ...); importing them registers nothing.
``_entries`` imports them when the list is first read (a deployment, ``select``, ``SUITE``), not
with this module: reading a deployed suite (``Suite``) does not load the payments, channels and
data packages, which every command on the chain would otherwise pay for at start-up.

Adding a contract is one line here, after the spec is written beside the code that uses it::

    # agentbazaar/<layer>/suite.py
    DATASET_REGISTRY = ContractSpec("DatasetRegistry", "DatasetRegistry",
                                    args=lambda ctx: (ctx.contracts["USDC"].address,),
                                    meta=lambda ctx: {"kind": "dataset-registry"},
                                    needs=("USDC",))
    # in _entries: import the module, and list the spec after the contracts it needs
    <layer>_suite.DATASET_REGISTRY,

``deploy_suite(chain, cfg, only={...})`` deploys a part: the keys named, the keys they need
(``ContractSpec.needs``, transitively), and the steps named or whose needs are all selected.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from functools import cache
from typing import TYPE_CHECKING

from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from agentbazaar.chain import Chain
from agentbazaar.chain.deploy import (
    ContractSpec,
    Manifest,
    SuiteContext,
    SuiteStep,
    load_contract,
)
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import ContractError
from agentbazaar.tokens import TokenRegistry, registry_for

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

if TYPE_CHECKING:
    SUITE: tuple[ContractSpec | SuiteStep, ...]
else:

    def __getattr__(name: str) -> tuple[ContractSpec | SuiteStep, ...]:
        """``SUITE``: the list, built by ``_entries`` on first use (hidden from mypy, which
        sees the declaration above and still refuses any other unknown name)."""
        if name == "SUITE":
            return _entries()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _entries() -> tuple[ContractSpec | SuiteStep, ...]:
    """The suite in deployment order; the layers' ``suite`` modules are imported here."""
    from agentbazaar.channels import suite as channels_suite
    from agentbazaar.data import suite as data_suite
    from agentbazaar.dex import suite as dex_suite
    from agentbazaar.identity import suite as identity_suite
    from agentbazaar.jobs import suite as jobs_suite
    from agentbazaar.payments import suite as payments_suite

    return (
        USDC,
        WETH,
        identity_suite.IDENTITY_REGISTRY,
        identity_suite.REPUTATION_REGISTRY,
        identity_suite.VALIDATION_REGISTRY,
        payments_suite.BATCH_SETTLER,
        *dex_suite.TEST_TOKEN_SPECS,
        dex_suite.AMM_FACTORY,
        dex_suite.AMM_ROUTER,
        identity_suite.LINK_REGISTRIES,
        dex_suite.LINK_AMM,
        dex_suite.SEED_AMM_POOLS,
        channels_suite.PLACE_BATCH_SETTLEMENT,
        payments_suite.PLACE_PERMIT2,
        data_suite.SPLITTER_IMPLEMENTATION,
        data_suite.DATASET_REGISTRY,
        data_suite.LINK_DATASETS,
        jobs_suite.STAKE_REGISTRY,
        jobs_suite.FEEDBACK_GATE,
        jobs_suite.JOB_ESCROW,
        jobs_suite.LINK_JOBS,
    )


def select(only: Collection[str] | None = None) -> tuple[ContractSpec | SuiteStep, ...]:
    """The entries of ``SUITE`` that ``deploy_suite(only=...)`` runs, in order (all: None)."""
    suite = _entries()
    if only is None:
        return suite
    specs = {e.key: e for e in suite if isinstance(e, ContractSpec)}
    steps = {e.name for e in suite if isinstance(e, SuiteStep)}
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
        for e in suite
        if (e.key in keys if isinstance(e, ContractSpec) else _step_selected(e, only, keys))
    )


def _step_selected(step: SuiteStep, only: Collection[str], keys: set[str]) -> bool:
    return step.name in only or (bool(step.needs) and set(step.needs) <= keys)


def manifest_for(chain: Chain, cfg: BazaarConfig) -> Manifest:
    directory = None if chain.backend == "embedded" else cfg.deployments_dir
    return Manifest.load(directory, chain.chain_id)


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


class Suite:
    """The deployed suite on one chain: contracts by key and the tokens they define."""

    def __init__(self, chain: Chain, cfg: BazaarConfig, manifest: Manifest | None = None) -> None:
        self.chain = chain
        self.cfg = cfg
        self.manifest = manifest or manifest_for(chain, cfg)
        self.tokens: TokenRegistry = registry_for(cfg, self.manifest)
        self._cache: dict[str, Contract] = {}

    @classmethod
    def from_context(cls, ctx: SuiteContext) -> Suite:
        return cls(ctx.chain, ctx.cfg, ctx.manifest)

    def contract(self, key: str) -> Contract:
        if key not in self._cache:
            self._cache[key] = load_contract(self.chain, self.manifest, key)
        return self._cache[key]

    def has(self, key: str) -> bool:
        return key in self.manifest.contracts

    def token_contract(self, symbol_or_address: str) -> Contract:
        from agentbazaar.chain.compiler import compile_contract

        token = self.tokens.get(symbol_or_address)
        if token.address is None:
            raise ContractError(f"{token.symbol} is the native currency, not a token contract")
        abi = compile_contract("Stablecoin").abi  # any ERC-20 ABI: ours is a superset
        return self.chain.contract(token.address, abi)
