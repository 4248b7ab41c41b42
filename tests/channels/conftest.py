"""Fixtures for channel tests: a chain with the stablecoin and the escrow at the canonical
addresses (embedded py-evm, or anvil), dev accounts 0-5 funded.

``on_anvil`` shares the module's node; a test that moves the chain's clock (``evm_increaseTime``)
takes ``on_own_anvil``: a node of its own, so the others keep chain time = wall-clock time (the
SDK's deposit authorizations are valid for minutes of wall-clock time)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode
from agentbazaar.testing import LocalWorld

sys.path.insert(0, str(Path(__file__).parent))

CHANNEL_WORLD = ("USDC", "batch-settlement")


def channel_world(chain: Chain) -> LocalWorld:
    return LocalWorld.deploy(chain, only=CHANNEL_WORLD, fund_dev_accounts=6)


@pytest.fixture
def embedded() -> LocalWorld:
    return channel_world(Chain.embedded())


@pytest.fixture
def on_anvil(shared_anvil: AnvilNode) -> LocalWorld:
    return channel_world(Chain.rpc(shared_anvil.running_url(), backend="local"))


@pytest.fixture
def on_own_anvil(anvil_node: AnvilNode) -> LocalWorld:
    return channel_world(Chain.rpc(anvil_node.running_url(), backend="local"))
