"""A small agent network on the embedded chain: real model, real HTTP services on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from agents_world import World

from agentbazaar.agents.provision import deploy_agent_network
from agentbazaar.agents.validator import Validator
from agentbazaar.chain import Chain
from agentbazaar.config import load_config
from agentbazaar.models.embedding import shared_model


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("agents")
    chain = Chain.embedded()
    net, minter = deploy_agent_network(chain, load_config(home / "home", env={}))
    model = shared_model()
    model.load()
    w = World(net, minter, home, model)
    try:
        yield w
    finally:
        for agent in w.agents:
            agent.stop()


@pytest.fixture(scope="module")
def validator(world: World) -> Iterator[Validator]:
    agent = world.agent("validator")
    v = Validator(agent, world.model)
    try:
        yield v
    finally:
        v.stop()
