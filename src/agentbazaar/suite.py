"""The local contract suite that `bazaar deploy` puts on a chain, and access to it at run time.

On local chains (embedded, anvil) everything is deployed by the well-known dev account, which is
also the stablecoin's minter (so the faucet can mint). On an rpc chain only the contracts that are
ours to deploy are deployed (by a wallet the user names), and tokens come from ``bazaar.toml``.

Each layer adds its contracts with ``register_contract`` and its set-up steps (seeding pools,
placing code at canonical addresses) with ``register_step``; order of registration is the order
of deployment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from agentbazaar.chain import Chain
from agentbazaar.chain.deploy import Manifest, Status, deploy_contract, load_contract
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import ContractError
from agentbazaar.tokens import TokenRegistry, registry_for

DEPLOYER_GAS_WEI = 10**21  # 1,000 ETH of local gas money for the dev deployer


@dataclass
class SuiteContext:
    chain: Chain
    cfg: BazaarConfig
    manifest: Manifest
    deployer: LocalAccount
    contracts: dict[str, Contract] = field(default_factory=dict)
    statuses: dict[str, Status] = field(default_factory=dict)


@dataclass(frozen=True)
class ContractSpec:
    key: str
    contract: str
    args: Callable[[SuiteContext], tuple[Any, ...]] = lambda ctx: ()
    meta: Callable[[SuiteContext], dict[str, Any]] = lambda ctx: {}
    local_only: bool = False  # True: on rpc chains the real deployment comes from config


_SPECS: list[ContractSpec] = []
_STEPS: list[tuple[str, Callable[[SuiteContext], None]]] = []


def register_contract(spec: ContractSpec) -> None:
    if all(s.key != spec.key for s in _SPECS):
        _SPECS.append(spec)


def register_step(name: str, step: Callable[[SuiteContext], None]) -> None:
    if all(n != name for n, _ in _STEPS):
        _STEPS.append((name, step))


def _stablecoin_args(ctx: SuiteContext) -> tuple[Any, ...]:
    return ("USD Coin", "USDC", ctx.cfg.stablecoin_name, ctx.cfg.stablecoin_version)


def _stablecoin_meta(ctx: SuiteContext) -> dict[str, Any]:
    return {
        "kind": "token",
        "symbol": "USDC",
        "decimals": 6,
        "eip712_name": ctx.cfg.stablecoin_name,
        "eip712_version": ctx.cfg.stablecoin_version,
    }


register_contract(
    ContractSpec("USDC", "Stablecoin", _stablecoin_args, _stablecoin_meta, local_only=True)
)
register_contract(
    ContractSpec(
        "WETH",
        "WrappedNative",
        lambda ctx: ("Wrapped Ether", "WETH"),
        lambda ctx: {"kind": "token", "symbol": "WETH", "decimals": 18},
        local_only=True,
    )
)


def _load_layers() -> None:
    """Import the layers that add contracts to the suite (each calls register_contract)."""
    import importlib

    for module in (
        "agentbazaar.identity.suite",
        "agentbazaar.payments.suite",
        "agentbazaar.dex.suite",
        "agentbazaar.channels.suite",
        "agentbazaar.jobs.suite",
    ):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def manifest_for(chain: Chain, cfg: BazaarConfig) -> Manifest:
    directory = None if chain.backend == "embedded" else cfg.deployments_dir
    return Manifest.load(directory, chain.chain_id)


def deploy_suite(
    chain: Chain,
    cfg: BazaarConfig,
    *,
    deployer: LocalAccount | None = None,
    manifest: Manifest | None = None,
    force: bool = False,
    progress: Callable[[str, str], None] | None = None,
) -> SuiteContext:
    """Deploy (or reuse) every contract of the suite; returns statuses per manifest key."""
    _load_layers()
    if deployer is None:
        if not chain.is_dev:
            raise ContractError("deploying to a public chain needs a funded wallet: --wallet NAME")
        deployer = dev_account(0)
        if chain.native_balance(deployer.address) < DEPLOYER_GAS_WEI // 10:
            chain.fund_native(deployer.address, DEPLOYER_GAS_WEI)
    ctx = SuiteContext(
        chain=chain, cfg=cfg, manifest=manifest or manifest_for(chain, cfg), deployer=deployer
    )
    for spec in _SPECS:
        if spec.local_only and not chain.is_dev:
            continue
        contract, status = deploy_contract(
            chain,
            deployer,
            ctx.manifest,
            spec.key,
            spec.contract,
            spec.args(ctx),
            artifacts_dir=cfg.artifacts_dir,
            force=force,
            meta=spec.meta(ctx),
        )
        ctx.contracts[spec.key], ctx.statuses[spec.key] = contract, status
        if progress:
            progress(spec.key, status)
    for name, step in _STEPS:
        step(ctx)
        if progress:
            progress(name, "done")
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
