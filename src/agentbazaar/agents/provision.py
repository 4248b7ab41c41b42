"""Setting up an agent network on a local chain: the contracts it needs, wallets, funds.

``deploy_agent_network`` deploys (or reuses, by the deployment manifest) only what agents use:
the EIP-3009 stablecoin (USDC) and the three ERC-8004 registries: the suite's own specs
(``deploy_suite(only=AGENT_NETWORK)``), so ``bazaar deploy`` and this agree by construction.

``new_wallet`` creates an agent wallet: a fresh key kept in memory (or the data directory's
keystore when a config is given), a spending policy with a per-payment cap and a rolling
budget, and a ledger. ``fund`` gives it gas money and mints it USDC (local chains only).
"""

from __future__ import annotations

from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from agentbazaar.agents.runtime import Network
from agentbazaar.chain import Chain
from agentbazaar.chain.deploy import Manifest
from agentbazaar.config import BazaarConfig
from agentbazaar.deployment import deploy_suite
from agentbazaar.errors import ChainError
from agentbazaar.identity.contracts import (
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
AGENT_NETWORK = ("USDC", IDENTITY_KEY, REPUTATION_KEY, VALIDATION_KEY)


def deploy_agent_network(
    chain: Chain, cfg: BazaarConfig, manifest: Manifest | None = None
) -> tuple[Network, LocalAccount]:
    """USDC + ERC-8004 registries on a local chain; returns the network and the minter.
    ``manifest`` (else the data directory's, or a new one on the embedded chain) records them,
    so a ``Suite`` over it sees the same contracts."""
    if not chain.is_dev:
        raise ChainError("the agent network set-up deploys and mints: use a local chain")
    ctx = deploy_suite(chain, cfg, manifest=manifest, only=AGENT_NETWORK)
    registries = Registries(
        IdentityRegistry(chain, ctx.contracts[IDENTITY_KEY]),
        ReputationRegistry(chain, ctx.contracts[REPUTATION_KEY]),
        ValidationRegistry(chain, ctx.contracts[VALIDATION_KEY]),
    )
    usdc = ctx.contracts["USDC"].address
    token = Token("USDC", 6, usdc, cfg.stablecoin_name, cfg.stablecoin_version)
    return Network(chain, registries, token), ctx.deployer


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
