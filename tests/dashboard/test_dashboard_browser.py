"""The dashboard in a real browser (Debian's chromium driven by Playwright) after a demo-like
run on the embedded chain: providers, a validator and a buyer whose payments, receipts and
verdicts land in one data directory; then a live update when another payment lands."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from agentbazaar.agents.hiring import Buyer, Hire
from agentbazaar.agents.provision import deploy_agent_network, fund
from agentbazaar.agents.runtime import Agent, Network
from agentbazaar.agents.skills import EmbeddingSkill
from agentbazaar.agents.validator import Validator
from agentbazaar.chain import Chain
from agentbazaar.config import BazaarConfig, load_config
from agentbazaar.dashboard import DashboardData, create_app
from agentbazaar.models.embedding import shared_model
from agentbazaar.suite import Suite, manifest_for
from agentbazaar.testing import serve_in_thread
from agentbazaar.units import format_units
from agentbazaar.wallet import Ledger, PolicyStore, SpendingPolicy, TokenLimits, Wallet

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"]  # fmt: skip
pytestmark = [
    pytest.mark.inference,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make setup)"),
]


@dataclass
class Market:
    cfg: BazaarConfig
    net: Network
    buyer: Buyer
    validator: Validator
    agents: list[Agent]
    hires: list[Hire]
    suite: Suite

    def hire(self, n: int) -> Hire:
        texts = [f"sentence {n}.{i} about the harbour" for i in range(3)]
        hired = self.buyer.hire("embed", {"texts": texts}, 10_000)
        self.hires.append(hired)
        return hired


def _wallet(cfg: BazaarConfig, net: Network, name: str, **limits: int) -> Wallet:
    assert net.token.address is not None
    lim = TokenLimits("USDC", 6, **limits)
    policy = SpendingPolicy(tokens={net.token.address.lower(): lim})
    PolicyStore(cfg.policy_dir).save(name, policy)  # the dashboard reads budgets from here
    return Wallet(name, Account.create(), policy, Ledger(cfg.ledger_path))


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    cfg = load_config(tmp_path_factory.mktemp("dash") / "home", env={})
    chain = Chain.embedded()
    manifest = manifest_for(chain, cfg)
    net, minter = deploy_agent_network(chain, cfg, manifest)
    model = shared_model()
    model.load()
    agents: list[Agent] = []

    def start(name: str, usdc: int = 0, **kw: Any) -> Agent:
        agent = Agent(name, _wallet(cfg, net, name, daily=1_000_000), net,
                      data_dir=cfg.home / "agents" / name, **kw)  # fmt: skip
        fund(net, minter, agent.address, usdc)
        agent.start()
        agents.append(agent)
        return agent

    validator_agent = start("validator")
    start("minilm-honest", skills=[EmbeddingSkill(model, 2_000)],
          validator=validator_agent.address)  # fmt: skip
    buyer_agent = start("assistant", usdc=1_000_000)
    validator = Validator(validator_agent, model)
    buyer = Buyer(buyer_agent, validators=[validator_agent.address])
    buyer.after_purchase = lambda _hired: validator.process_pending() and None
    m = Market(cfg, net, buyer, validator, agents, [], Suite(chain, cfg, manifest))
    try:
        for i in range(2):
            m.hire(i)
        yield m
    finally:
        buyer.close()
        validator.stop()
        for agent in agents:
            agent.stop()


@pytest.fixture(scope="module")
def site(market: Market) -> Iterator[str]:
    data = DashboardData(market.cfg, market.net.chain, market.suite)
    with serve_in_thread(create_app(data)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


def test_click_through_after_a_demo_like_run(market: Market, site: str, browser: Any) -> None:
    page = browser.new_page()
    page.goto(site + "/")
    page.wait_for_selector("#count-payments")
    assert page.inner_text("#count-payments") == "2"
    assert page.locator("#chart-payments rect").count() >= 1
    spent = format_units(sum(h.price for h in market.hires), 6)
    budget = page.text_content("#chart-budget") or ""
    assert f"{spent} USDC of 1 USDC" in budget  # spend against the buyer's daily budget
    page.click("text=Agents")
    page.wait_for_selector("text=minilm-honest")
    page.click("text=minilm-honest")
    page.wait_for_selector("#rep-weighted")
    body = page.inner_text("main")
    assert "embed" in body and "0.002 USDC" in body  # the skill and its price
    assert "pass (100)" in body  # the validator's verdict on its receipts
    assert "no proven feedback" not in page.inner_text("#rep-raw")
    tx = market.hires[0].tx_hash
    assert tx is not None
    page.click(f"a[href='/tx/{tx}'] >> nth=0")
    page.wait_for_selector("text=Receipts and validation")
    body = page.inner_text("main")
    assert tx in body and "success" in body and "pass (100)" in body
    assert "…" in page.inner_text("a.hash >> nth=0")  # hashes are shortened visibly
    page.close()


def test_unknown_agent_and_transaction_are_404(site: str, browser: Any) -> None:
    page = browser.new_page()
    response = page.goto(site + "/agents/4242")
    assert response is not None and response.status == 404
    page.wait_for_selector("#notfound")
    assert "no agent 4242" in page.inner_text("#notfound")
    missing = "0x" + "ab" * 32
    assert page.goto(site + f"/tx/{missing}").status == 404
    page.close()
    for path in (f"/api/tx/{missing}", "/api/tx/0x12", "/api/agents/x", "/api/nothing"):
        r = httpx.get(site + path)
        assert r.status_code == 404 and r.json()["error"] == "NotFound", path


def test_a_payment_shows_up_live(market: Market, site: str, browser: Any) -> None:
    page = browser.new_page()
    page.goto(site + "/")
    page.wait_for_selector("#count-payments")
    before = int(page.inner_text("#count-payments"))
    page.wait_for_selector("#live.on")
    worker = threading.Thread(target=market.hire, args=(99,))
    worker.start()
    worker.join(timeout=120)
    page.wait_for_function(
        f"document.getElementById('count-payments') && "
        f"Number(document.getElementById('count-payments').textContent) > {before}",
        timeout=30_000,
    )
    assert int(page.inner_text("#count-payments")) == before + 1
    page.close()
