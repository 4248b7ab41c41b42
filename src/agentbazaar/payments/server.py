"""Selling side: put an x402 price on FastAPI routes with the SDK's own middleware.

    app = FastAPI()
    install_paywall(app, [RoutePrice("GET /quote", "0.001")], terms=PaymentTerms(...),
                    facilitator="http://127.0.0.1:4020", facilitator_key=KEY)

``facilitator_key`` is the API key of a facilitator that requires one (sent as
``Authorization: Bearer`` to its ``/verify``, ``/settle`` and ``/supported``).

A route's price comes from a price source: fixed (``RoutePrice``: human units of the
configured token, USDC by default, parsed exactly to base units) or quoted per request
(``QuotedPrice``: ``price_of(quote id)`` in base units for the request's ``?quote=`` parameter;
an unknown or expired quote is a 400 before any payment). Metered usage (``upto``) is added by
``metered.metered_routes``. A paid handler finds the verified payment with ``paid_by(request)``.
The SDK's middleware verifies before the handler runs and settles only after it answered < 400,
built by ``agentbazaar.payments.once.exact_middleware``: one response per paid authorization,
genuine retries answered with the first response (kept in ``responses``, a
``RetainedResponses``), the facilitator's reservation given back when the handler fails.
Around it, a guard makes every payment problem a 402 with a reason code and a plain message in
the JSON body (garbage or oversized headers, x402 v1 ``X-PAYMENT``, an unreachable facilitator:
``facilitator_unavailable``), never a 500.

With ``channels`` (a ``ChannelPaywall`` over the seller's channel engine) the same routes also take
``batch-settlement``: a payment for that scheme goes to the channel engine, everything else to the
SDK's middleware, and every 402 of the exact side lists both requirements in ``accepts``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from x402 import x402ResourceServer
from x402.http import HTTPFacilitatorClient
from x402.http.constants import (
    PAYMENT_REQUIRED_HEADER,
    PAYMENT_RESPONSE_HEADER,
    PAYMENT_SIGNATURE_HEADER,
)
from x402.http.facilitator_client_base import FacilitatorClient
from x402.http.types import HTTPRequestContext, PaymentOption, RouteConfig
from x402.http.utils import decode_payment_required_header, decode_payment_response_header
from x402.schemas import AssetAmount

from agentbazaar.chain import to_address
from agentbazaar.errors import BazaarError, ConfigError, PaymentError
from agentbazaar.payments.auth import facilitator_client
from agentbazaar.payments.once import (
    Extension,
    Middleware,
    RetainedResponses,
    authorization_key,
    exact_middleware,
)
from agentbazaar.payments.reasons import (
    ERR_FACILITATOR_UNAUTHORIZED,
    ERR_FACILITATOR_UNAVAILABLE,
    ERR_TERMS_MISMATCH,
    SDK_NO_MATCH,
    explain,
)
from agentbazaar.tokens import Token
from agentbazaar.units import parse_units
from agentbazaar.web import error_response

if TYPE_CHECKING:
    from agentbazaar.channels.http import ChannelPaywall

log = logging.getLogger(__name__)

MAX_PAYMENT_HEADER = 8 * 1024
V1_HEADER = "x-payment"
# how the SDK's HTTPFacilitatorClient words a facilitator that refused our credentials
_FACILITATOR_AUTH_FAILED = re.compile(r"Facilitator \w+ failed \((401|403)\)")


@dataclass(frozen=True)
class PaymentTerms:
    """What a seller accepts: one token on one network, paid to one address."""

    network: str
    token: Token
    pay_to: str
    max_timeout_seconds: int = 300

    def asset_extra(self) -> dict[str, str]:
        """The token's EIP-712 domain, as ``exact`` requirements carry it in ``extra``."""
        return {"name": self.token.eip712_name or "", "version": self.token.eip712_version or ""}

    def __post_init__(self) -> None:
        if self.token.address is None:
            raise ConfigError("x402 prices need an ERC-20 token with EIP-3009, not the native coin")
        if not self.token.eip712_name or not self.token.eip712_version:
            raise ConfigError(f"token {self.token.symbol} has no EIP-712 name/version")
        to_address(self.pay_to)


@dataclass(frozen=True)
class RoutePrice:
    """``route`` as the SDK writes it (``"GET /quote"``), ``price`` in human token units."""

    route: str
    price: str
    description: str = ""
    mime_type: str = "application/json"


@dataclass(frozen=True)
class QuotedPrice:
    """``route`` priced per request from a quote: ``price_of(quote id)`` gives base units for
    the request's ``param`` query parameter, or None for an unknown or expired quote."""

    route: str
    price_of: Callable[[str | None], int | None]
    param: str = "quote"
    description: str = ""
    mime_type: str = "application/json"


Price = RoutePrice | QuotedPrice


