"""Agents declared in TOML and started as `bazaar serve` starts them, on a real anvil node:
keystore wallets, the deployment manifest, the validator's background loop, restart = same id."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from agentbazaar.agents.assistant import AssistantAgent
from agentbazaar.agents.provision import deploy_agent_network, fund, usdc_balance
from agentbazaar.agents.runtime import Network
from agentbazaar.agents.spec import load_spec, start_agent
from agentbazaar.chain import Chain
from agentbazaar.chain.anvil import AnvilNode
from agentbazaar.cli import app
from agentbazaar.config import BazaarConfig
from agentbazaar.identity.contracts import Registries
from agentbazaar.suite import Suite
from agentbazaar.wallet import KeyStore

pytestmark = [pytest.mark.anvil, pytest.mark.inference]


def _spec(tmp: Path, name: str, body: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(body)
    return path


def test_served_agents_trade_on_anvil_and_keep_their_identity(
    anvil_node: AnvilNode,
    anvil_config: BazaarConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BAZAAR_PASSPHRASE", "test-passphrase")
    cfg = anvil_config
    chain = Chain.rpc(anvil_node.running_url(), backend="local")
    _net, minter = deploy_agent_network(chain, cfg)
    suite = Suite(chain, cfg)  # what `bazaar serve` reads: the deployment manifest
    net = Network(chain, Registries.from_suite(suite), suite.tokens.get("USDC"))
    keys = KeyStore(cfg.keystore_dir, scrypt_cost=2**10)
    addr = {n: keys.create(n, "test-passphrase") for n in ("val", "emb", "ast")}
    for name, usdc in (("val", 0), ("emb", 0), ("ast", 50_000)):
        fund(net, minter, addr[name], usdc)
    validator_spec = _spec(tmp_path, "v", '[agent]\nname="v"\nkind="validator"\nwallet="val"\n')
    provider_spec = _spec(
        tmp_path,
        "p",
        '[agent]\nname="p"\nkind="embedding-provider"\nwallet="emb"\n'
        f'[embedding]\nprice_per_1k_tokens="0.003"\nvalidator="{addr["val"]}"\n',
    )
    assistant_spec = _spec(
        tmp_path,
        "a",
        f'[agent]\nname="a"\nkind="assistant"\nwallet="ast"\n[assistant]\nvalidators=["{addr["val"]}"]\n',
    )
    running = []
    try:
        running.append(start_agent(load_spec(validator_spec), cfg, net))
        provider = start_agent(load_spec(provider_spec), cfg, net)
        running.append(provider)
        assistant = start_agent(load_spec(assistant_spec), cfg, net)
        running.append(assistant)
        assert isinstance(assistant.agent, AssistantAgent) and assistant.agent.assistant is not None
        report = assistant.agent.assistant.ask(
            "embed these, spend at most 0.01 USDC", ["one sentence", "and another one"]
        )
        (hired,) = report.hires
        assert hired.provider.agent_id == provider.agent.agent_id
        assert usdc_balance(net, addr["emb"]) == hired.price > 0
        out = CliRunner().invoke(app, ["--home", str(cfg.home), "receipts", "a", "--json"])
        assert out.exit_code == 0, out.output
        (row,) = json.loads(out.stdout)
        assert row["id"] == hired.receipt.id and row["role"] == "received"
        assert row["txHash"] == hired.tx_hash
        # the validator's background loop answers the provider's request on chain
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = net.registries.validation.status(hired.receipt.id)
            if status.last_update and status.tag == "embedding":
                break
            time.sleep(0.2)
        assert status.tag == "embedding" and status.response == 100
        # restart: the same identity, the URI updated to the new endpoint
        first_id = provider.agent.agent_id
        provider.stop()
        running.remove(provider)
        again = start_agent(load_spec(provider_spec), cfg, net)
        running.append(again)
        assert again.agent.agent_id == first_id
        card = httpx.get(f"{again.agent.url}/.well-known/agent-card.json").json()
        assert card["wallet"] == addr["emb"]
    finally:
        for r in running:
            r.stop()
