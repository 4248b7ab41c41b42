"""The catalog as LangChain, OpenAI Agents SDK and PydanticAI tools, each driven by its
framework's own fake or scripted model (no network) against the embedded chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account

from agentbazaar.chain import Chain
from agentbazaar.chain.deploy import deploy_contract
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.config import load_config
from agentbazaar.suite import Suite, manifest_for
from agentbazaar.tools import TOOLS, Toolbox
from agentbazaar.wallet import Ledger, SpendingPolicy, TokenLimits, Wallet
from agentbazaar.wallet.policy import SpendRequest


@dataclass
class World:
    box: Toolbox
    wallet: Wallet
    bob: str
    asked: list[str]

    def approve(self, req: SpendRequest) -> bool:
        self.asked.append(req.human())
        return True


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("frameworks") / "home"
    cfg = load_config(home, env={})
    chain = Chain.embedded()
    dev = dev_account(0)
    chain.fund_native(dev.address, 10**20)
    manifest = manifest_for(chain, cfg)
    meta = {"kind": "token", "symbol": "USDC", "decimals": 6, "eip712_name": "USD Coin",
            "eip712_version": "2"}  # fmt: skip
    usdc, _ = deploy_contract(chain, dev, manifest, "USDC", "Stablecoin",
                              ("USD Coin", "USDC", "USD Coin", "2"), meta=meta)  # fmt: skip
    suite = Suite(chain, cfg, manifest)
    token = suite.tokens.get("USDC")
    limits = TokenLimits("USDC", 6, max_per_payment=5_000_000, approve_above=2_000_000)
    account = Account.create()
    wallet = Wallet("alice", account, SpendingPolicy(tokens={str(token.address).lower(): limits}),
                    Ledger(cfg.ledger_path))  # fmt: skip
    chain.fund_native(account.address, 10**19)
    chain.transact(dev, usdc.functions.mint(account.address, 100_000_000))
    box = Toolbox(cfg, wallet="alice", chain=chain, suite=suite, wallets={"alice": wallet})
    yield World(box, wallet, Account.create().address, [])


def _doc(text: Any) -> dict[str, Any]:
    return json.loads(text if isinstance(text, str) else json.dumps(text))


def _usdc(doc: dict[str, Any]) -> str:
    return {b["token"]: b["amount"] for b in doc["balances"]}["USDC"]


def _calls(world: World) -> list[dict[str, Any]]:
    """What the scripted model asks for, in order: a balance, a small send, a send above the
    approval threshold, one above the policy's maximum, and one with a bad argument."""
    return [
        {"name": "balance", "args": {}},
        {"name": "send", "args": {"to": world.bob, "amount": "1 USDC"}},
        {"name": "send", "args": {"to": world.bob, "amount": "3 USDC"}},
        {"name": "send", "args": {"to": world.bob, "amount": "9 USDC"}},
        {"name": "send", "args": {"to": world.bob}},
    ]


def _check(world: World, outputs: list[dict[str, Any]], approved: bool) -> None:
    balance, small, big, huge, bad = outputs
    assert _usdc(balance).endswith(" USDC")
    assert small["amount"] == "1 USDC" and small["tx_hash"].startswith("0x")
    if approved:
        assert big["amount"] == "3 USDC" and world.asked[-1] == "3 USDC"
    else:
        assert big["error"] == "ApprovalRequired" and "approval threshold" in big["message"]
    assert huge["error"] == "PolicyViolation" and "9 USDC" in huge["message"]
    assert bad["error"] == "ToolArgumentError" and "amount" in bad["message"]


def test_langchain_tools_with_a_fake_chat_model(world: World) -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, ToolMessage

    from agentbazaar.tools.langchain import langchain_tools

    tools = {t.name: t for t in langchain_tools(world.box, approve=world.approve)}
    assert set(tools) == {t.name for t in TOOLS}
    assert tools["send"].args_schema is next(t.args for t in TOOLS if t.name == "send")
    calls = [dict(c, id=f"call-{i}") for i, c in enumerate(_calls(world))]
    model = GenericFakeChatModel(messages=iter([AIMessage(content="", tool_calls=calls)]))
    reply = model.invoke("pay bob")
    outputs = []
    for call in reply.tool_calls:
        message = tools[call["name"]].invoke(call)
        assert isinstance(message, ToolMessage) and message.tool_call_id == call["id"]
        outputs.append(_doc(message.content))
    _check(world, outputs, approved=True)


