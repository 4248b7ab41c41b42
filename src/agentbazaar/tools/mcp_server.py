"""``bazaar mcp``: the tools of ``agentbazaar.tools`` as an MCP server (official ``mcp`` SDK).

Each MCP tool is a ``Tool`` of the catalog: its input schema is the catalog's, a call is validated
against it (wrong arguments come back as a tool error naming the fields), run in a worker thread
(the library is synchronous) and answered with the result as JSON text and structured content.

Spends above the wallet's approval threshold ask the person through MCP elicitation:

* handshake-era clients (``initialize``) get an ``elicitation/create`` request on the back-channel
  while the tool waits;
* 2026-07-28 clients get an ``InputRequiredResult`` (SEP-2322): the tool stopped before anything
  was signed; the client asks the person and retries with the answer and the sealed
  ``request_state``, and only a spend equal to the one the person saw is approved.

Refused spends (policy, declined approval) are tool errors with the policy's reason.

With ``paid`` (a ``payments.mcp.PaidTools``: ``bazaar mcp --price TOOL=PRICE --pay-to ADDR``) the
priced tools are sold with x402 over MCP (the SDK's ``x402.mcp`` conventions): a call without
payment gets a payment-required result, a paid one is verified, run and settled exactly once.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from agentbazaar import __version__
from agentbazaar.errors import ApprovalRequired, BazaarError
from agentbazaar.tools._toolbox import Toolbox, find_tool, parse_arguments
from agentbazaar.tools.catalog import TOOLS, Tool
from agentbazaar.wallet.policy import SpendRequest

if TYPE_CHECKING:
    from agentbazaar.payments.mcp import PaidTools

log = logging.getLogger("agentbazaar.mcp")
APPROVAL_KEY = "approve_spend"
APPROVAL_TIMEOUT = 300.0
_APPROVAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"approve": {"type": "boolean", "title": "Approve this payment?"}},
    "required": ["approve"],
}


def spend_summary(req: SpendRequest) -> dict[str, Any]:
    """What the person approves: exactly this spend (compared on the retry)."""
    return {
        "wallet": req.wallet,
        "kind": req.kind,
        "token": req.token,
        "amount": str(req.amount),
        "counterparty": req.counterparty,
    }


def approval_message(req: SpendRequest) -> str:
    where = f" for {req.memo['url']}" if isinstance(req.memo.get("url"), str) else ""
    return (
        f"Wallet {req.wallet!r} wants to pay {req.human()} to {req.counterparty} "
        f"({req.kind}{where}). This is above its approval threshold: approve it?"
    )


class _Seal:
    """HMAC over the request state, so a retry can only approve the spend the person saw."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def seal(self, doc: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(doc, sort_keys=True).encode()).decode()
        mac = hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
        return f"{body}.{mac}"

    def open(self, state: str | None) -> dict[str, Any] | None:
        if not state or "." not in state:
            return None
        body, mac = state.rsplit(".", 1)
        good = hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, good):
            return None
        doc = json.loads(base64.urlsafe_b64decode(body))
        return doc if isinstance(doc, dict) else None


def _digest(name: str, arguments: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([name, arguments], sort_keys=True).encode()).hexdigest()


def _text_result(doc: dict[str, Any], *, error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(doc, default=str))],
        structured_content=doc,
        is_error=error,
    )


def _error_result(exc: BazaarError) -> types.CallToolResult:
    doc = exc.to_dict()
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"error: {type(exc).__name__}: {exc}")],
        structured_content=doc,
        is_error=True,
    )


def _mcp_tool(tool: Tool, price: str | None = None) -> types.Tool:
    return types.Tool(
        name=tool.name,
        description=tool.description if price is None else f"{tool.description} {price}",
        input_schema=tool.input_schema(),
        annotations=types.ToolAnnotations(read_only_hint=not tool.spends),
    )


