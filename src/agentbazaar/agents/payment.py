"""x402 on both sides of an agent's paid skill, with the official SDK as the protocol engine.

Selling: each skill has a free quote route and a paid route. The paid route's price is
*dynamic*: the SDK asks ``price_for(quote_id)`` (the quote id is a query parameter), so a
per-token price is quoted first and then charged exactly; the SDK's middleware verifies the
payment through the facilitator before the handler runs and settles only after it answered
below 400 (built by ``agentbazaar.payments.once.exact_middleware``: one response per paid
authorization, a genuine retry answered with the first response). The handler finds the
verified payment in ``request.state.payment_payload``.

Buying is ``agentbazaar.payments.client`` (``agents.hiring`` uses it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agentbazaar.errors import BazaarError, PaymentError
from agentbazaar.payments.once import RetainedResponses, exact_middleware
from agentbazaar.tokens import Token
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from x402.http.constants import PAYMENT_SIGNATURE_HEADER
from x402.http.facilitator_client_base import FacilitatorClient
from x402.http.types import HTTPRequestContext, PaymentOption, RouteConfig
from x402.schemas import AssetAmount

Middleware = Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]


# ---- selling --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SellerTerms:
    network: str
    token: Token
    pay_to: str
    max_timeout_seconds: int = 300


def install_priced_route(
    app: FastAPI,
    route: str,
    *,
    terms: SellerTerms,
    price_for: Callable[[str | None], int | None],
    facilitator: FacilitatorClient,
    responses: RetainedResponses | None = None,
) -> None:
    """Put a dynamic x402 price on ``route`` ("POST /skills/embed"): ``price_for(quote_id)``
    gives base units, or None for an unknown quote (answered 400 before any payment);
    ``responses`` keeps settled responses for retries (default: in memory)."""
    assert terms.token.address is not None
    asset = terms.token.address
    extra = {"name": terms.token.eip712_name, "version": terms.token.eip712_version}

    def price(ctx: HTTPRequestContext) -> AssetAmount:
        quote_id = ctx.adapter.get_query_param("quote")
        amount = price_for(quote_id if isinstance(quote_id, str) else None)
        return AssetAmount(amount=str(amount or 0), asset=asset, extra=extra)

    option = PaymentOption(
        scheme="exact",
        pay_to=terms.pay_to,
        network=terms.network,
        price=price,
        max_timeout_seconds=terms.max_timeout_seconds,
    )
    sdk, _server = exact_middleware(
        {route: RouteConfig(accepts=option, mime_type="application/json")},
        facilitator,
        terms.network,
        responses=responses,
    )
    method, path = route.split(" ", 1)

    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.method != method or request.url.path != path:
            return await call_next(request)
        amount = price_for(request.query_params.get("quote"))
        if amount is None:
            return JSONResponse(
                {"error": "unknown_quote", "message": "ask for a quote first (POST .../quote)"},
                status_code=400,
            )
        try:
            return await sdk(request, call_next)
        except BazaarError as exc:
            return JSONResponse(exc.to_dict(), status_code=400)

    app.middleware("http")(guard)


def payment_nonce(request: Request) -> tuple[str, str, int]:
    """(authorization nonce, payer, amount) of the payment the SDK verified for this request."""
    payload = getattr(request.state, "payment_payload", None)
    if payload is None:
        raise PaymentError("no verified payment on this request")
    auth = payload.payload["authorization"]
    return str(auth["nonce"]), str(auth["from"]), int(auth["value"])


__all__ = [
    "PAYMENT_SIGNATURE_HEADER",
    "Middleware",
    "SellerTerms",
    "install_priced_route",
    "payment_nonce",
]