def route_config(price: Price, terms: PaymentTerms) -> RouteConfig:
    assert terms.token.address is not None
    asset, extra = terms.token.address, terms.asset_extra()
    amount: AssetAmount | Callable[[HTTPRequestContext], AssetAmount]
    if isinstance(price, QuotedPrice):
        price_of, param = price.price_of, price.param

        def amount(ctx: HTTPRequestContext) -> AssetAmount:
            given = ctx.adapter.get_query_param(param)
            quoted = price_of(given if isinstance(given, str) else None)
            return AssetAmount(amount=str(quoted or 0), asset=asset, extra=extra)

    else:
        units = parse_units(price.price, terms.token.decimals)
        if units <= 0:
            raise ConfigError(f"price of {price.route} must be positive, got {price.price!r}")
        amount = AssetAmount(amount=str(units), asset=asset, extra=extra)
    option = PaymentOption(
        scheme="exact",
        pay_to=to_address(terms.pay_to),
        network=terms.network,
        price=amount,
        max_timeout_seconds=terms.max_timeout_seconds,
    )
    return RouteConfig(
        accepts=option, description=price.description or None, mime_type=price.mime_type
    )


def paid_by(request: Request) -> tuple[str, str, int]:
    """(authorization nonce, payer, amount) of the payment the paywall verified for this
    request: what a handler names in its receipt."""
    payload = getattr(request.state, "payment_payload", None)
    accepted = getattr(payload, "accepted", None)
    if payload is None or accepted is None:
        raise PaymentError("no verified payment on this request")
    auth = payload.payload.get("authorization")
    if isinstance(auth, dict):
        return str(auth["nonce"]), str(auth["from"]), int(auth["value"])
    key = authorization_key(accepted.network, accepted.asset, payload.payload)
    if key is None:
        raise PaymentError("the verified payment carries no authorization")
    return key[3], to_address(key[2]), int(accepted.amount)


def install_paywall(
    app: FastAPI,
    prices: Sequence[Price],
    *,
    terms: PaymentTerms,
    facilitator: str | FacilitatorClient,
    channels: ChannelPaywall | None = None,
    facilitator_key: str | None = None,
    responses: RetainedResponses | None = None,
    extend: Extension | None = None,
) -> x402ResourceServer:
    """Price ``prices`` on ``app``; ``facilitator`` is a URL (``facilitator_key``: its API key)
    or an in-process client; ``channels`` also accepts ``batch-settlement`` on the routes it
    prices; ``responses`` keeps settled responses for retries (default: in memory); ``extend``
    registers more schemes and route options (``metered.metered_routes``), served under the
    same one-authorization-one-response guarantee."""
    client: FacilitatorClient
    if isinstance(facilitator, str):
        http_client = facilitator_client(facilitator, api_key=facilitator_key, timeout=30.0)
        _close_on_shutdown(app, http_client)
        client = http_client
    elif facilitator_key is not None:
        raise ConfigError("facilitator_key goes with a facilitator URL, not an in-process one")
    else:
        client = facilitator
    routes: dict[str, RouteConfig] = {p.route: route_config(p, terms) for p in prices}
    # The SDK fetches the facilitator's /supported now and, if that fails, again on the first
    # paid request; the guard turns a failure there into a 402.
    sdk, server = exact_middleware(
        routes, client, terms.network, responses=responses, extend=extend
    )
    guard = _guard(sdk)
    quoted = {p.route: p for p in prices if isinstance(p, QuotedPrice)}
    if quoted:
        guard = _known_quotes(guard, quoted)
    app.middleware("http")(guard if channels is None else _with_channels(guard, channels))
    return server


