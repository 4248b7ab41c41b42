"""Fixtures for the dex: the whole local suite (with the seeded pools) on embedded and anvil.

The suite is deployed once per session and backend; tests that move funds measure balance
deltas, so they do not depend on each other's order. Compiled contracts are cached for the
session and with other test runs (a symlink to the shared compile cache), as ``bazaar`` caches them in its home.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dex_fixtures import Deployed, deploy, make_config

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode, free_port
from agentbazaar.chain.compiler import default_cache_dir


@pytest.fixture(scope="session")
def artifacts_cache() -> Path:
    """The shared compile cache (keyed by source hash, so never stale)."""
    cache = default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    return cache


@pytest.fixture(scope="session", params=["embedded", "local"])
def deployed(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    artifacts_cache: Path,
) -> Iterator[Deployed]:
    """The suite on the embedded chain and on a real anvil (stopped at the end)."""
    cfg = make_config(tmp_path_factory.mktemp("dex-home"), artifacts_cache)
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
