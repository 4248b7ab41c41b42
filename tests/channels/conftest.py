"""Fixtures for channel tests: a chain with the stablecoin and the escrow at the canonical
addresses (embedded py-evm, or the module's shared anvil), dev accounts 0-5 funded."""

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