class BazaarMcp:
    """The MCP face of a ``Toolbox``."""

    def __init__(self, box: Toolbox, paid: PaidTools | None = None) -> None:
        self.box = box
        self.paid = paid
        self._seal = _Seal()
        self.server: Server[Any] = Server(
            "agentbazaar",
            version=__version__,
            instructions="agentbazaar: an agent wallet under a spending policy; pay for HTTP "
            "resources (x402), stream payments over channels, discover and hire agents, act on "
            "plain-English instructions. Amounts are token units with a symbol, e.g. '0.01 USDC'.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool if paid is None else paid.wrap(self._call_tool),
        )

    async def _list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        paid = self.paid
        return types.ListToolsResult(
            tools=[_mcp_tool(t, paid.describe(t.name) if paid else None) for t in TOOLS]
        )

    async def _call_tool(
        self, ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        arguments = dict(params.arguments or {})
        try:
            tool = find_tool(params.name)
            args = parse_arguments(tool, arguments)
        except BazaarError as exc:
            return _error_result(exc)
        modern = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        digest = _digest(tool.name, arguments)
        asked: list[SpendRequest] = []
        approver = (
            self._retry_approver(params, digest, asked)
            if modern
            else self._backchannel_approver(ctx, asyncio.get_running_loop())
        )

        def work() -> dict[str, Any]:
            with self.box.asking(approver):
                return tool.run(self.box, args)

        try:
            return _text_result(await anyio.to_thread.run_sync(work))
        except ApprovalRequired as exc:
            if asked and _can_elicit(ctx):
                return self._input_required(asked[0], digest)
            if not _can_elicit(ctx):
                exc.message += " (this MCP client cannot ask a person: it has no elicitation)"
            return _error_result(exc)
        except BazaarError as exc:
            return _error_result(exc)
        except Exception as exc:  # a bug of ours: a tool error, never a dead server
            log.exception("tool %s failed", tool.name)
            return _text_result(
                {"error": type(exc).__name__, "message": "internal error (see the server log)"},
                error=True,
            )

    # ---- approvals ---------------------------------------------------------------------------
    def _retry_approver(
        self, params: types.CallToolRequestParams, digest: str, asked: list[SpendRequest]
    ) -> Callable[[SpendRequest], bool]:
        """Approves only the spend the person answered for (a retry of the same call); asks
        (``asked``) for any other; a declined spend is refused, never asked again."""
        state = self._seal.open(params.request_state)
        answer = (params.input_responses or {}).get(APPROVAL_KEY)
        answered = None
        if state is not None and state.get("call") == digest and answer is not None:
            answered = state.get("spend")
        accepted = bool(
            isinstance(answer, types.ElicitResult)
            and answer.action == "accept"
            and (answer.content or {}).get("approve") is True
        )

        def approve(req: SpendRequest) -> bool:
            if answered is not None and spend_summary(req) == answered:
                return accepted
            asked.append(req)
            return False

        return approve

    def _input_required(self, req: SpendRequest, digest: str) -> types.InputRequiredResult:
        ask = types.ElicitRequest(
            params=types.ElicitRequestFormParams(
                message=approval_message(req), requested_schema=_APPROVAL_SCHEMA
            )
        )
        state = self._seal.seal({"call": digest, "spend": spend_summary(req)})
        return types.InputRequiredResult(input_requests={APPROVAL_KEY: ask}, request_state=state)

    def _backchannel_approver(
        self, ctx: Any, loop: asyncio.AbstractEventLoop
    ) -> Callable[[SpendRequest], bool]:
        def approve(req: SpendRequest) -> bool:
            if not _can_elicit(ctx):
                return False
            future = asyncio.run_coroutine_threadsafe(
                ctx.session.elicit_form(
                    approval_message(req), _APPROVAL_SCHEMA, related_request_id=ctx.request_id
                ),
                loop,
            )
            result = future.result(timeout=APPROVAL_TIMEOUT)
            return bool(result.action == "accept" and (result.content or {}).get("approve"))

        return approve

    # ---- serving -----------------------------------------------------------------------------
    async def serve_stdio(self) -> None:
        from mcp.server.stdio import stdio_server

        async with stdio_server() as (read, write):
            await self.server.run(read, write, self.server.create_initialization_options())

    def http_app(self, host: str = "127.0.0.1") -> Any:
        """The streamable-HTTP ASGI app (endpoint ``/mcp``)."""
        return self.server.streamable_http_app(host=host)


def _can_elicit(ctx: Any) -> bool:
    caps = getattr(ctx.session, "client_capabilities", None)
    return bool(caps is not None and caps.elicitation is not None)


def run_stdio(box: Toolbox, paid: PaidTools | None = None) -> None:
    anyio.run(BazaarMcp(box, paid).serve_stdio)
