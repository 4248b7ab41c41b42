"""MCP servers and clients of the paid-tool tests: ours (``payments.mcp``), the SDK's
(``x402.mcp``), on the official ``mcp`` package; balances are read on chain."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import mcp_types as types
from mcp import Client
from mcp.server.lowlevel import Server
from x402 import x402Client, x402ResourceServer
from x402.mcp.server_async import PaymentWrapperConfig, create_payment_wrapper
from x402.mcp.types import MCPToolResult
from x402.mechanisms.evm.exact import register_exact_evm_client, register_exact_evm_server
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.schemas import PaymentRequirements, ResourceInfo
from x402_env import PayEnv

from agentbazaar.payments.mcp import PaidTools

FORECAST = 1000  # 0.001 USDC
PRICES: dict[str, Any] = {
    "forecast": "0.001",
    "translate": lambda args: f"0.00000{min(9, len(str(args.get('text', 'x'))))}",
    "boom": "0.001",
}


class ToolServer:
    """A small MCP server (lowlevel ``Server``): ``forecast`` and ``translate`` (priced per
    word count), ``boom`` (priced, always fails), ``echo`` (free); counts the runs."""

    def __init__(self) -> None:
        self.runs: dict[str, int] = {}

    async def list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        schema = {"type": "object", "properties": {}, "additionalProperties": True}
        return types.ListToolsResult(
            tools=[
                types.Tool(name=n, description=n, input_schema=schema)
                for n in ("forecast", "translate", "boom", "echo")
            ]
        )

    async def call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> Any:
        self.runs[params.name] = self.runs.get(params.name, 0) + 1
        args = dict(params.arguments or {})
        if params.name == "boom":
            return types.CallToolResult(
                content=[types.TextContent(type="text", text="boom")], is_error=True
            )
        doc = {"tool": params.name, "args": args, "run": self.runs[params.name]}
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(doc))], structured_content=doc
        )

    def server(self, paid: PaidTools | None) -> Server[Any]:
        call = self.call_tool if paid is None else paid.wrap(self.call_tool)
        return Server("tools", on_list_tools=self.list_tools, on_call_tool=call)


def sdk_payment_client(env: PayEnv) -> x402Client:
    """The SDK's own buyer: its exact EVM client signing with the payer's key, our token
    allowed up to 0.01 USDC a payment."""
    client = register_exact_evm_client(x402Client(), EthAccountSigner(env.payer))
    limit = {"network": env.chain.network, "asset": str(env.token.address)}
    client.set_spend_controls({"allowed_assets": [{**limit, "max_amount_per_payment": "10000"}]})
    return client


class SdkMcpClient:
    """What the SDK's ``x402MCPClient`` wraps: an MCP client with ``call_tool(params, **kw)``
    whose result has the wire's fields (``isError``, ``_meta``, ``structuredContent``). mcp 2's
    ``Client`` names them in snake case, so its result is handed over as the wire JSON."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def call_tool(self, params: dict[str, Any], **kwargs: Any) -> SimpleNamespace:
        result = await self.client.call_tool(
            params["name"], params.get("arguments"), meta=params.get("_meta")
        )
        return SimpleNamespace(**result.model_dump(by_alias=True, mode="json"))


def sdk_paid_server(env: PayEnv, facilitator: Any) -> Server[Any]:
    """An MCP server priced with the SDK's own wrapper (``x402.mcp.create_payment_wrapper``)
    over ``facilitator`` (ours), its static ``accepts`` as the SDK documents them; one tool,
    ``weather``, 0.002 USDC."""
    resource_server = x402ResourceServer(facilitator)
    register_exact_evm_server(resource_server, env.chain.network)
    resource_server.initialize()  # the facilitator's /supported
    accepts = [
        PaymentRequirements(
            scheme="exact",
            network=env.chain.network,
            asset=str(env.token.address),
            amount="2000",
            pay_to=env.seller,
            max_timeout_seconds=300,
            extra={"name": "USD Coin", "version": "2"},
        )
    ]
    config = PaymentWrapperConfig(
        accepts=accepts, resource=ResourceInfo(url="mcp://tool/weather", description="weather")
    )

    async def weather(args: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"content": [{"type": "text", "text": f"sunny in {args.get('city')}"}]}

    paid = create_payment_wrapper(resource_server, config)(weather)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        extra = {"_meta": dict(params.meta or {}), "toolName": params.name}
        result = await paid(dict(params.arguments or {}), extra)
        assert isinstance(result, MCPToolResult)
        return types.CallToolResult.model_validate(
            {
                "content": result.content,
                "isError": result.is_error,
                "structuredContent": result.structured_content,
                "_meta": result.meta or None,
            }
        )

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        schema = {"type": "object", "properties": {"city": {"type": "string"}}}
        return types.ListToolsResult(tools=[types.Tool(name="weather", input_schema=schema)])

    return Server("sdk-weather", on_list_tools=list_tools, on_call_tool=call_tool)
