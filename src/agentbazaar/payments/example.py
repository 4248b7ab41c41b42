"""The example paid service: ``GET /quote`` (0.001 USDC) and ``POST /echo`` (0.002 USDC, or metered).

    bazaar serve-example --port 4021 --pay-to 0xSELLER [--facilitator http://127.0.0.1:4020]
                         [--facilitator-key KEY]

Without ``--facilitator`` it settles through an in-process facilitator of our own; a facilitator
that requires an API key gets it from ``--facilitator-key`` or ``BAZAAR_FACILITATOR_API_KEY``. Where the
batch-settlement contracts are deployed, both routes also take ``batch-settlement`` (payment
channels), verified and recorded by our own channel engine (``agentbazaar.channels``). Where the
facilitator settles ``upto`` (Permit2 deployed), ``POST /echo`` is also metered: the buyer
authorizes at most 0.002 USDC and pays 0.000001 USDC per byte echoed (``payments.metered``).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from fastapi import FastAPI, Request, Response
from x402.http.facilitator_client_base import FacilitatorClient

from agentbazaar.chain import Chain, to_address
from agentbazaar.channels.engine import ChannelTerms
from agentbazaar.channels.service import ChannelSeller
from agentbazaar.errors import ConfigError
from agentbazaar.payments.metered import (
    MeteredPrice,
    authorized_maximum,
    charge,
    facilitator_offers,
    metered_routes,
)
from agentbazaar.payments.once import RetainedResponses
from agentbazaar.payments.server import PaymentTerms, RoutePrice, install_paywall
from agentbazaar.units import parse_units
from agentbazaar.web import install_error_handler

QUOTE_PRICE = "0.001"
ECHO_PRICE = "0.002"
ECHO_PRICE_PER_BYTE = 1  # base units (0.000001 USDC) per byte echoed, when paid with upto
MAX_ECHO_BYTES = 16 * 1024


def metered_prices() -> list[MeteredPrice]:
    """Routes also sold by usage (``upto``): their most per call, in human units."""
    return [MeteredPrice("POST /echo", ECHO_PRICE, "Echoes the request body, by the byte")]


def echo_cost(body: bytes, maximum: int) -> int:
    """What echoing ``body`` costs under ``upto``: per byte, at most the authorized maximum."""
    return min(len(body) * ECHO_PRICE_PER_BYTE, maximum)


def example_prices() -> list[RoutePrice]:
    return [
        RoutePrice("GET /quote", QUOTE_PRICE, "A fresh price quote"),
        RoutePrice("POST /echo", ECHO_PRICE, "Echoes the request body"),
    ]


def example_channel_seller(
    chain: Chain,
    terms: PaymentTerms,
    authorizer: LocalAccount,
    store_path: Path,
    *,
    claim_interval_s: float = 5.0,
) -> ChannelSeller:
    """The example's channel side: same routes and prices (in base units), paid to
    ``terms.pay_to``; ``authorizer`` signs and sends the claims (it needs gas)."""
    token = terms.token
    if token.address is None or token.eip712_name is None or token.eip712_version is None:
        raise ConfigError(f"token {token.symbol} cannot back payment channels")
    seller_terms = ChannelTerms(
        chain_id=chain.chain_id,
        receiver=to_address(terms.pay_to),
        receiver_authorizer=to_address(authorizer.address),
        token=to_address(token.address),
    )
    routes = {p.route: parse_units(p.price, token.decimals) for p in example_prices()}
    store_path.parent.mkdir(parents=True, exist_ok=True)
    return ChannelSeller(
        chain,
        authorizer,
        seller_terms,
        store_path,
        routes,
        token_name=token.eip712_name,
        token_version=token.eip712_version,
        claim_interval_s=claim_interval_s,
    )


def create_example_app(
    terms: PaymentTerms,
    facilitator: str | FacilitatorClient,
    channels: ChannelSeller | None = None,
    *,
    facilitator_key: str | None = None,
    responses_path: Path | None = None,
    upto: bool | None = None,
) -> FastAPI:
    """The example service; with ``channels`` its routes take batch-settlement too;
    ``facilitator_key`` is the API key of the facilitator at a URL ``facilitator``;
    ``responses_path`` is the SQLite file that keeps settled responses for retries (shared by
    the services that use the same file; default: in memory); ``upto`` meters ``POST /echo``
    (default: when the facilitator settles upto on this network)."""
    if upto is None:
        upto = facilitator_offers(facilitator, terms.network, api_key=facilitator_key)
    if channels is None:
        app = FastAPI(title="agentbazaar example paid service")
    else:
        app = FastAPI(title="agentbazaar example paid service", lifespan=channels.lifespan)
    install_error_handler(app)

    @app.get("/quote")
    async def quote() -> dict[str, Any]:
        return {"pair": "ETH/USDC", "quote_id": secrets.token_hex(8), "price": "3150.25"}

    @app.post("/echo")
    async def echo(request: Request, response: Response) -> dict[str, Any]:
        body = (await request.body())[:MAX_ECHO_BYTES]
        maximum = authorized_maximum(request)
        if maximum is not None:
            charge(request, response, echo_cost(body, maximum))
        return {"echo": body.decode("utf-8", errors="replace")}

    @app.get("/free")
    async def free() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "network": terms.network, "pay_to": terms.pay_to}

    install_paywall(
        app,
        example_prices(),
        terms=terms,
        facilitator=facilitator,
        channels=channels.paywall if channels is not None else None,
        facilitator_key=facilitator_key,
        responses=RetainedResponses(responses_path),
        extend=metered_routes(metered_prices(), terms) if upto else None,
    )
    return app
