"""Selling MCP tools with x402, as the SDK's ``x402.mcp`` speaks it, on a server built with the
official ``mcp`` package (stdio or streamable HTTP alike: this works on tool calls).

    paid = PaidTools(terms, facilitator, {"forecast": "0.001", "translate": per_word})
    server = Server("mine", on_call_tool=paid.wrap(call_tool))

The wire (the SDK's conventions, so its MCP clients pay our tools and ours pays its servers):

- a call without payment gets a *payment-required tool result*: ``isError``, the x402 v2
  ``PaymentRequired`` as ``structuredContent`` and as JSON text in ``content[0]``, its
  ``resource`` ``mcp://tool/NAME``;
- the client calls again with the ``PaymentPayload`` in ``params._meta["x402/payment"]``;
- the served result carries the ``SettleResponse`` in ``_meta["x402/payment-response"]``.

Prices are fixed per tool (human units of the terms' token) or quoted per call from the
arguments. Each requirement names the call it pays for in its ``extra`` (``"mcp"``: the tool and
the sha256 of its canonical JSON arguments); the SDK's clients copy the requirement into the
payment's ``accepted``, so the facilitator's reservation is bound to that very call. Refused
before verification, as a payment-required result whose ``error`` is the reason code and
``message`` a plain sentence: a payment for another tool (``payment_for_another_tool``), for other
arguments (``payment_for_other_arguments``), of a scheme not offered (``unsupported_scheme``),
unreadable (``invalid_payment``). Nothing is verified, settled or served for them.

Verification and settlement are the SDK's own wrapper (``x402.mcp.create_payment_wrapper``) over
our facilitator (in-process ``Facilitator``, or its URL) through ``once.reserving_server``: the
facilitator reserves the authorization at verify (a replay: ``authorization_in_use``, or
``invalid_exact_evm_nonce_already_used`` once settled; an expired one: its own code), the lease
is given back when the tool fails (nothing settled), and the payment is settled only after the
tool answered. ``once.ExactlyOnce`` serialises calls carrying one authorization and keeps each
settled result, so a genuine retry (same signature, same ``payment-identifier`` id, same tool
and arguments) gets the first result back instead of a second service.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import mcp_types as types
from pydantic import ValidationError
from x402.http.facilitator_client_base import FacilitatorClient
from x402.mcp.constants import MCP_PAYMENT_META_KEY, MCP_PAYMENT_RESPONSE_META_KEY
from x402.mcp.server_async import PaymentWrapperConfig, create_payment_wrapper
from x402.mcp.types import MCPToolContext, MCPToolResult
from x402.mechanisms.evm.constants import ERR_UNSUPPORTED_SCHEME
from x402.schemas import PaymentPayload, PaymentRequirements, ResourceInfo

from agentbazaar.chain import to_address
from agentbazaar.errors import BazaarError, ConfigError
from agentbazaar.payments.auth import facilitator_client
from agentbazaar.payments.eip3009 import ERR_UNSUPPORTED_VERSION
from agentbazaar.payments.once import (
    PAYMENT_IDENTIFIER,
    PAYMENT_IDENTIFIER_SCHEMA,
    ExactlyOnce,
    Retained,
    RetainedResponses,
    paid_of,
    reserving_server,
)
from agentbazaar.payments.reasons import (
    ERR_FACILITATOR_UNAVAILABLE,
    ERR_INVALID_PAYMENT,
    ERR_OTHER_ARGUMENTS,
    ERR_OTHER_TOOL,
    ERR_PAYMENT_REQUIRED,
    ERR_TERMS_MISMATCH,
    SDK_NO_MATCH,
    explain,
)
from agentbazaar.payments.server import PaymentTerms
from agentbazaar.units import parse_units

MCP_EXTRA = "mcp"  # the requirement's ``extra`` entry naming the call it pays for
Quote = Callable[[dict[str, Any]], str]  # a per-call price (human units) from the arguments
CallTool = Callable[[Any, types.CallToolRequestParams], Awaitable[Any]]
_NO_PAYMENT = "Payment required to access this tool"
log = logging.getLogger(__name__)


def arguments_hash(arguments: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a tool call's arguments (sorted keys, no spaces)."""
    text = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def tool_resource(name: str) -> str:
    """The resource a tool's payments are for (the SDK's ``mcp://tool/NAME``)."""
    return f"mcp://tool/{name}"


@dataclass(frozen=True)
class _Call:
    """One tool call being sold: its name, arguments, their hash and the requirement."""

    name: str
    arguments: dict[str, Any]
    digest: str
    requirement: PaymentRequirements

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"mcp\0{self.name}\0{self.digest}".encode()).hexdigest()


