"""Fixtures for the dex: the whole local suite (with the seeded pools) on embedded and anvil.

The suite is deployed once per session and backend; tests that move funds measure balance
deltas, so they do not depend on each other's order. The ``local`` backend is marked ``anvil``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dex_fixtures import Deployed, deploy

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode, free_port
from agentbazaar.config import load_config


@pytest.fixture(
    scope="session", params=["embedded", pytest.param("local", marks=pytest.mark.anvil)]
)
def deployed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    """The suite on the embedded chain and on a real anvil (stopped at the end)."""
    cfg = load_config(tmp_path_factory.mktemp("dex-home"), env={})
    if request.param == "embedded":
        yield deploy(Chain.embedded(), cfg)
        return
    cfg = cfg.with_chain(backend="local", anvil_port=free_port())
    node = AnvilNode(cfg)
    node.start()
    try:
        yield deploy(Chain.rpc(node.running_url(), backend="local"), cfg)
    finally:
        node.stop()
