"""`bazaar mcp` with the official MCP client: a real subprocess over stdio, a real loopback
HTTP server, a real anvil; approvals through elicitation in both protocol eras."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from tools_home import BAZAAR, Home

from agentbazaar.chain.anvil import free_port
from agentbazaar.config import load_config
from agentbazaar.payments.client import AcceptedToken
from agentbazaar.payments.mcp_client import call_paid_tool
from agentbazaar.payments.payers import WalletPayer
from agentbazaar.tools import Toolbox, tool_names
from agentbazaar.wallet import Ledger, balances, open_wallet

pytestmark = pytest.mark.anvil


class Person:
    """The human behind the MCP client: answers approval questions, remembers them."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.asked: list[str] = []

    async def __call__(self, ctx: Any, params: Any) -> types.ElicitResult:
        self.asked.append(params.message)
        return types.ElicitResult(action="accept", content={"approve": self.answer})


def _stdio(home: Home) -> StdioServerParameters:
    return StdioServerParameters(command=BAZAAR, args=["mcp", "--wallet", "alice"], env=home.env)


def _call(server: Any, calls: list[tuple[str, dict[str, Any]]], person: Person, mode: str) -> list:
    async def go() -> list[types.CallToolResult]:
        async with Client(server, elicitation_callback=person, mode=mode) as client:
            out = [await client.list_tools()]
            for name, args in calls:
                out.append(await client.call_tool(name, args))
            return out

    return anyio.run(go)


def _settled(home: Home) -> list[tuple[str, str, str]]:
    rows = Ledger(home.path / "ledger.sqlite").records("alice")
    return [(r.kind, str(r.amount), r.status) for r in rows]


def test_stdio_tools_policy_and_approval(home: Home) -> None:
    home.ok("wallet", "policy", "alice", "--approve-above", "2 USDC", "--max-per-payment",
            "10 USDC", "--json")  # fmt: skip
    yes = Person(True)
    listed, bal, bad, small, big, huge = _call(
        _stdio(home),
        [
            ("balance", {}),
            ("send", {"to": "bob", "amount": 3}),  # wrong type, missing nothing else
            ("send", {"to": "bob", "amount": "1 USDC", "idempotency_key": "m1"}),
            ("send", {"to": "bob", "amount": "3 USDC"}),  # above the threshold: asked
            ("send", {"to": "bob", "amount": "50 USDC"}),  # above the maximum: refused
        ],
        yes,
        "auto",
    )
    assert {t.name for t in listed.tools} == set(tool_names())
    send_schema = next(t for t in listed.tools if t.name == "send").input_schema
    assert send_schema["required"] == ["to", "amount"]
    assert not bal.is_error
    assert {b["token"]: b["amount"] for b in bal.structured_content["balances"]}["USDC"] == (
        "1000 USDC"
    )
    assert bad.is_error and "amount" in bad.content[0].text and "send" in bad.content[0].text
    assert not small.is_error and small.structured_content["amount"] == "1 USDC"
    assert small.structured_content["tx_hash"].startswith("0x")
    assert not big.is_error and big.structured_content["amount"] == "3 USDC"
    assert len(yes.asked) == 1 and "3 USDC" in yes.asked[0]
    assert huge.is_error and "PolicyViolation" in huge.content[0].text
    assert _settled(home) == [
        ("transfer", "1000000", "settled"),
        ("transfer", "3000000", "settled"),
    ]


def test_stdio_declined_approval_signs_nothing(home: Home) -> None:
    before = _settled(home)
    no = Person(False)
    _listed, refused = _call(
        _stdio(home), [("send", {"to": "bob", "amount": "4 USDC"})], no, "auto"
    )
    assert refused.is_error and "ApprovalRequired" in refused.content[0].text
    assert len(no.asked) == 1
    assert [r for r in _settled(home) if r[2] != "failed"] == [
        r for r in before if r[2] != "failed"
    ]


@pytest.fixture(scope="module")
def http_url(home: Home) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [BAZAAR, "mcp", "--wallet", "alice", "--http", str(port)],
        env=home.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_http_approval_intent_and_bad_input(home: Home, http_url: str, mode: str) -> None:
    yes = Person(True)
    before = len(_settled(home))
    _listed, plan, sent, unknown, extra = _call(
        http_url,
        [
            ("intent", {"sentence": "send 2.5 USDC to bob"}),
            ("send", {"to": "bob", "amount": "2.5 USDC"}),
            ("no_such_tool", {}),
            ("balance", {"who": "bob", "color": "red"}),
        ],
        yes,
        mode,
    )
    assert not plan.is_error and plan.structured_content["signed"] is False
    assert plan.structured_content["intent"]["action"] == "send"
    assert not sent.is_error and len(yes.asked) == 1 and "2.5 USDC" in yes.asked[0]
    assert len(_settled(home)) == before + 1  # the plan signed nothing; the send once
    assert unknown.is_error and "balance" in unknown.content[0].text
    assert extra.is_error and "color" in extra.content[0].text


