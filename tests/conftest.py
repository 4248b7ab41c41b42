"""Shared fixtures: chains (embedded py-evm and a real anvil node), temp data directories.

Anvil nodes come from the test kit (``agentbazaar.testing.local_anvil``), in two scopes:
``anvil_node`` is a fresh node for a test that stops, restarts or otherwise needs a chain of its
own; ``shared_anvil`` is one node per test module for tests that only deploy fresh contracts
(``LocalWorld``) and use fresh accounts. Every test that uses either carries
``@pytest.mark.anvil`` (the ``local`` case of ``chain`` is marked by its parameter).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode
from agentbazaar.config import BazaarConfig
from agentbazaar.testing import anvil_config as kit_anvil_config
from agentbazaar.testing import local_anvil


@pytest.fixture
def bazaar_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "bazaar-home"
    monkeypatch.setenv("BAZAAR_HOME", str(home))
    monkeypatch.setenv("BAZAAR_PASSPHRASE", "test-passphrase")
    return home


@pytest.fixture
def anvil_config(tmp_path: Path) -> BazaarConfig:
    return kit_anvil_config(tmp_path / "anvil-home")


@pytest.fixture
def anvil_node(anvil_config: BazaarConfig) -> Iterator[AnvilNode]:
    """A fresh anvil of this test's own on a free loopback port, stopped by its PID even if
    the test fails."""
    node = AnvilNode(anvil_config)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def shared_anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilNode]:
    """One anvil for the tests of a module that do not need a chain of their own."""
    with local_anvil(tmp_path_factory.mktemp("shared-anvil")) as node:
        yield node


@pytest.fixture(params=["embedded", pytest.param("local", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    """The same test on the embedded chain and on anvil (the module's shared node)."""
    if request.param == "embedded":
        yield Chain.embedded()
        return
    node: AnvilNode = request.getfixturevalue("shared_anvil")
    yield Chain.rpc(node.running_url(), backend="local")


@pytest.fixture(scope="session")
def small_model() -> Iterator[object]:
    """The 0.5B language model, loaded once for the whole test session, freed at its end."""
    from agentbazaar.models import QWEN_CODER_0_5B, LanguageModel

    model = LanguageModel(QWEN_CODER_0_5B, threads=1)
    model.load()
    try:
        yield model
    finally:
        model.close()


@pytest.fixture(scope="session")
def coder_model() -> Iterator[object]:
    """The 1.5B language model (the one sold), loaded once per session when a test needs it."""
    from agentbazaar.models import QWEN_CODER_1_5B, LanguageModel

    model = LanguageModel(QWEN_CODER_1_5B, threads=1)
    model.load()
    try:
        yield model
    finally:
        model.close()
