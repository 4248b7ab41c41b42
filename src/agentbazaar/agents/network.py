"""Setting up an agent network on a local chain: the contracts it needs, wallets, funds.

``deploy_agent_network`` deploys (or reuses, by the deployment manifest) only what agents use:
the EIP-3009 stablecoin (USDC) and the three ERC-8004 registries, with the same arguments and
manifest keys as the full contract suite, so ``bazaar deploy`` and this agree.

``new_wallet`` creates an agent wallet: a fresh key kept in memory (or the data directory's
keystore when a config is given), a spending policy with a per-payment cap and a rolling
budget, and a ledger. ``fund`` gives it gas money and mints it USDC (local chains only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from agentbazaar.agents.runtime import Network
from agentbazaar.chain import Chain
from agentbazaar.chain.deploy import Manifest, deploy_contract
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import ChainError
from agentbazaar.identity.contracts import (
    EIP712_NAME,
    EIP712_VERSION,
    IDENTITY_KEY,
    REPUTATION_KEY,
    VALIDATION_KEY,
    IdentityRegistry,
    Registries,
    ReputationRegistry,
    ValidationRegistry,
)
from agentbazaar.tokens import Token
from agentbazaar.wallet import Ledger, SpendingPolicy, TokenLimits, Wallet

GAS_WEI = 10**20  # 100 ETH of local gas money per agent
AGENT_TOKEN = ("agentbazaar Agent", "AGENT")


def deploy_agent_network(
    chain: Chain, cfg: BazaarConfig, manifest: Manifest | None = None
) -> tuple[Network, LocalAccount]:
    """USDC + ERC-8004 registries on a local chain; returns the network and the minter.
    ``manifest`` (else the data directory's, or a new one on the embedded chain) records them,
    so a ``Suite`` over it sees the same contracts."""
    if not chain.is_dev:
        raise ChainError("the agent network set-up deploys and mints: use a local chain")
    deployer = dev_account(0)
    chain.fund_native(deployer.address, GAS_WEI * 10)
    directory = None if chain.backend == "embedded" else cfg.deployments_dir
    manifest = manifest if manifest is not None else Manifest.load(directory, chain.chain_id)
    usdc_meta: dict[str, Any] = {
        "kind": "token", "symbol": "USDC", "decimals": 6,
        "eip712_name": cfg.stablecoin_name, "eip712_version": cfg.stablecoin_version,
    }  # fmt: skip
    usdc, _ = deploy_contract(
        chain, deployer, manifest, "USDC", "Stablecoin",
        ("USD Coin", "USDC", cfg.stablecoin_name, cfg.stablecoin_version), meta=usdc_meta,
    )  # fmt: skip
    identity, _ = deploy_contract(
        chain, deployer, manifest, IDENTITY_KEY, "IdentityRegistry", AGENT_TOKEN,
        meta={"kind": "erc8004-identity", "token_name": AGENT_TOKEN[0],
              "token_symbol": AGENT_TOKEN[1], "eip712_name": EIP712_NAME,
              "eip712_version": EIP712_VERSION},
    )  # fmt: skip
    bound: dict[str, Any] = {}
    for key, name in (
        (REPUTATION_KEY, "ReputationRegistry"),
        (VALIDATION_KEY, "ValidationRegistry"),
    ):
        bound[key], status = deploy_contract(
            chain, deployer, manifest, key, name, (identity.address,),
            meta={"kind": f"erc8004-{key.removesuffix('Registry').lower()}"},
        )  # fmt: skip
        if (
            status == "reused"
            and chain.call(bound[key].functions.getIdentityRegistry()) != identity.address
        ):
            bound[key], _ = deploy_contract(
                chain, deployer, manifest, key, name, (identity.address,), force=True
            )
    registries = Registries(
        IdentityRegistry(chain, identity),
        ReputationRegistry(chain, bound[REPUTATION_KEY]),
        ValidationRegistry(chain, bound[VALIDATION_KEY]),
    )
    token = Token("USDC", 6, usdc.address, cfg.stablecoin_name, cfg.stablecoin_version)
    return Network(chain, registries, token), deployer


def new_wallet(
    name: str,
    directory: Path,
    token: Token,
    *,
    max_per_payment: int | None = None,
    daily: int | None = None,
) -> Wallet:
    """A fresh agent wallet with a USDC policy and its own ledger under ``directory``."""
    account: LocalAccount = Account.create()
    directory.mkdir(parents=True, exist_ok=True)
    assert token.address is not None
    limits = TokenLimits("USDC", token.decimals, max_per_payment=max_per_payment, daily=daily)
    policy = SpendingPolicy(tokens={token.address.lower(): limits})
    return Wallet(name, account, policy, Ledger(directory / f"{name}-ledger.sqlite"))


def fund(network: Network, minter: LocalAccount, address: str, usdc_units: int) -> str | None:
    """Gas money and ``usdc_units`` of USDC (minted) for ``address``; returns the mint tx."""
    chain = network.chain
    chain.fund_native(address, GAS_WEI)
    if usdc_units <= 0:
        return None
    assert network.token.address is not None
    from agentbazaar.chain.compiler import compile_contract

    usdc = chain.contract(network.token.address, compile_contract("Stablecoin").abi)
    receipt = chain.transact(minter, usdc.functions.mint(address, usdc_units))
    return str(receipt["transactionHash"].to_0x_hex())


def usdc_balance(network: Network, address: str) -> int:
    from agentbazaar.chain.compiler import compile_contract

    assert network.token.address is not None
    usdc = network.chain.contract(network.token.address, compile_contract("Stablecoin").abi)
    return int(network.chain.call(usdc.functions.balanceOf(address)))
