"""Identity fixtures: the registries on the embedded chain or on a real anvil."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from identity_helpers import Registries, deploy_registries

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode


@pytest.fixture
def embedded() -> Registries:
    return deploy_registries(Chain.embedded())


@pytest.fixture
def on_anvil(anvil_node: AnvilNode) -> Iterator[Registries]:
    yield deploy_registries(Chain.rpc(anvil_node.running_url(), backend="local"))
