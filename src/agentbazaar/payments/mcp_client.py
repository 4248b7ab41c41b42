"""Buying MCP tool calls with x402 (the SDK's ``x402.mcp`` conventions), through the same payer
as HTTP: ``WalletPayer`` is ``Wallet.spend`` (policy, then ledger, then key).

    async with Client("http://127.0.0.1:8765/mcp") as mcp:
        paid = await call_paid_tool(mcp, "forecast", {"city": "Oslo"}, payer=WalletPayer(w),
                                    accepted=[AcceptedToken(network, usdc)], max_amount=10_000)
        paid.result        # the tool's CallToolResult
        paid.payment       # PaymentMade: amount, payee, transaction (None: the tool was free)

The call goes out unpaid; a payment-required tool result (``isError`` with an x402 v2
``PaymentRequired`` in ``structuredContent`` or as JSON text) is answered by choosing the cheapest
``exact`` requirement on an accepted token, refused above ``max_amount`` before anything is
signed, authorized by the payer and sent again with the payment in ``_meta["x402/payment"]``;
the settlement in the result's ``_meta["x402/payment-response"]`` goes to the payer (the ledger
row becomes ``settled`` with its transaction). The same ``idempotency_key`` later reuses the same
authorization (the ledger returns it), and its ``payment-identifier`` lets the seller answer
with the first result: never two payments for one key.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from pydantic import ValidationError
from x402.mcp.constants import MCP_PAYMENT_META_KEY, MCP_PAYMENT_RESPONSE_META_KEY
from x402.schemas import PaymentRequired, SettleResponse

from agentbazaar.payments.client import AcceptedToken, PaymentMade, X402Auth
from agentbazaar.payments.errors import PaymentRefused
from agentbazaar.payments.payers import Payer
from agentbazaar.payments.reasons import explain


@dataclass
class PaidToolResult:
    """A tool's result, and what was paid for it (None when the tool asked for nothing)."""

    result: types.CallToolResult
    payment: PaymentMade | None


def payment_required_of(result: types.CallToolResult) -> PaymentRequired | None:
    """The x402 v2 ``PaymentRequired`` of a payment-required tool result (None: not one);
    ``PaymentRefused`` for an x402 v1 one."""
    if not result.is_error:
        return None
    doc = result.structured_content
    if not (isinstance(doc, dict) and "accepts" in doc) and result.content:
        first = result.content[0]
        try:
            doc = json.loads(first.text) if isinstance(first, types.TextContent) else None
        except ValueError:
            doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("accepts"), list):
        return None
    if doc.get("x402Version") == 1:
        raise PaymentRefused("the tool speaks x402 v1 only; v2 is required")
    try:
        return PaymentRequired.model_validate(doc)
    except ValidationError:
        return None


def settlement_of(result: types.CallToolResult) -> SettleResponse | None:
    """The ``SettleResponse`` in a result's ``_meta["x402/payment-response"]``, if any."""
    found = (result.meta or {}).get(MCP_PAYMENT_RESPONSE_META_KEY)
    if found is None and isinstance(result.structured_content, dict):
        found = result.structured_content.get(MCP_PAYMENT_RESPONSE_META_KEY)  # failed settle
    try:
        return SettleResponse.model_validate(found) if isinstance(found, dict) else None
    except ValidationError:
        return None


async def call_paid_tool(
    session: Any,
    name: str,
    arguments: dict[str, Any] | None = None,
    *,
    payer: Payer,
    accepted: list[AcceptedToken],
    max_amount: int | None = None,
    idempotency_key: str | None = None,
) -> PaidToolResult:
    """Call tool ``name`` on ``session`` (an ``mcp.Client`` or ``ClientSession``), paying what
    it asks through ``payer``; returns its result and the payment."""
    args = dict(arguments or {})
    first = await session.call_tool(name, args)
    required = payment_required_of(first)
    if required is None:
        return PaidToolResult(first, None)
    key = idempotency_key or f"mcp-{secrets.token_hex(16)}"
    url = required.resource.url if required.resource is not None else f"mcp://tool/{name}"
    # the one buyer's choice: scheme, token and network, maximum; refused before signing
    intent = X402Auth(payer, list(accepted), max_amount=max_amount).choose(required, url, key)
    auth = await asyncio.to_thread(payer.authorize, intent, required)
    made = PaymentMade(intent, payer.address, auth.replayed)
    payment = auth.payload.model_dump(by_alias=True, exclude_none=True, mode="json")
    result = await session.call_tool(name, args, meta={MCP_PAYMENT_META_KEY: payment})
    settle = settlement_of(result)
    if settle is not None:
        made.success, made.transaction = settle.success, settle.transaction or None
        made.error = settle.error_reason
        if settle.success and not result.is_error:
            await asyncio.to_thread(auth.settled, settle)
    if result.is_error and not made.success:
        made.error, made.message = _refusal_of(result, made.error)
        await asyncio.to_thread(auth.refused, made.error)
    return PaidToolResult(result, made)


def _refusal_of(result: types.CallToolResult, known: str | None) -> tuple[str, str]:
    """(reason code, message) of a refused or failed paid call."""
    doc = result.structured_content if isinstance(result.structured_content, dict) else {}
    reason = known or (doc.get("error") if isinstance(doc.get("error"), str) else None)
    reason = reason or "tool_failed"
    message = doc.get("message") if isinstance(doc.get("message"), str) else None
    return reason, message or explain(reason)
