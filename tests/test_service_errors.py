"""Every HTTP service answers through the one error handler (``agentbazaar.web``): bad input is
a 4xx JSON body, a chain that goes down is a 503 JSON body, never a 500.

One real anvil, the agent network on it (USDC and the ERC-8004 registries), and the real apps:
an agent (its server on loopback), the discovery server, the dashboard, the facilitator. Then
anvil is stopped (a real outage) and each service is asked again."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from x402.mechanisms.evm import constants as evm

from agentbazaar.agents.provision import deploy_agent_network, fund, new_wallet
from agentbazaar.agents.runtime import Agent
from agentbazaar.chain import Chain
from agentbazaar.config import load_config
from agentbazaar.dashboard import DashboardData
from agentbazaar.dashboard import create_app as dashboard_app
from agentbazaar.identity.discovery import DiscoveryIndex, Follower
from agentbazaar.identity.server import create_app as discovery_app
from agentbazaar.payments.facilitator import create_app as facilitator_app
from agentbazaar.payments.facilitator import exact_facilitator
from agentbazaar.suite import Suite, manifest_for
from agentbazaar.testing import UppercaseSkill, local_anvil, sign_eip3009

pytestmark = pytest.mark.anvil


class BlockQuotedSkill(UppercaseSkill):
    """A skill whose quote reads the chain (as a price that follows gas would): the agent's
    quote route meets the outage."""

    id = "blocks"

    def __init__(self, price: int, chain: Chain) -> None:
        super().__init__(price)
        self.chain = chain

    def quote(self, payload: Any) -> tuple[int, int, str]:
        self.chain.block_number()
        return super().quote(payload)


def verify_body(chain: Chain, token: str, payer: LocalAccount, pay_to: str) -> dict[str, Any]:
    """A /verify request: a fresh EIP-3009 authorization of 1,000 base units to ``pay_to``."""
    nonce, valid_before = os.urandom(32), int(time.time()) + 300
    signature = sign_eip3009(payer, chain_id=chain.chain_id, token=token, to=pay_to, value=1_000,
                             nonce=nonce, valid_before=valid_before)  # fmt: skip
    accepted = {"scheme": "exact", "network": chain.network, "asset": token, "amount": "1000",
                "payTo": pay_to, "maxTimeoutSeconds": 300,
                "extra": {"name": "USD Coin", "version": "2"}}  # fmt: skip
    authorization = {"from": payer.address, "to": pay_to, "value": "1000", "validAfter": "0",
                     "validBefore": str(valid_before), "nonce": "0x" + nonce.hex()}  # fmt: skip
    payload = {"signature": "0x" + signature.hex(), "authorization": authorization}
    return {
        "x402Version": 2,
        "paymentPayload": {"x402Version": 2, "accepted": accepted, "payload": payload},
        "paymentRequirements": accepted,
    }


def assert_error(r: httpx.Response, status: int, error: str | None = None) -> dict[str, Any]:
    """A JSON error body with ``error`` and ``message`` and the status asked for."""
    assert r.status_code == status, (r.request.url, r.text)
    body: dict[str, Any] = r.json()
    assert body["message"] and isinstance(body["error"], str), body
    if error is not None:
        assert body["error"] == error, body
    return body


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The node and each service's client (agent over loopback, the others in process)."""
    with local_anvil(tmp_path) as node, ExitStack() as stack:
        chain = Chain.rpc(node.running_url(), backend="local")
        cfg = load_config(tmp_path / "home", env={})
        manifest = manifest_for(chain, cfg)
        net, minter = deploy_agent_network(chain, cfg, manifest)
        wallet = new_wallet("upper", tmp_path / "wallets", net.token)
        fund(net, minter, wallet.address, 0)
        agent = Agent("upper", wallet, net, skills=[BlockQuotedSkill(1_000, chain)],
                      data_dir=tmp_path / "upper")  # fmt: skip
        agent.start()
        stack.callback(agent.stop)
        index = DiscoveryIndex(
            tmp_path / "discovery.sqlite",
            chain_id=chain.chain_id,
            identity_registry=net.registries.identity.address,
            reputation_registry=net.registries.reputation.address,
        )
        follower = Follower(index, chain)
        data = DashboardData(cfg, chain, Suite(chain, cfg, manifest))
        facilitator = exact_facilitator(chain, Account.create(), assets=[str(net.token.address)])
        clients = {
            "agent": stack.enter_context(httpx.Client(base_url=agent.url, timeout=60)),
            "discovery": stack.enter_context(
                TestClient(discovery_app(index, follower=follower, sync_interval=0))
            ),
            "dashboard": stack.enter_context(TestClient(dashboard_app(data))),
            "facilitator": stack.enter_context(
                TestClient(facilitator_app(facilitator, recover_on_start=False))
            ),
        }
        payer: LocalAccount = Account.create()
        fund(net, minter, payer.address, 10_000)

        def verify() -> httpx.Response:
            body = verify_body(chain, str(net.token.address), payer, wallet.address)
            response: httpx.Response = clients["facilitator"].post("/verify", json=body)
            return response

        yield node, {**clients, "verify": verify}


def test_services_answer_bad_input_with_4xx_json_and_a_chain_outage_with_503(
    services: tuple[Any, dict[str, Any]],
) -> None:
    node, c = services
    text = {"text": "hello"}
    # the chain is up: answers, and bad input is the caller's (4xx JSON)
    assert c["agent"].post("/skills/blocks/quote", json=text).status_code == 200
    assert_error(c["agent"].post("/skills/nope/quote", json=text), 400, "InputError")
    assert_error(c["agent"].post("/skills/blocks/quote", json={"text": 3}), 400, "InputError")
    assert c["discovery"].get("/agents").status_code == 200
    assert_error(c["discovery"].get("/agents", params={"max_price": "0.5"}), 400, "InputError")
    assert_error(c["discovery"].get("/agents/999"), 404, "NotFound")
    assert c["dashboard"].get("/api/overview").status_code == 200
    assert_error(c["dashboard"].get("/api/tx/0x12"), 404, "NotFound")
    page = c["dashboard"].get("/agents/x")  # a page: the HTML shell, with the error's status
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert_error(c["facilitator"].post("/verify", content=b"{not json"), 400)
    assert c["verify"]().json()["isValid"] is True

    node.stop()  # the outage

    outage = [
        c["agent"].post("/skills/blocks/quote", json=text),
        c["discovery"].get("/agents"),
        c["dashboard"].get("/api/overview"),
    ]
    for r in outage:
        body = assert_error(r, 503, "ChainUnavailable")
        assert "cannot reach the chain" in body["message"]
    # the facilitator answers in the x402 protocol: a refusal with the SDK's reason, not an error
    refused = c["verify"]()
    assert refused.status_code == 200, refused.text
    assert refused.json()["isValid"] is False
    assert refused.json()["invalidReason"] == evm.ERR_TRANSACTION_SIMULATION_FAILED
    # what needs no chain still answers, bad input is still the caller's
    assert c["agent"].get("/healthz").json()["ok"] is True
    assert_error(c["agent"].post("/skills/nope/quote", json=text), 400, "InputError")
    assert_error(c["facilitator"].post("/verify", content=b"{not json"), 400)
