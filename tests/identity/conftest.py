"""Identity fixtures: the registries on the embedded chain or on the module's shared anvil."""

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
def on_anvil(shared_anvil: AnvilNode) -> Iterator[Registries]:
    yield deploy_registries(Chain.rpc(shared_anvil.running_url(), backend="local"))