def _known_quotes(paywall: Middleware, quoted: dict[str, QuotedPrice]) -> Middleware:
    """Answer a request for a quoted route whose quote is unknown with a 400 (or the status of
    the error reading it), before any payment is asked for or taken."""

    async def check(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        price = quoted.get(f"{request.method} {request.url.path}")
        if price is not None:
            try:
                known = price.price_of(request.query_params.get(price.param)) is not None
            except BazaarError as exc:
                return error_response(exc)
            if not known:
                return payment_error(
                    "unknown_quote",
                    f"ask for a quote first and pass its id as ?{price.param}=",
                    status=400,
                )
        return await paywall(request, call_next)

    return check


def _with_channels(exact: Middleware, channels: ChannelPaywall) -> Middleware:
    """Send ``batch-settlement`` payments to the channel paywall, the rest to ``exact``; offer
    both schemes in the exact side's 402s."""
    from agentbazaar.channels.wire import SCHEME

    async def dispatch(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        price = channels.routes.get(f"{request.method} {request.url.path}")
        if price is None:
            return await exact(request, call_next)
        header = _payment_header(request)
        if header is not None and _scheme_of(header) == SCHEME:
            return await channels(request, call_next)
        response = await exact(request, call_next)
        if response.status_code == 402:
            _offer(response, channels.requirement(price))
        return response

    return dispatch


def _scheme_of(header: str) -> str | None:
    """The scheme a ``PAYMENT-SIGNATURE`` says it pays with (None if it cannot be read)."""
    if len(header) > MAX_PAYMENT_HEADER:
        return None
    try:
        envelope = json.loads(base64.b64decode(header, validate=True))
    except (ValueError, binascii.Error):
        return None
    accepted = envelope.get("accepted") if isinstance(envelope, dict) else None
    scheme = accepted.get("scheme") if isinstance(accepted, dict) else None
    return scheme if isinstance(scheme, str) else None


def _offer(response: Response, requirement: dict[str, Any]) -> None:
    """Add ``requirement`` to the ``accepts`` of a 402's ``PAYMENT-REQUIRED`` header."""
    encoded = response.headers.get(PAYMENT_REQUIRED_HEADER)
    if not encoded:
        return
    try:
        required = json.loads(base64.b64decode(encoded, validate=True))
    except (ValueError, binascii.Error):
        return
    if not isinstance(required, dict) or not isinstance(required.get("accepts"), list):
        return
    required["accepts"].append(requirement)
    text = json.dumps(required, separators=(",", ":"))
    response.headers[PAYMENT_REQUIRED_HEADER] = base64.b64encode(text.encode()).decode()


def _close_on_shutdown(app: FastAPI, client: HTTPFacilitatorClient) -> None:
    """Close the facilitator client's connections when the app's lifespan ends."""
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with previous(a) as state:
            yield state
        await client.aclose()

    app.router.lifespan_context = lifespan


def _payment_header(request: Request) -> str | None:
    return request.headers.get(PAYMENT_SIGNATURE_HEADER)


def payment_error(reason: str, message: str, *, status: int = 402, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": reason, "message": message}, status_code=status, headers=headers or None
    )


def _guard(sdk: Middleware) -> Middleware:
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        header = _payment_header(request)
        if header is not None and len(header) > MAX_PAYMENT_HEADER:
            return payment_error(
                "payment_header_too_large", f"PAYMENT-SIGNATURE over {MAX_PAYMENT_HEADER} bytes"
            )
        handler_failed: list[BaseException] = []

        async def call_handler(req: Request) -> Response:
            try:
                return await call_next(req)
            except BaseException as exc:
                handler_failed.append(exc)
                raise

        try:
            response = await sdk(request, call_handler)
        except Exception as exc:
            if handler_failed:
                raise
            log.warning("x402: payment processing failed: %s", exc)
            return payment_error(ERR_FACILITATOR_UNAVAILABLE, explain(ERR_FACILITATOR_UNAVAILABLE))
        if response.status_code == 402:
            return _explain_402(request, response, header)
        return response

    return guard


def _settle_failure_reason(response: Response) -> str | None:
    encoded = response.headers.get(PAYMENT_RESPONSE_HEADER)
    if not encoded:
        return None
    try:
        settle = decode_payment_response_header(encoded)
    except Exception:
        return None
    return None if settle.success else (settle.error_reason or "settlement_failed")


def _explain_402(request: Request, response: Response, header: str | None) -> Response:
    """Put the reason of a 402 into its JSON body (the SDK leaves it in the header only)."""
    encoded = response.headers.get(PAYMENT_REQUIRED_HEADER)
    reason: str | None = None
    if encoded:
        try:
            reason = decode_payment_required_header(encoded).error
        except Exception:
            reason = None
    settled = _settle_failure_reason(response)
    if settled is not None:  # verified, served, then settlement failed: nothing delivered
        reason = settled
        message = f"settlement failed: {explain(settled)}"
    elif header is None and request.headers.get(V1_HEADER) is not None:
        reason = "x402_v1_not_supported"
        message = "X-PAYMENT (x402 v1) is not accepted: pay with x402 v2 (PAYMENT-SIGNATURE)"
    elif header is not None and reason in (None, "Payment required"):
        reason = "invalid_payment_header"
        message = "PAYMENT-SIGNATURE could not be decoded as an x402 v2 payment"
    elif reason == SDK_NO_MATCH:
        reason = ERR_TERMS_MISMATCH
        message = explain(reason)
    elif reason is not None and _FACILITATOR_AUTH_FAILED.match(reason):
        log.warning("x402: the facilitator refused this service's API key: %s", reason[:200])
        reason = ERR_FACILITATOR_UNAUTHORIZED
        message = explain(reason)
    else:
        message = explain(reason)
    body: dict[str, Any] = {"error": reason or "payment_required", "message": message}
    raw = getattr(response, "body", b"")
    if isinstance(raw, (bytes, bytearray)) and raw:
        try:
            previous = json.loads(raw)
            if isinstance(previous, dict) and previous:
                body["detail"] = previous
        except ValueError:
            pass
    headers = {
        k: v
        for k, v in response.headers.items()
        if k.lower() not in ("content-length", "content-type")
    }
    return JSONResponse(body, status_code=402, headers=headers)
