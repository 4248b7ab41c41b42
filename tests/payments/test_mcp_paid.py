"""Paid MCP tools (x402 over MCP, the SDK's ``x402.mcp`` conventions) on a real anvil: the SDK's
MCP client pays our tools, our wallet pays them and the SDK's paid MCP server, over the
in-process transport and streamable HTTP, with our facilitator in-process and over HTTP; every
bad payment is a typed refusal, nothing settled (balances read on chain)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp_env import (
    FORECAST,
    PRICES,
    SdkMcpClient,
    ToolServer,
    sdk_paid_server,
    sdk_payment_client,
)
from x402.mcp import x402MCPClient
from x402.mechanisms.evm import constants as c
from x402.schemas import PaymentRequired
from x402_env import PayEnv, sign_authorization

from agentbazaar.errors import PolicyViolation
from agentbazaar.payments.client import AcceptedToken
from agentbazaar.payments.facilitator import Facilitator
from agentbazaar.payments.mcp import PaidTools, arguments_hash
from agentbazaar.payments.mcp_client import call_paid_tool, payment_required_of
from agentbazaar.payments.payers import WalletPayer, sign_with_sdk
from agentbazaar.payments.reasons import (
    ERR_OTHER_ARGUMENTS,
    ERR_OTHER_TOOL,
    ERR_PAYMENT_REQUIRED,
)
from agentbazaar.testing import serve_in_thread
from agentbazaar.wallet import Ledger, SpendingPolicy, TokenLimits, Wallet
from agentbazaar.wallet.policy import token_key

pytestmark = pytest.mark.anvil
PAYMENT = "x402/payment"
SETTLED = "x402/payment-response"


@pytest.fixture(scope="module")
def tools() -> ToolServer:
    return ToolServer()


@pytest.fixture(scope="module")
def paid(pay_env: PayEnv, facilitator: Facilitator) -> PaidTools:
    return PaidTools(pay_env.terms(), facilitator, PRICES)


def wallet(env: PayEnv, name: str, max_per_payment: int = 5_000) -> Wallet:
    token = token_key(str(env.token.address))
    policy = SpendingPolicy(
        tokens={token: TokenLimits("USDC", 6, max_per_payment=max_per_payment, daily=100_000)},
        allow=frozenset({env.seller.lower()}),
    )
    return Wallet(name, env.payer, policy, Ledger(env.tmp / f"mcp-{name}.db"))


def accepted(env: PayEnv) -> list[AcceptedToken]:
    return [AcceptedToken(env.chain.network, str(env.token.address))]


def run(server: Any, calls: Any) -> Any:
    """``calls(client)`` on an ``mcp.Client`` connected to ``server``."""

    async def go() -> Any:
        async with Client(server) as client:
            return await calls(client)

    return anyio.run(go)


def balances(env: PayEnv) -> tuple[int, int]:
    return env.balance(env.payer.address), env.balance(env.seller)


def assert_unchanged(env: PayEnv, before: tuple[int, int]) -> None:
    assert balances(env) == before


async def required_for(client: Client, name: str, args: dict[str, Any]) -> PaymentRequired:
    first = await client.call_tool(name, args)
    required = payment_required_of(first)
    assert required is not None
    return required


def test_sdk_mcp_client_pays_our_tool(pay_env: PayEnv, tools: ToolServer, paid: PaidTools) -> None:
    before = balances(pay_env)

    async def calls(client: Client) -> Any:
        sdk = x402MCPClient(SdkMcpClient(client), sdk_payment_client(pay_env))
        free = await sdk.call_tool("echo", {"x": 1})
        bought = await sdk.call_tool("forecast", {"city": "Oslo"})
        return free, bought

    free, bought = run(tools.server(paid), calls)
    assert not free.payment_made and not free.is_error
    assert bought.payment_made and not bought.is_error, bought.content
    assert bought.payment_response.success and bought.payment_response.transaction
    assert '"city": "Oslo"' in bought.content[0]["text"]
    assert balances(pay_env) == (before[0] - FORECAST, before[1] + FORECAST)


def test_unpaid_call_gets_the_sdk_payment_required_result(
    pay_env: PayEnv, tools: ToolServer, paid: PaidTools
) -> None:
    runs = tools.runs.get("forecast", 0)
    result = run(tools.server(paid), lambda cl: cl.call_tool("forecast", {"city": "Rome"}))
    assert result.is_error and tools.runs.get("forecast", 0) == runs
    doc = result.structured_content
    assert doc["x402Version"] == 2 and doc["error"] == ERR_PAYMENT_REQUIRED
    assert doc["resource"]["url"] == "mcp://tool/forecast"
    (req,) = doc["accepts"]
    assert req["amount"] == str(FORECAST) and req["payTo"] == pay_env.seller
    assert req["extra"]["mcp"] == {
        "tool": "forecast",
        "arguments": arguments_hash({"city": "Rome"}),
    }


def test_wallet_pays_over_http_with_the_http_facilitator(
    pay_env: PayEnv, tools: ToolServer, facilitator_url: str
) -> None:
    paid = PaidTools(pay_env.terms(), facilitator_url, PRICES)
    app = tools.server(paid).streamable_http_app(host="127.0.0.1")
    w = wallet(pay_env, "http")
    before = balances(pay_env)
    with serve_in_thread(app) as url:

        async def calls(client: Client) -> Any:
            payer = WalletPayer(w)
            one = await call_paid_tool(
                client, "translate", {"text": "hello"}, payer=payer,
                accepted=accepted(pay_env), idempotency_key="tr-1",
            )  # fmt: skip
            again = await call_paid_tool(
                client, "translate", {"text": "hello"}, payer=payer,
                accepted=accepted(pay_env), idempotency_key="tr-1",
            )  # fmt: skip
            return one, again

        one, again = run(f"{url}/mcp", calls)
    assert one.payment is not None and one.payment.success and one.payment.intent.amount == 5
    assert not one.result.is_error and one.result.meta[SETTLED]["success"] is True
    # the same idempotency key: the same authorization, answered with the first result
    assert again.payment is not None and again.payment.replayed
    assert again.payment.transaction == one.payment.transaction
    assert again.result.structured_content == one.result.structured_content
    assert balances(pay_env) == (before[0] - 5, before[1] + 5)
    record = w.ledger.get("http", "tr-1")
    assert record is not None and record.status == "settled"
    assert record.tx_hash == one.payment.transaction and record.amount == 5


def test_our_wallet_pays_the_sdk_paid_server(pay_env: PayEnv, facilitator: Facilitator) -> None:
    w = wallet(pay_env, "sdk-server")
    before = balances(pay_env)
    result = run(
        sdk_paid_server(pay_env, facilitator),
        lambda cl: call_paid_tool(
            cl, "weather", {"city": "Lima"}, payer=WalletPayer(w), accepted=accepted(pay_env),
            idempotency_key="w-1",
        ),
    )  # fmt: skip
    assert not result.result.is_error and result.result.content[0].text == "sunny in Lima"
    assert result.payment is not None and result.payment.success
    assert balances(pay_env) == (before[0] - 2000, before[1] + 2000)
    assert w.ledger.get("sdk-server", "w-1").status == "settled"  # type: ignore[union-attr]


def test_policy_refuses_before_anything_is_signed(
    pay_env: PayEnv, tools: ToolServer, paid: PaidTools
) -> None:
    w = wallet(pay_env, "tight", max_per_payment=999)
    before = balances(pay_env)

    async def calls(client: Client) -> Exception | None:
        try:
            await call_paid_tool(
                client, "forecast", {}, payer=WalletPayer(w), accepted=accepted(pay_env),
                idempotency_key="t-1",
            )  # fmt: skip
        except PolicyViolation as exc:
            return exc
        return None

    assert isinstance(run(tools.server(paid), calls), PolicyViolation)
    record = w.ledger.get("tight", "t-1")
    assert record is None or record.payload is None
    assert_unchanged(pay_env, before)


def signed_for(env: PayEnv, required: PaymentRequired) -> dict[str, Any]:
    """The payer's SDK-signed payment for the (only) requirement of ``required``."""
    payload = sign_with_sdk(env.payer, required, required.accepts[0])
    return payload.model_dump(by_alias=True, exclude_none=True, mode="json")