def test_openai_agents_function_tools_with_a_scripted_model(world: World) -> None:
    from agents import Agent, Runner, set_tracing_disabled
    from agents.items import ModelResponse, ToolCallOutputItem
    from agents.models.interface import Model
    from agents.usage import Usage
    from openai.types.responses import (
        ResponseFunctionToolCall,
        ResponseOutputMessage,
        ResponseOutputText,
    )

    from agentbazaar.tools.openai_agents import function_tools

    set_tracing_disabled(True)
    calls = _calls(world)

    class Scripted(Model):
        """Asks for every tool call at once, then answers in words."""

        def __init__(self) -> None:
            self.turn = 0

        async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
            self.turn += 1
            if self.turn == 1:
                out: list[Any] = [
                    ResponseFunctionToolCall(
                        arguments=json.dumps(c["args"]),
                        call_id=f"c{i}",
                        name=c["name"],
                        type="function_call",
                        id=f"f{i}",
                        status="completed",
                    )
                    for i, c in enumerate(calls)
                ]
            else:
                text = ResponseOutputText(text="done", type="output_text", annotations=[])
                out = [ResponseOutputMessage(id="m", content=[text], role="assistant",
                                             status="completed", type="message")]  # fmt: skip
            return ModelResponse(output=out, usage=Usage(), response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    agent = Agent(name="buyer", model=Scripted(), tools=function_tools(world.box))
    result = Runner.run_sync(agent, "pay bob")
    outputs = [_doc(i.output) for i in result.new_items if isinstance(i, ToolCallOutputItem)]
    assert result.final_output == "done"
    _check(world, outputs, approved=False)


def test_pydantic_ai_toolset_with_a_function_model(world: World) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    from agentbazaar.tools.pydantic_ai import bazaar_toolset

    calls = _calls(world)[:4]  # a bad argument is sent back to the model to fix (ModelRetry)

    def script(messages: list[Any], info: AgentInfo) -> ModelResponse:
        assert {t.name for t in info.function_tools} == {t.name for t in TOOLS}
        if len(messages) == 1:
            return ModelResponse(parts=[ToolCallPart(c["name"], c["args"], tool_call_id=f"t{i}")
                                        for i, c in enumerate(calls)])  # fmt: skip
        return ModelResponse(parts=[TextPart("done")])

    agent = Agent(
        FunctionModel(script), toolsets=[bazaar_toolset(world.box, approve=world.approve)]
    )
    result = agent.run_sync("pay bob")
    returns = [p for m in result.all_messages() for p in getattr(m, "parts", [])
               if isinstance(p, ToolReturnPart)]  # fmt: skip
    outputs = [_doc(r.content) for r in sorted(returns, key=lambda r: r.tool_call_id)]
    bad = {"error": "ToolArgumentError", "message": "amount"}
    _check(world, [*outputs, bad], approved=True)
    assert result.output == "done"


def test_pydantic_ai_bad_arguments_go_back_to_the_model(world: World) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    from agentbazaar.tools.pydantic_ai import bazaar_toolset

    seen: list[str] = []

    def script(messages: list[Any], info: AgentInfo) -> ModelResponse:
        if len(messages) > 1:  # the tool's answer: a retry prompt naming the bad argument
            answer = messages[-1].parts[-1]
            seen.append(f"{type(answer).__name__}: {answer.content}")
            return ModelResponse(parts=[TextPart("gave up")])
        return ModelResponse(parts=[ToolCallPart("send", {"to": "bob", "amount": 3})])

    agent = Agent(FunctionModel(script), toolsets=[bazaar_toolset(world.box)])
    assert agent.run_sync("pay bob").output == "gave up"
    assert len(seen) == 1 and "bad arguments for send: amount" in seen[0], seen
