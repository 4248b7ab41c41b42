"""A suite deployed once per test session on the embedded chain, with a registered publisher."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from agentbazaar.chain import Chain
from agentbazaar.chain.compiler import default_cache_dir
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.config import load_config
from agentbazaar.data.registry import DatasetRegistry
from agentbazaar.deployment import deploy_suite
from agentbazaar.identity.contracts import IdentityRegistry
from agentbazaar.suite import Suite


@dataclass
class DataWorld:
    chain: Chain
    suite: Suite
    registry: DatasetRegistry
    identity: IdentityRegistry
    usdc: Contract
    publisher: LocalAccount
    agent_id: int

    def mint(self, to: str, units: int) -> None:
        self.chain.transact(dev_account(0), self.usdc.functions.mint(to, units))

    def balance(self, address: str) -> int:
        return int(self.chain.call(self.usdc.functions.balanceOf(address)))


@pytest.fixture(scope="session")
def data_world(tmp_path_factory: pytest.TempPathFactory) -> DataWorld:
    home = tmp_path_factory.mktemp("data-home")
    cache = default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    (home / "artifacts").symlink_to(cache, target_is_directory=True)
    chain = Chain.embedded()
    ctx = deploy_suite(chain, load_config(Path(home), env={}))
    suite = Suite.from_context(ctx)
    publisher = dev_account(3)
    chain.fund_native(publisher.address, 10**20)
    identity = IdentityRegistry.from_suite(suite)
    agent_id = identity.register(publisher, "https://publisher.example/card.json")
    return DataWorld(
        chain,
        suite,
        DatasetRegistry.from_suite(suite),
        identity,
        suite.token_contract("USDC"),
        publisher,
        agent_id,
    )