def refusal(result: types.CallToolResult) -> str:
    assert result.is_error and isinstance(result.structured_content, dict)
    assert result.structured_content.get("message"), result.structured_content
    return str(result.structured_content["error"])


def authorization_used(env: PayEnv, payment: dict[str, Any]) -> bool:
    auth = payment["payload"]["authorization"]
    state = env.usdc.functions.authorizationState(auth["from"], bytes.fromhex(auth["nonce"][2:]))
    return bool(state.call())


def test_payment_for_another_tool_or_arguments_is_refused(
    pay_env: PayEnv, tools: ToolServer, paid: PaidTools
) -> None:
    before = balances(pay_env)

    async def calls(client: Client) -> Any:
        required = await required_for(client, "boom", {"city": "Oslo"})  # same price as forecast
        payment = signed_for(pay_env, required)
        other_tool = await client.call_tool("forecast", {"city": "Oslo"}, meta={PAYMENT: payment})
        required = await required_for(client, "forecast", {"city": "Oslo"})
        payment = signed_for(pay_env, required)
        other_args = await client.call_tool("forecast", {"city": "Paris"}, meta={PAYMENT: payment})
        return payment, other_tool, other_args

    runs = dict(tools.runs)
    payment, other_tool, other_args = run(tools.server(paid), calls)
    assert refusal(other_tool) == ERR_OTHER_TOOL
    assert refusal(other_args) == ERR_OTHER_ARGUMENTS
    assert tools.runs == runs and not authorization_used(pay_env, payment)
    assert_unchanged(pay_env, before)