def _usdc_units(box: Toolbox, address: str) -> int:
    return next(
        b.units for b in balances(box.chain, address, box.suite.tokens) if b.token.symbol == "USDC"
    )


def test_stdio_paid_tool(home: Home) -> None:
    """`bazaar mcp --price`: a catalog tool sold with x402 over stdio (in-process facilitator);
    alice pays bob through her wallet (Wallet.spend), exactly once per idempotency key."""
    cfg = load_config(home.path, env={})
    alice = open_wallet(cfg, "alice", "tools-pass")
    box = Toolbox(cfg, wallet="alice", wallets={"alice": alice})
    bob = str(alice.resolve("bob"))
    server = StdioServerParameters(
        command=BAZAAR,
        args=["mcp", "--wallet", "alice", "--price", "data_licences=0.001", "--pay-to", bob],
        env=home.env,
    )
    usdc = box.suite.tokens.get("USDC")
    accepted = [AcceptedToken(box.chain.network, str(usdc.address))]
    before = (_usdc_units(box, alice.address), _usdc_units(box, bob))

    async def go() -> list[Any]:
        async with Client(server) as client:
            listed = {t.name: t.description for t in (await client.list_tools()).tools}
            assert "0.001 USDC" in str(listed["data_licences"])
            assert "x402" not in str(listed["contract_templates"])
            unpaid = await client.call_tool("data_licences", {})
            free = await client.call_tool("contract_templates", {})
            paid = [
                await call_paid_tool(
                    client, "data_licences", {}, payer=WalletPayer(alice), accepted=accepted,
                    idempotency_key="lic-1",
                )
                for _ in range(2)
            ]  # fmt: skip
            return [unpaid, free, *paid]

    unpaid, free, first, again = anyio.run(go)
    assert unpaid.is_error and unpaid.structured_content["error"] == "payment_required"
    assert not free.is_error
    assert first.payment is not None and first.payment.success and not first.result.is_error
    assert first.result.structured_content == again.result.structured_content
    assert again.payment is not None and again.payment.replayed
    assert again.payment.transaction == first.payment.transaction
    assert (_usdc_units(box, alice.address), _usdc_units(box, bob)) == (
        before[0] - 1000,
        before[1] + 1000,
    )
    record = alice.ledger.get("alice", "lic-1")
    assert record is not None and record.status == "settled"


def test_tools_that_spend_cannot_be_sold(home: Home) -> None:
    """A priced `send` would let any buyer make the server's wallet pay: refused, one line."""
    proc = home.run("mcp", "--price", "send=0.001", "--pay-to", "0x" + "11" * 20)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error:") and "spends" in proc.stderr


def test_stdio_job_tools_create_list_show_and_refuse(home: Home) -> None:
    """The jobs layer as tools: create (nothing escrowed), list by party, show; bad input is a
    tool error with the reason, and nothing is created."""
    evaluator = "0x" + "22" * 20
    _l, made, listed, shown, bad_token, bad_expiry, unknown = _call(
        _stdio(home),
        [
            ("job_create", {"provider": "bob", "evaluator": evaluator, "budget": "5 USDC",
                            "expires": "2h", "description": "translate the manual"}),
            ("job_list", {"involving": "alice"}),
            ("job_show", {"job_id": 1}),
            ("job_create", {"provider": "bob", "evaluator": evaluator, "budget": "5 WETH",
                            "expires": "2h"}),
            ("job_create", {"provider": "bob", "evaluator": evaluator, "budget": "5 USDC",
                            "expires": "soon"}),
            ("job_show", {"job_id": 99}),
        ],
        Person(True),
        "auto",
    )  # fmt: skip
    assert not made.is_error, made.content
    job_id = made.structured_content["id"]
    assert made.structured_content["budget"]["amount"] == "5 USDC"
    assert made.structured_content["tx_hash"].startswith("0x")
    assert [j["id"] for j in listed.structured_content["jobs"]] == [job_id]
    job = shown.structured_content["job"]
    assert (job["id"], job["budget"]["units"], job["evaluator"].lower()) == (
        job_id, "5000000", evaluator
    )  # fmt: skip
    assert shown.structured_content["description"] == "translate the manual"
    assert bad_token.is_error and "WETH" in bad_token.content[0].text
    assert bad_expiry.is_error and "not a duration" in bad_expiry.content[0].text
    assert unknown.is_error
    again = _call(_stdio(home), [("job_list", {})], Person(True), "auto")[1]
    assert [j["id"] for j in again.structured_content["jobs"]] == [job_id]  # nothing else made
