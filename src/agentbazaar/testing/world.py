"""A local world for tests: a real chain (embedded py-evm or anvil), the part of the contract
suite a test needs, freshly deployed, and funded accounts.

    world = LocalWorld.deploy(Chain.embedded())                   # USDC only
    world = LocalWorld.deploy(chain, only=("USDC", "batch-settlement"), fund_dev_accounts=6)
    alice = world.new_account(usdc=10**9)                          # gas money + 1,000 USDC

    with local_anvil(tmp_path) as node:                            # a real anvil, stopped by PID
        world = LocalWorld.deploy(Chain.rpc(node.running_url(), backend="local"))

Every world deploys its own contracts (an in-memory manifest), so tests sharing one anvil node
do not see each other's tokens or registries.
"""

from __future__ import annotations

import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode
from agentbazaar.chain.deploy import Manifest
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.config import BazaarConfig, load_config
from agentbazaar.deployment import deploy_suite
from agentbazaar.loopback import free_port
from agentbazaar.suite import Suite
from agentbazaar.tokens import Token, TokenRegistry

DEV_ACCOUNT_WEI = 10**21  # what ``fund_dev_accounts`` gives each dev account


def anvil_config(home: Path) -> BazaarConfig:
    """A config for a local anvil with its state under ``home`` on a free port."""
    return load_config(home, env={}).with_chain(backend="local", anvil_port=free_port())


@contextmanager
def local_anvil(
    directory: Path | None = None, *, persist_state: bool = True
) -> Iterator[AnvilNode]:
    """A real anvil on a free 127.0.0.1 port, its files under ``directory`` (a temporary
    directory when None); stopped by its PID on exit, also when the block raises.
    ``persist_state=False``: no periodic state dump (large throw-away chains)."""
    with tempfile.TemporaryDirectory(prefix="bazaar-anvil-") as scratch:
        home = (directory or Path(scratch)) / "anvil-home"
        node = AnvilNode(anvil_config(home), persist_state=persist_state)
        node.start()
        try:
            yield node
        finally:
            node.stop()


@dataclass
class LocalWorld:
    """A chain with (part of) the suite deployed by the dev deployer, who can mint USDC."""

    chain: Chain
    cfg: BazaarConfig
    suite: Suite
    deployer: LocalAccount

    @classmethod
    def deploy(
        cls,
        chain: Chain,
        *,
        only: Collection[str] | None = ("USDC",),
        cfg: BazaarConfig | None = None,
        fund_dev_accounts: int = 0,
    ) -> LocalWorld:
        """Deploy the suite entries ``only`` selects (all: None) on a dev ``chain``."""
        cfg = cfg or BazaarConfig(home=Path(tempfile.gettempdir()) / "bazaar-testing")
        for i in range(fund_dev_accounts):
            chain.fund_native(dev_account(i).address, DEV_ACCOUNT_WEI)
        ctx = deploy_suite(chain, cfg, only=only, manifest=Manifest(chain_id=chain.chain_id))
        return cls(chain, cfg, Suite.from_context(ctx), ctx.deployer)

    # ---- the stablecoin -----------------------------------------------------------------------
    @property
    def usdc(self) -> Contract:
        return self.suite.contract("USDC")

    @property
    def token(self) -> str:
        """The USDC address."""
        return str(self.usdc.address)

    @property
    def tokens(self) -> TokenRegistry:
        return self.suite.tokens

    @property
    def usdc_token(self) -> Token:
        return self.suite.tokens.get("USDC")

    def mint(self, to: str, units: int) -> str:
        """Mint ``units`` of USDC to ``to``; returns the transaction hash."""
        receipt = self.chain.transact(self.deployer, self.usdc.functions.mint(to, units))
        return str(receipt["transactionHash"].to_0x_hex())

    def balance(self, who: str) -> int:
        """USDC base units held by ``who``."""
        return int(self.usdc.functions.balanceOf(who).call())

    # ---- accounts -----------------------------------------------------------------------------
    def fund(self, address: str, *, eth: int = 0, usdc: int = 0) -> None:
        if eth:
            self.chain.fund_native(address, eth)
        if usdc:
            self.mint(address, usdc)

    def new_account(self, eth: int = 10**18, usdc: int = 0) -> LocalAccount:
        """A fresh key with ``eth`` wei of gas money and ``usdc`` base units of USDC."""
        account: LocalAccount = Account.create()
        self.fund(account.address, eth=eth, usdc=usdc)
        return account