def test_unknown_scheme_and_expired_authorization_are_refused(
    pay_env: PayEnv, tools: ToolServer, paid: PaidTools
) -> None:
    before = balances(pay_env)

    async def calls(client: Client) -> Any:
        required = await required_for(client, "forecast", {})
        payment = signed_for(pay_env, required)
        payment["accepted"] = {**payment["accepted"], "scheme": "bogus"}
        unknown = await client.call_tool("forecast", {}, meta={PAYMENT: payment})
        accepted_req = required.accepts[0].model_dump(by_alias=True, mode="json")
        expired = {
            "x402Version": 2,
            "accepted": accepted_req,
            "payload": sign_authorization(
                pay_env, pay_env.payer, value=FORECAST, valid_before=int(time.time()) - 5
            ),
        }
        old = await client.call_tool("forecast", {}, meta={PAYMENT: expired})
        garbage = await client.call_tool("forecast", {}, meta={PAYMENT: "not a payment"})
        return unknown, old, garbage

    runs = dict(tools.runs)
    unknown, old, garbage = run(tools.server(paid), calls)
    assert refusal(unknown) == c.ERR_UNSUPPORTED_SCHEME
    assert refusal(old) == c.ERR_VALID_BEFORE_EXPIRED
    assert refusal(garbage) == "invalid_payment"
    assert tools.runs == runs
    assert_unchanged(pay_env, before)


def test_replayed_authorization_is_served_once(
    pay_env: PayEnv, tools: ToolServer, paid: PaidTools
) -> None:
    """The same payment (no retry id) sent four times at once, then again: one run, one
    settlement; the others are refused with the facilitator's reason."""
    before = balances(pay_env)

    async def calls(client: Client) -> Any:
        required = await required_for(client, "forecast", {"city": "Kyiv"})
        payment = signed_for(pay_env, required)
        meta = {PAYMENT: payment}
        first = await asyncio.gather(
            *(client.call_tool("forecast", {"city": "Kyiv"}, meta=meta) for _ in range(4))
        )
        later = await client.call_tool("forecast", {"city": "Kyiv"}, meta=meta)
        return [*first, later]

    runs = tools.runs.get("forecast", 0)
    results = run(tools.server(paid), calls)
    served = [r for r in results if not r.is_error]
    assert len(served) == 1 and served[0].meta[SETTLED]["success"] is True
    reasons = {refusal(r) for r in results if r.is_error}
    assert reasons <= {"authorization_in_use", c.ERR_NONCE_ALREADY_USED}
    assert refusal(results[-1]) == c.ERR_NONCE_ALREADY_USED
    assert tools.runs["forecast"] == runs + 1
    assert balances(pay_env) == (before[0] - FORECAST, before[1] + FORECAST)


def test_failed_tool_settles_nothing(pay_env: PayEnv, tools: ToolServer, paid: PaidTools) -> None:
    w = wallet(pay_env, "boom")
    before = balances(pay_env)
    result = run(
        tools.server(paid),
        lambda cl: call_paid_tool(
            cl, "boom", {}, payer=WalletPayer(w), accepted=accepted(pay_env),
            idempotency_key="b-1",
        ),
    )  # fmt: skip
    assert result.result.is_error and result.payment is not None
    assert not result.payment.success and result.payment.transaction is None
    assert w.ledger.get("boom", "b-1").status != "settled"  # type: ignore[union-attr]
    assert_unchanged(pay_env, before)
