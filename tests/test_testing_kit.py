"""The test kit itself (agentbazaar.testing), where the tests that use it do not already show it:
partial suites with their needs, a CLI home, servers that cannot listen, bad dishonest modes."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from agentbazaar.chain import Chain
from agentbazaar.chain.deploy import ContractSpec, SuiteStep
from agentbazaar.deployment import SUITE, select
from agentbazaar.errors import ContractError, ServiceError
from agentbazaar.testing import (
    DISHONEST_MODES,
    LocalWorld,
    ThreadedServer,
    dishonest_embedding_skill,
    make_home,
    serve_in_thread,
)


def _names(entries: tuple[ContractSpec | SuiteStep, ...]) -> list[str]:
    return [e.key if isinstance(e, ContractSpec) else e.name for e in entries]


def test_a_selection_brings_what_it_needs_in_suite_order() -> None:
    assert _names(select({"ReputationRegistry"})) == ["IdentityRegistry", "ReputationRegistry"]
    agents = select({"USDC", "IdentityRegistry", "ReputationRegistry", "ValidationRegistry"})
    assert _names(agents)[-1] == "identity: link registries"  # all its needs are selected
    assert "batch-settlement" not in _names(agents)  # needs nothing: only when named
    assert _names(select(None)) == _names(SUITE)
    with pytest.raises(ContractError, match="not in the suite: Nope"):
        select({"USDC", "Nope"})


def test_local_world_deploys_fresh_contracts_and_funds_accounts() -> None:
    chain = Chain.embedded()
    first = LocalWorld.deploy(chain)
    second = LocalWorld.deploy(chain)  # same chain, its own contracts
    assert first.token != second.token
    assert set(first.suite.manifest.contracts) == {"USDC"}
    alice = first.new_account(eth=10**18, usdc=2_500_000)
    assert first.balance(alice.address) == 2_500_000 and second.balance(alice.address) == 0
    assert chain.native_balance(alice.address) == 10**18
    assert first.usdc_token.eip712_name == "USD Coin"


def test_cli_home_runs_bazaar_against_its_own_home(tmp_path: Path) -> None:
    cli = make_home(tmp_path / "home", passphrase="kit-pass")
    assert (tmp_path / "home" / "bazaar.toml").read_text().startswith("[chain]")
    created = cli.json("wallet", "new", "carol")
    assert cli.json("wallet", "list") == [{"address": created["address"], "name": "carol"}]
    refused = cli.run("wallet", "new", "carol", "--json")
    assert refused.returncode == 1 and refused.stderr.startswith("error:")


def test_a_server_that_cannot_listen_is_a_typed_error() -> None:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    with serve_in_thread(app) as url:
        assert httpx.get(url + "/ping").json() == {"pong": "yes"}
        taken = int(url.rsplit(":", 1)[1])
        with pytest.raises(ServiceError, match=f"port {taken}"):
            ThreadedServer(app, port=taken, timeout=5).start()
    with socket.socket() as s:  # stopped: the port is free again
        s.bind(("127.0.0.1", taken))


def test_dishonest_modes_are_named() -> None:
    assert DISHONEST_MODES == ("perturbed", "stale")
    with pytest.raises(ValueError, match="honest"):
        dishonest_embedding_skill(None, 1_000, "honest")  # type: ignore[arg-type]