class PaidTools:
    """x402 prices on MCP tools: ``wrap`` an ``on_call_tool`` handler, or ``call`` one tool."""

    def __init__(
        self,
        terms: PaymentTerms,
        facilitator: str | FacilitatorClient,
        prices: Mapping[str, str | Quote],
        *,
        facilitator_key: str | None = None,
        responses: RetainedResponses | None = None,
    ) -> None:
        if isinstance(facilitator, str):
            facilitator = facilitator_client(facilitator, api_key=facilitator_key, timeout=30.0)
        elif facilitator_key is not None:
            raise ConfigError("facilitator_key goes with a facilitator URL, not an in-process one")
        self.terms = terms
        self.prices = dict(prices)
        for name, price in self.prices.items():
            if not callable(price):
                self.amount(name, {})  # a fixed price is checked now, not on the first call
        self.server = reserving_server(facilitator, terms.network)
        self.once = ExactlyOnce(responses)
        self._ready = False

    async def ready(self) -> bool:
        """Load the facilitator's ``/supported`` (the SDK server needs it) on the first paid
        call; False while the facilitator cannot be reached (then asked again next call)."""
        if not self._ready:
            try:
                await asyncio.to_thread(self.server.initialize)
            except Exception as exc:
                log.warning("x402 mcp: the facilitator is unavailable: %s", exc)
                return False
            self._ready = True
        return True

    def amount(self, name: str, arguments: dict[str, Any]) -> int:
        """The price of this call in base units (ConfigError when not a positive amount)."""
        price = self.prices[name]
        text = price(arguments) if callable(price) else price
        amount = parse_units(text, self.terms.token.decimals)
        if amount <= 0:
            raise ConfigError(f"price of tool {name} must be positive, got {text!r}")
        return amount

    def describe(self, name: str) -> str | None:
        """What tool ``name`` costs, for its listing (None: free)."""
        price = self.prices.get(name)
        if price is None:
            return None
        each = (
            "a price quoted per call" if callable(price) else f"{price} {self.terms.token.symbol}"
        )
        return f"Paid with x402 over MCP: {each}."

    def requirement(self, name: str, arguments: dict[str, Any]) -> _Call:
        digest = arguments_hash(arguments)
        token = self.terms.token
        assert token.address is not None  # PaymentTerms refuses the native coin
        requirement = PaymentRequirements(
            scheme="exact",
            network=self.terms.network,
            asset=token.address,
            amount=str(self.amount(name, arguments)),
            pay_to=to_address(self.terms.pay_to),
            max_timeout_seconds=self.terms.max_timeout_seconds,
            extra={
                "name": token.eip712_name,
                "version": token.eip712_version,
                MCP_EXTRA: {"tool": name, "arguments": digest},
            },
        )
        return _Call(name, arguments, digest, requirement)

    def wrap(self, call_tool: CallTool) -> CallTool:
        """An ``on_call_tool`` handler that sells the priced tools and passes the others."""

        async def paid(ctx: Any, params: types.CallToolRequestParams) -> Any:
            return await self.call(
                params.name,
                dict(params.arguments or {}),
                dict(params.meta or {}),
                lambda: call_tool(ctx, params),
            )

        return paid

    async def call(
        self,
        name: str,
        arguments: dict[str, Any],
        meta: Mapping[str, Any],
        run: Callable[[], Awaitable[Any]],
    ) -> Any:
        """Serve ``run`` (the tool) for this call: free when ``name`` has no price, else only
        paid, exactly once per authorization."""
        if name not in self.prices:
            return await run()
        try:
            sold = self.requirement(name, arguments)
        except BazaarError as exc:  # the quote refused these arguments: nothing to pay
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=f"error: {exc}")],
                structured_content=exc.to_dict(),
                is_error=True,
            )
        raw = meta.get(MCP_PAYMENT_META_KEY)
        if not await self.ready():
            return await self._required(sold, ERR_FACILITATOR_UNAVAILABLE)
        if raw is None:
            return await self._required(sold, _NO_PAYMENT)
        refused = _refusal(sold, raw)
        if refused is not None:
            return await self._required(sold, refused)
        paid = paid_of(raw)
        serve = self._serve(sold, dict(meta), run)
        if paid is None:
            return await serve()
        # its own task: a client that goes away does not stop the settlement of what it paid
        task = asyncio.ensure_future(
            self.once.once(paid, sold.fingerprint, serve, _kept, _replayed)
        )
        return await asyncio.shield(task)

    def _serve(
        self, sold: _Call, meta: dict[str, Any], run: Callable[[], Awaitable[Any]]
    ) -> Callable[[], Awaitable[types.CallToolResult]]:
        """The SDK's wrapper around ``run``: verify, run, settle (or give the lease back)."""

        async def handler(args: dict[str, Any], context: MCPToolContext) -> MCPToolResult:
            answer = await run()
            if not isinstance(answer, types.CallToolResult):  # e.g. an input-required result
                return MCPToolResult(
                    content=[{"type": "text", "text": "this paid tool needs an answer first"}],
                    is_error=True,
                )
            return _to_sdk(answer)

        # the SDK types the wrapped handler as a tool handler; it takes the call's ``extra``
        wrapped = cast(
            Callable[[dict[str, Any], dict[str, Any]], Awaitable[MCPToolResult]],
            create_payment_wrapper(self.server, self._config(sold))(handler),
        )

        async def serve() -> types.CallToolResult:
            result = await wrapped(sold.arguments, {"_meta": meta, "toolName": sold.name})
            return _explained(_from_sdk(_as_result(result)))

        return serve

    def _config(self, sold: _Call) -> PaymentWrapperConfig:
        declared = {
            PAYMENT_IDENTIFIER: {"info": {"required": False}, "schema": PAYMENT_IDENTIFIER_SCHEMA}
        }
        resource = ResourceInfo(
            url=tool_resource(sold.name),
            description=f"Tool: {sold.name}",
            mime_type="application/json",
        )
        return PaymentWrapperConfig(
            accepts=[sold.requirement], resource=resource, extensions=declared
        )

    async def _required(self, sold: _Call, reason: str) -> types.CallToolResult:
        """The payment-required result for this call, its ``error`` the reason."""
        config = self._config(sold)
        required = await self.server.create_payment_required_response(
            config.accepts, config.resource, reason, config.extensions
        )
        doc = required.model_dump(by_alias=True, exclude_none=True, mode="json")
        return _explained(_payment_required(doc))


