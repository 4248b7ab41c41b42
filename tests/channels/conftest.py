"""Fixtures for channel tests: a chain with the stablecoin and the escrow at the canonical
addresses (embedded py-evm or a real anvil)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode

sys.path.insert(0, str(Path(__file__).parent))

from channel_helpers import Deployed, deploy_channels


@pytest.fixture
def embedded() -> Deployed:
    return deploy_channels(Chain.embedded())


@pytest.fixture
def on_anvil(anvil_node: AnvilNode) -> Deployed:
    return deploy_channels(Chain.rpc(anvil_node.running_url(), backend="local"))
