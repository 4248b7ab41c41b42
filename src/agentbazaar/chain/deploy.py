"""Deployment manifests: one JSON file per chain id, so later runs reuse deployed addresses.

``deployments/<chain_id>.json``::

    {"chain_id": 31337, "contracts": {"USDC": {"contract": "Stablecoin", "address": "0x..",
      "source_hash": "..", "tx_hash": "0x..", "block": 3, "args": [...]}}}

A deployment is reused only when code is still at its address and its source hash equals the
current source's; otherwise it is reported as missing or changed and deployed again.

A deployment *plan* is data: ``ContractSpec`` (deploy contract X under key K with these
arguments) and ``SuiteStep`` (a set-up action after the contracts: link, seed, place code), run in
order against one ``SuiteContext``. Each layer describes its contracts with them (e.g.
``agentbazaar.identity.deployment``); ``agentbazaar.deployment`` lists them and runs the list.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from agentbazaar.chain.chain import Chain
from agentbazaar.chain.compiler import Artifact, compile_contract
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import ContractError

Status = Literal["reused", "deployed", "changed", "missing"]


@dataclass
class Deployment:
    contract: str
    address: str
    source_hash: str
    tx_hash: str | None = None
    block: int | None = None
    args: list[Any] = field(default_factory=list)
    meta: dict[str, Any] = field(
        default_factory=dict
    )  # e.g. token symbol, decimals, EIP-712 domain


@dataclass
class Manifest:
    chain_id: int
    contracts: dict[str, Deployment] = field(default_factory=dict)
    path: Path | None = None  # None: in memory only (the embedded chain dies with its process)

    @classmethod
    def load(cls, directory: Path | None, chain_id: int) -> Manifest:
        if directory is None:
            return cls(chain_id=chain_id)
        path = directory / f"{chain_id}.json"
        if not path.exists():
            return cls(chain_id=chain_id, path=path)
        try:
            raw = json.loads(path.read_text())
            contracts = {k: Deployment(**v) for k, v in raw.get("contracts", {}).items()}
        except (ValueError, TypeError, OSError) as exc:
            raise ContractError(
                f"deployment manifest {path} is unreadable ({exc}): "
                "delete it and run `bazaar deploy` again"
            ) from exc
        if int(raw.get("chain_id", -1)) != chain_id:
            raise ContractError(
                f"manifest {path} is for chain {raw.get('chain_id')}, not {chain_id}"
            )
        return cls(chain_id=chain_id, contracts=contracts, path=path)

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "chain_id": self.chain_id,
            "contracts": {k: asdict(v) for k, v in sorted(self.contracts.items())},
        }
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, indent=2, default=str))
        tmp.replace(self.path)

    def address(self, key: str) -> str:
        dep = self.contracts.get(key)
        if dep is None:
            raise ContractError(
                f"{key} is not deployed on chain {self.chain_id}: run `bazaar deploy`"
            )
        return dep.address


def check_deployment(chain: Chain, manifest: Manifest, key: str, artifact: Artifact) -> Status:
    dep = manifest.contracts.get(key)
    if dep is None or not chain.code_at(dep.address):
        return "missing"
    if dep.source_hash != artifact.source_hash:
        return "changed"
    return "reused"


def deploy_contract(
    chain: Chain,
    account: LocalAccount,
    manifest: Manifest,
    key: str,
    contract: str,
    args: tuple[Any, ...] = (),
    *,
    artifacts_dir: Path | None = None,
    force: bool = False,
    meta: dict[str, Any] | None = None,
) -> tuple[Contract, Status]:
    """Deploy ``contract`` under manifest ``key`` unless an up-to-date deployment exists."""
    artifact = compile_contract(contract, cache_dir=artifacts_dir)
    status = check_deployment(chain, manifest, key, artifact)
    if status == "reused" and not force:
        return chain.contract(manifest.contracts[key].address, artifact.abi), status
    instance, receipt = chain.deploy(account, artifact.abi, artifact.bytecode, *args, name=key)
    manifest.contracts[key] = Deployment(
        contract=contract,
        address=instance.address,
        source_hash=artifact.source_hash,
        tx_hash=receipt["transactionHash"].to_0x_hex(),
        block=int(receipt["blockNumber"]),
        args=[a if isinstance(a, (int, str, bool)) else str(a) for a in args],
        meta=dict(meta or {}),
    )
    manifest.save()
    return instance, ("deployed" if status == "missing" else "changed")


def load_contract(chain: Chain, manifest: Manifest, key: str) -> Contract:
    """A deployed contract by manifest key, with the ABI of its current source."""
    dep = manifest.contracts.get(key)
    if dep is None:
        raise ContractError(
            f"{key} is not deployed on chain {manifest.chain_id}: run `bazaar deploy`"
        )
    return chain.contract(dep.address, compile_contract(dep.contract).abi)


@dataclass
class SuiteContext:
    """What a deployment run works on: the chain, the deployer, the manifest it updates, and the
    contracts deployed or reused so far in this run (by manifest key) with their statuses."""

    chain: Chain
    cfg: BazaarConfig
    manifest: Manifest
    deployer: LocalAccount
    contracts: dict[str, Contract] = field(default_factory=dict)
    statuses: dict[str, Status] = field(default_factory=dict)


def _no_args(ctx: SuiteContext) -> tuple[Any, ...]:
    return ()


def _no_meta(ctx: SuiteContext) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class ContractSpec:
    """Deploy ``contracts/<contract>.vy`` under manifest ``key``.

    ``args`` and ``meta`` are computed from the run's context when the spec is reached (so a
    spec may use the address of one listed before it; name those keys in ``needs``, which
    ``deploy_suite(only=...)`` then includes). ``local_only``: deployed on dev chains only; on
    rpc chains the real contract comes from ``bazaar.toml`` (e.g. the real USDC)."""

    key: str
    contract: str
    args: Callable[[SuiteContext], tuple[Any, ...]] = _no_args
    meta: Callable[[SuiteContext], dict[str, Any]] = _no_meta
    local_only: bool = False
    needs: tuple[str, ...] = ()

    def deploy(self, ctx: SuiteContext, *, force: bool = False) -> Status:
        """Deploy (or reuse) this contract in ``ctx``; records it there and returns its status."""
        contract, status = deploy_contract(
            ctx.chain,
            ctx.deployer,
            ctx.manifest,
            self.key,
            self.contract,
            self.args(ctx),
            artifacts_dir=ctx.cfg.artifacts_dir,
            force=force,
            meta=self.meta(ctx),
        )
        ctx.contracts[self.key], ctx.statuses[self.key] = contract, status
        return status


@dataclass(frozen=True)
class SuiteStep:
    """A set-up action run after the contracts listed before it (link, seed, place code).

    ``needs``: the manifest keys it works on; ``deploy_suite(only=...)`` runs a step when it is
    named or when every key it needs is selected (a step that needs nothing runs only when
    named). A step must be idempotent: it runs on every deployment, also when all is reused."""

    name: str
    run: Callable[[SuiteContext], None]
    needs: tuple[str, ...] = ()
