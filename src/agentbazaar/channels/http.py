"""HTTP 402 paywall for `batch-settlement` routes (x402 v2 headers), over a `ChannelEngine`.

Use it as a plain ASGI middleware (the faster form) or as a Starlette HTTP middleware:

    paywall = ChannelPaywall(engine, {"GET /quote": 1_000}, token_name="USD Coin", token_version="2")
    app.add_middleware(ChannelPaywallMiddleware, paywall=paywall)    # or:
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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentbazaar.channels import _crypto as cx
from agentbazaar.channels.engine import ChannelEngine, Ticket
from agentbazaar.channels.errors import ChannelError, ChannelStoreError, VoucherRejected
from agentbazaar.channels.wire import ERR_CUMULATIVE_AMOUNT_MISMATCH, ERR_VOUCHER_PAYLOAD, SCHEME
from agentbazaar.errors import BazaarError
from agentbazaar.observe import event

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
        self,
        request: Request | str,
        price: int,
        error: str,
        corrective: Mapping[str, Any] | None = None,
    ) -> Response:
        body = {
            "x402Version": 2,
            "error": error,
            "resource": {
                "url": request if isinstance(request, str) else str(request.url),
                "description": self.description,
                "mimeType": "application/json",
            },
            "accepts": [self.requirement(price, corrective)],
        }
        return JSONResponse(body, status_code=402, headers={PAYMENT_REQUIRED: encode_header(body)})

    async def admit(
        self, price: int, header: str | None, url: Callable[[], str]
    ) -> Ticket | Response:
        """Check the payment of a request costing ``price``: a `Ticket` holding the channel (run
        the handler, then `settle` or `engine.abort`), or the response to send instead (a 402, or
        the answer to a cooperative refund). ``url`` gives the request's URL for a 402."""
        if not header:
            return self.payment_required(url(), price, "payment required")
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
            event(log, "x402.paid_request", scheme=SCHEME, network=self.network,
                  amount=str(price), result="refused", reason=exc.reason)  # fmt: skip
            corrective = None
            if exc.reason == ERR_CUMULATIVE_AMOUNT_MISMATCH:
                cid = cx.parse_bytes32(exc.fields.get("channel_id"), "channel id")
                corrective = self.engine.corrective_extra(cid)
            return self.payment_required(url(), price, exc.reason, corrective)
        except BazaarError as exc:  # malformed payment, or the chain refused a refund
            return self.payment_required(url(), price, f"{ERR_VOUCHER_PAYLOAD}: {exc}")
        except Exception:  # a bug must not turn into a 500 or a free response
            log.exception("batch-settlement payment check failed unexpectedly")
            return self.payment_required(url(), price, f"{ERR_VOUCHER_PAYLOAD}: unexpected")
        ticket.payload = payload
        return ticket

    async def settle(self, ticket: Ticket) -> str | Response:
        """The handler succeeded: commit the charge durably; the `PAYMENT-RESPONSE` header value,
        or (when the disk refused the charge: nothing charged) a 503 to send instead."""
        try:
            extra = await self.engine.commit(ticket)
        except ChannelStoreError:
            log.exception("batch-settlement charge could not be recorded")
            return JSONResponse(
                {"error": "the payment could not be recorded; nothing was charged, try again"},
                status_code=503,
            )
        deposit = ticket.deposit
        event(
            log,
            "x402.paid_request",
            scheme=SCHEME,
            network=self.network,
            payer=ticket.payer,
            amount=str(ticket.price),
            channel="0x" + ticket.record.channel_id.hex(),
            charged=ticket.record.charged + ticket.price,
            result="served",
            tx=deposit.transaction if deposit else "",
        )
        return encode_header(
            {
                "success": True,
                "transaction": deposit.transaction if deposit else "",
                "network": self.network,
                "payer": ticket.payer,
                "amount": str(ticket.payload["deposit"]["amount"]) if deposit else "",
                "extra": extra,
            }
        )

    async def __call__(self, request: Request, call_next: CallNext) -> Response:
        """The paywall as a Starlette HTTP middleware (``app.middleware("http")(paywall)``)."""
        price = self.routes.get(f"{request.method} {request.url.path}")
        if price is None:
            return await call_next(request)
        admitted = await self.admit(
            price, request.headers.get(PAYMENT_SIGNATURE), lambda: str(request.url)
        )
        if isinstance(admitted, Response):
            return admitted
        ticket = admitted
        try:
            response = await call_next(request)
        except BaseException:
            self.engine.abort(ticket)
            raise
        if response.status_code >= 400:
            self.engine.abort(ticket)
            return response
        settled = await self.settle(ticket)
        if isinstance(settled, Response):
            return settled
        response.headers[PAYMENT_RESPONSE] = settled
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


class ChannelPaywallMiddleware:
    """The paywall as a plain ASGI middleware: ``app.add_middleware(ChannelPaywallMiddleware,
    paywall=paywall)``. Same behaviour as the HTTP-middleware form, without its per-request task
    and body stream: unpriced routes pass straight through, and a paid response's start is held
    until its charge is on disk, then sent with `PAYMENT-RESPONSE`."""

    def __init__(self, app: ASGIApp, paywall: ChannelPaywall) -> None:
        self.app = app
        self.paywall = paywall

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        paywall = self.paywall
        price = paywall.routes.get(f"{scope['method']} {scope['path']}")
        if price is None:
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope["headers"]:
            if name == _SIGNATURE_BYTES:
                header = value.decode("latin-1")
                break
        admitted = await paywall.admit(price, header, lambda: str(Request(scope).url))
        if isinstance(admitted, Response):
            await admitted(scope, receive, send)
            return
        ticket = admitted
        state = {"open": True, "replaced": False}

        async def send_settled(message: Message) -> None:
            if message["type"] == "http.response.start" and state["open"]:
                state["open"] = False
                if message["status"] >= 400:
                    paywall.engine.abort(ticket)
                    await send(message)
                    return
                settled = await paywall.settle(ticket)
                if isinstance(settled, Response):
                    state["replaced"] = True
                    await settled(scope, receive, send)
                    return
                headers = list(message.get("headers", []))
                headers.append((_RESPONSE_BYTES, settled.encode("latin-1")))
                message = {**message, "headers": headers}
            elif state["replaced"]:
                return  # the handler's body of a response replaced by a 503
            await send(message)

        try:
            await self.app(scope, receive, send_settled)
        finally:
            if state["open"]:  # the handler raised, or returned without a response
                state["open"] = False
                paywall.engine.abort(ticket)


_SIGNATURE_BYTES = PAYMENT_SIGNATURE.encode()
_RESPONSE_BYTES = PAYMENT_RESPONSE.lower().encode()
