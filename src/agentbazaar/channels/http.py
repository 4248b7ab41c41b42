"""HTTP 402 paywall for `batch-settlement` routes (x402 v2 headers), over a `ChannelEngine`.

Use it as a Starlette/FastAPI HTTP middleware:

    paywall = ChannelPaywall(engine, {"GET /quote": 1_000}, token_name="USD Coin", token_version="2")
    app.middleware("http")(paywall)

A request without `PAYMENT-SIGNATURE` gets 402 with `PAYMENT-REQUIRED`; a voucher whose ceiling
does not match the seller's charged total gets a corrective 402 carrying `channelState` and
`voucherState`; a paid request runs the handler and, only if it succeeds (status < 400),
commits the charge durably and answers with `PAYMENT-RESPONSE`.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from agentbazaar.channels import _crypto as cx
from agentbazaar.channels.engine import ChannelEngine
from agentbazaar.channels.errors import ChannelError, ChannelStoreError, VoucherRejected
from agentbazaar.channels.wire import ERR_CUMULATIVE_AMOUNT_MISMATCH, ERR_VOUCHER_PAYLOAD, SCHEME
from agentbazaar.errors import BazaarError

PAYMENT_SIGNATURE = "payment-signature"
PAYMENT_REQUIRED = "PAYMENT-REQUIRED"
PAYMENT_RESPONSE = "PAYMENT-RESPONSE"

CallNext = Callable[[Request], Awaitable[Response]]
log = logging.getLogger(__name__)


def encode_header(obj: Mapping[str, Any]) -> str:
    return base64.b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def decode_header(value: str) -> Any:
    try:
        return json.loads(base64.b64decode(value, validate=True))
    except (ValueError, json.JSONDecodeError) as exc:
        raise ChannelError("the PAYMENT-SIGNATURE header is not base64 JSON") from exc


class ChannelPaywall:
    def __init__(
        self,
        engine: ChannelEngine,
        routes: Mapping[str, int],
        *,
        token_name: str,
        token_version: str,
        max_timeout_seconds: int = 3600,
        description: str = "",
        min_deposit_multiplier: int = 10,
    ) -> None:
        self.engine = engine
        self.routes = dict(routes)
        self.network = f"eip155:{engine.terms.chain_id}"
        self.extra = engine.terms.requirement_extra(token_name, token_version)
        self.max_timeout_seconds = max_timeout_seconds
        self.description = description
        self.min_deposit_multiplier = min_deposit_multiplier

    def requirement(
        self, price: int, corrective: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        t = self.engine.terms
        return {
            "scheme": SCHEME,
            "network": self.network,
            "amount": str(price),
            "asset": t.token,
            "payTo": t.receiver,
            "maxTimeoutSeconds": self.max_timeout_seconds,
            "extra": {
                **self.extra,
                "minDeposit": str(price * self.min_deposit_multiplier),  # a hint for buyers
                **(corrective or {}),
            },
        }

    def payment_required(
        self, request: Request, price: int, error: str, corrective: Mapping[str, Any] | None = None
    ) -> Response:
        body = {
            "x402Version": 2,
            "error": error,
            "resource": {
                "url": str(request.url),
                "description": self.description,
                "mimeType": "application/json",
            },
            "accepts": [self.requirement(price, corrective)],
        }
        return JSONResponse(body, status_code=402, headers={PAYMENT_REQUIRED: encode_header(body)})

    async def __call__(self, request: Request, call_next: CallNext) -> Response:
        price = self.routes.get(f"{request.method} {request.url.path}")
        if price is None:
            return await call_next(request)
        header = request.headers.get(PAYMENT_SIGNATURE)
        if not header:
            return self.payment_required(request, price, "payment required")
        try:
            payload = self._payload(header, price)
            if payload.get("type") == "refund":  # cooperative refund: no handler, no charge
                settle = await self.engine.refund(payload)
                return JSONResponse(
                    {"refunded": settle["amount"]},
                    headers={PAYMENT_RESPONSE: encode_header(settle)},
                )
            ticket = await self.engine.begin(payload, price)
        except VoucherRejected as exc:
            corrective = None
            if exc.reason == ERR_CUMULATIVE_AMOUNT_MISMATCH:
                cid = cx.parse_bytes32(exc.fields.get("channel_id"), "channel id")
                corrective = self.engine.corrective_extra(cid)
            return self.payment_required(request, price, exc.reason, corrective)
        except BazaarError as exc:  # malformed payment, or the chain refused a refund
            return self.payment_required(request, price, f"{ERR_VOUCHER_PAYLOAD}: {exc}")
        except Exception:  # a bug must not turn into a 500 or a free response
            log.exception("batch-settlement payment check failed unexpectedly")
            return self.payment_required(request, price, f"{ERR_VOUCHER_PAYLOAD}: unexpected")
        try:
            response = await call_next(request)
        except BaseException:
            self.engine.abort(ticket)
            raise
        if response.status_code >= 400:
            self.engine.abort(ticket)
            return response
        try:
            extra = await self.engine.commit(ticket)
        except ChannelStoreError:  # the disk refused the charge: not charged, not served
            log.exception("batch-settlement charge could not be recorded")
            return JSONResponse(
                {"error": "the payment could not be recorded; nothing was charged, try again"},
                status_code=503,
            )
        deposit = ticket.deposit
        settle = {
            "success": True,
            "transaction": deposit.transaction if deposit else "",
            "network": self.network,
            "payer": ticket.payer,
            "amount": str(payload["deposit"]["amount"]) if deposit else "",
            "extra": extra,
        }
        response.headers[PAYMENT_RESPONSE] = encode_header(settle)
        return response

    def _payload(self, header: str, price: int) -> Mapping[str, Any]:
        envelope = decode_header(header)
        if not isinstance(envelope, dict) or envelope.get("x402Version") != 2:
            raise ChannelError("only x402 version 2 payments are accepted here")
        accepted = envelope.get("accepted")
        if not isinstance(accepted, dict) or accepted.get("scheme") != SCHEME:
            raise ChannelError(f"this route takes the {SCHEME} scheme")
        if accepted.get("network") != self.network or str(accepted.get("amount")) != str(price):
            raise ChannelError("the accepted requirement is not this route's")
        payload = envelope.get("payload")
        if not isinstance(payload, dict):
            raise ChannelError("payment payload must be an object")
        return payload
