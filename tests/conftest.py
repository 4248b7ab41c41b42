"""Shared fixtures: chains (embedded py-evm and a real anvil node), temp data directories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode, free_port
from agentbazaar.config import BazaarConfig, load_config


@pytest.fixture
def bazaar_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "bazaar-home"
    monkeypatch.setenv("BAZAAR_HOME", str(home))
    monkeypatch.setenv("BAZAAR_PASSPHRASE", "test-passphrase")
    return home


@pytest.fixture
def anvil_config(tmp_path: Path) -> BazaarConfig:
    return load_config(tmp_path / "anvil-home", env={}).with_chain(
        backend="local", anvil_port=free_port()
    )


@pytest.fixture
def anvil_node(anvil_config: BazaarConfig) -> Iterator[AnvilNode]:
    """A real anvil on a free loopback port, stopped by its PID even if the test fails."""
    node = AnvilNode(anvil_config)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(params=["embedded", "local"])
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    """The same test on the embedded chain and on anvil."""
    if request.param == "embedded":
        yield Chain.embedded()
        return
    node: AnvilNode = request.getfixturevalue("anvil_node")
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
