"""A data directory made by `bazaar init` on a real anvil, shared by the module's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from tools_home import Home

from agentbazaar.chain.anvil import AnvilNode, free_port
from agentbazaar.config import load_config


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    path = tmp_path_factory.mktemp("tools") / "home"
    path.mkdir()
    port = free_port()
    (path / "bazaar.toml").write_text(f'[chain]\nbackend = "local"\nanvil_port = {port}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")}
    env.update(BAZAAR_HOME=str(path), BAZAAR_PASSPHRASE="tools-pass", BAZAAR_SCRYPT_N="1024")
    env["COLUMNS"] = "200"
    node = AnvilNode(load_config(path, env={}))
    try:
        h = Home(path, env)
        h.ok("init", "--json")
        yield h
    finally:
        node.stop()