def _refusal(sold: _Call, raw: Any) -> str | None:
    """The reason code refusing ``raw`` for this call before anything is verified (None: the
    SDK's matching and the facilitator decide)."""
    if not isinstance(raw, dict):
        return ERR_INVALID_PAYMENT
    try:
        payment = PaymentPayload.model_validate(raw)
    except ValidationError:
        return ERR_UNSUPPORTED_VERSION if raw.get("x402Version") == 1 else ERR_INVALID_PAYMENT
    if payment.x402_version != 2:
        return ERR_UNSUPPORTED_VERSION
    if payment.accepted.scheme != sold.requirement.scheme:
        return ERR_UNSUPPORTED_SCHEME
    bound = (payment.accepted.extra or {}).get(MCP_EXTRA)
    bound = bound if isinstance(bound, dict) else {}
    resource = payment.resource.url if payment.resource is not None else None
    if resource not in (None, tool_resource(sold.name)):
        return ERR_OTHER_TOOL
    if bound.get("tool", sold.name) != sold.name:
        return ERR_OTHER_TOOL
    if bound.get("arguments", sold.digest) != sold.digest:
        return ERR_OTHER_ARGUMENTS
    return None


# ---- results: ours (mcp_types) and the SDK wrapper's (MCPToolResult) -------------------------
def _to_sdk(result: types.CallToolResult) -> MCPToolResult:
    return MCPToolResult(
        content=[
            c.model_dump(by_alias=True, exclude_none=True, mode="json") for c in result.content
        ],
        is_error=result.is_error,
        meta=dict(result.meta or {}),
        structured_content=result.structured_content,
    )


def _as_result(result: Any) -> MCPToolResult:
    return result if isinstance(result, MCPToolResult) else MCPToolResult(content=[], is_error=True)


def _from_sdk(result: MCPToolResult) -> types.CallToolResult:
    return types.CallToolResult.model_validate(
        {
            "content": result.content,
            "isError": result.is_error,
            "structuredContent": result.structured_content,
            "_meta": result.meta or None,
        }
    )


def _payment_required(doc: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(doc))],
        structured_content=doc,
        is_error=True,
    )


def _explained(result: types.CallToolResult) -> types.CallToolResult:
    """A payment-required result with our reason code in ``error`` and a plain ``message``
    (the SDK words a terms mismatch and a failed settlement its own way)."""
    doc = result.structured_content
    if not result.is_error or not isinstance(doc, dict) or "accepts" not in doc:
        return result
    reason = str(doc.get("error") or "")
    settled = doc.get(MCP_PAYMENT_RESPONSE_META_KEY)
    if isinstance(settled, dict) and settled.get("errorReason"):
        reason = str(settled["errorReason"])
    elif reason.startswith(SDK_NO_MATCH):
        reason = ERR_TERMS_MISMATCH
    elif reason == _NO_PAYMENT:
        reason = ERR_PAYMENT_REQUIRED
    doc = {**doc, "error": reason, "message": explain(reason)}
    return _payment_required(doc)


def _settled(result: types.CallToolResult) -> bool:
    response = (result.meta or {}).get(MCP_PAYMENT_RESPONSE_META_KEY)
    return not result.is_error and isinstance(response, dict) and response.get("success") is True


def _kept(result: types.CallToolResult) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """What a genuine retry gets back: the settled result, as its JSON."""
    if not _settled(result):
        return None
    body = result.model_dump(by_alias=True, exclude_none=True, mode="json")
    return 200, [], json.dumps(body).encode()


def _replayed(kept: Retained) -> types.CallToolResult:
    return types.CallToolResult.model_validate(json.loads(kept.body))
