"""x402 on both sides of an agent's paid skill, with the official SDK as the protocol engine.

Selling: each skill has a free quote route and a paid route. The paid route's price is
*dynamic*: the SDK asks ``price_for(quote_id)`` (the quote id is a query parameter), so a
per-token price is quoted first and then charged exactly; the SDK's middleware verifies the
payment through the facilitator before the handler runs and settles only after it answered
below 400 (built by ``agentbazaar.payments.once.exact_middleware``: one response per paid
authorization, a genuine retry answered with the first response). The handler finds the
verified payment in ``request.state.payment_payload``.

Buying: ``pay_and_post`` sends the request, reads the 402, lets the SDK's sync client build the
EIP-3009 authorization, and signs it through the buyer's wallet (``Wallet.spend``: spending
policy, then ledger, then key) with a signer that refuses, before anything is signed, a payee
other than the provider's on-chain wallet or an amount above the buyer's maximum. The spend is
marked settled with the transaction hash from ``PAYMENT-RESPONSE``; a refused one stays signed
with the refusal noted (the provider could still settle it) until reconcile proves it dead.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from hexbytes import HexBytes
from x402.http import x402HTTPClientSync
from x402.http.constants import PAYMENT_RESPONSE_HEADER, PAYMENT_SIGNATURE_HEADER
from x402.http.facilitator_client_base import FacilitatorClient
from x402.http.types import HTTPRequestContext, PaymentOption, RouteConfig
from x402.http.utils import decode_payment_response_header
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.schemas import AssetAmount

from agentbazaar.errors import BazaarError, InputError, PaymentError
from agentbazaar.payments.once import RetainedResponses, exact_middleware
from agentbazaar.tokens import Token
from agentbazaar.wallet import PolicySigner, Spend, Wallet
from x402 import x402ClientSync

Middleware = Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]


class PaymentRefused(PaymentError):
    """The buyer refused to sign: wrong payee, price above the maximum, or the policy said no."""


class ProviderUnavailable(PaymentError):
    """The provider could not be reached or answered something that is not the protocol."""


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


# ---- buying ---------------------------------------------------------------------------------
@dataclass
class PaidResponse:
    status: int
    body: Any
    nonce: str
    amount: int
    tx_hash: str | None
    payer: str
    settled: bool


class _PolicySigner(PolicySigner):
    """The wallet's x402 signer, refusing (before the policy is asked) to pay anyone but the
    provider's on-chain wallet or more than the buyer's maximum for this call."""

    def __init__(
        self, wallet: Wallet, token: Token, pay_to: str, max_price: int, memo: dict[str, Any]
    ) -> None:
        super().__init__(wallet, kind="x402", memo=memo)
        self.token = token
        self.pay_to = pay_to
        self.max_price = max_price
        self.spend: Spend | None = None
        self.nonce: str | None = None

    def sign_typed_data(
        self, domain: Any, types: Any, primary_type: str, message: Mapping[str, Any]
    ) -> bytes:
        to, value = str(message["to"]), int(message["value"])
        if to.lower() != self.pay_to.lower():
            raise PaymentRefused(f"the provider asked to pay {to}, not its wallet {self.pay_to}")
        if value > self.max_price:
            raise PaymentRefused(
                f"the provider asked {value} base units, above the maximum {self.max_price}",
                amount=value,
                limit=self.max_price,
            )
        signature = super().sign_typed_data(domain, types, primary_type, message)
        self.spend = self.last_spend
        self.nonce = "0x" + bytes(HexBytes(message["nonce"])).hex()
        return signature


def pay_and_post(
    http: httpx.Client,
    url: str,
    body: Any,
    *,
    wallet: Wallet,
    token: Token,
    network: str,
    pay_to: str,
    max_price: int,
    memo: dict[str, Any] | None = None,
) -> PaidResponse:
    """POST ``body`` to an x402-priced ``url``, paying at most ``max_price`` to ``pay_to``."""
    assert token.address is not None
    first = _post(http, url, body)
    if first.status_code in (400, 413, 422):
        raise InputError(f"{url} refused the request: {_text(first)[:200]}")
    if first.status_code != 402:
        raise ProviderUnavailable(
            f"{url} answered {first.status_code} instead of 402 Payment Required: {_text(first)}"
        )
    signer = _PolicySigner(wallet, token, pay_to, max_price, dict(memo or {}, url=url))
    client = x402ClientSync()
    register_exact_evm_client(client, signer, networks=network)
    client.set_spend_controls(
        {
            "allowed_assets": [
                {
                    "network": network,
                    "asset": token.address,
                    "max_amount_per_payment": str(max_price),
                }
            ]
        }
    )
    try:
        headers, _payload = x402HTTPClientSync(client).handle_402_response(
            dict(first.headers), first.content, url
        )
    except BazaarError:
        raise
    except Exception as exc:
        raise PaymentRefused(f"cannot pay {url}: {exc}") from exc
    if signer.spend is None or signer.nonce is None:
        raise PaymentRefused(f"cannot pay {url}: nothing was signed")
    second = _post(http, url, body, headers=headers)
    return _outcome(second, signer, url)


def _outcome(response: httpx.Response, signer: _PolicySigner, url: str) -> PaidResponse:
    assert signer.spend is not None and signer.nonce is not None
    settle = _settlement(response)
    tx_hash = settle.get("transaction") or None
    ok = bool(settle.get("success")) and response.status_code < 400
    if ok:
        signer.spend.settle(tx_hash=tx_hash)
    elif response.status_code >= 400 and signer.spend.status == "signed":
        # the provider still holds the authorization and could settle it until it expires: the
        # row stays signed (counted) until reconcile proves it used, expired or cancelled
        note = f"{url} answered {response.status_code}: {_text(response)[:200]}"
        signer.wallet.ledger.note(signer.spend.record.id, note)
    try:
        body = response.json()
    except ValueError:
        body = {"error": "not_json", "message": _text(response)[:200]}
    return PaidResponse(
        status=response.status_code,
        body=body,
        nonce=signer.nonce,
        amount=int(signer.spend.request.amount),
        tx_hash=tx_hash,
        payer=signer.address,
        settled=ok,
    )


def _settlement(response: httpx.Response) -> dict[str, Any]:
    raw = response.headers.get(PAYMENT_RESPONSE_HEADER)
    if not raw:
        return {}
    try:
        return dict(decode_payment_response_header(raw).model_dump())
    except Exception:
        try:
            return dict(json.loads(base64.b64decode(raw)))
        except Exception:
            return {}


def _post(
    http: httpx.Client, url: str, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    try:
        return http.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"cannot reach {url}: {exc}") from exc


def _text(response: httpx.Response) -> str:
    try:
        return response.text
    except Exception:
        return ""


__all__ = [
    "PAYMENT_SIGNATURE_HEADER",
    "Middleware",
    "PaidResponse",
    "PaymentRefused",
    "ProviderUnavailable",
    "SellerTerms",
    "install_priced_route",
    "pay_and_post",
    "payment_nonce",
]
