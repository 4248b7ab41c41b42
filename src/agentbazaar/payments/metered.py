"""Selling metered calls with the x402 ``upto`` scheme: the buyer authorizes a maximum, the
route's handler reports what the call used, and only that is settled.

    prices = [MeteredPrice("POST /echo", maximum="0.002")]
    install_paywall(app, fixed_prices, terms=terms, facilitator=fac,
                    extend=metered_routes(prices, terms))

    @app.post("/echo")
    async def echo(request: Request, response: Response) -> dict:
        body = await request.body()
        charge(request, response, len(body) * UNIT_PRICE)   # base units, at most the maximum
        ...

The SDK's ``upto`` server scheme builds the requirement (``assetTransferMethod: permit2`` and the
facilitator's ``facilitatorAddress`` from its ``/supported``); a route priced both ways offers
``exact`` (its fixed price) and ``upto`` (its maximum) in one 402. ``charge`` reports the usage
the way the SDK's middleware reads it (the ``Settlement-Overrides`` response header, stripped
before the response leaves), and only for a request paid with ``upto``: an ``exact`` or channel
payment of the same route pays its fixed price. The facilitator refuses a report above the
authorized maximum (nothing is settled, the buyer gets a 402, never the content).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from fastapi import Request, Response
from x402 import x402ResourceServer
from x402.http.middleware.fastapi import set_settlement_overrides
from x402.http.types import PaymentOption, RouteConfig
from x402.mechanisms.evm import constants as c
from x402.mechanisms.evm.upto import UptoEvmServerScheme
from x402.schemas import AssetAmount

from agentbazaar.chain import to_address
from agentbazaar.errors import ConfigError
from agentbazaar.payments.auth import facilitator_client
from agentbazaar.payments.once import Extension
from agentbazaar.payments.server import PaymentTerms
from agentbazaar.units import parse_units

SCHEME = c.SCHEME_UPTO


@dataclass(frozen=True)
class MeteredPrice:
    """``route`` as the SDK writes it (``"POST /echo"``), ``maximum`` in human token units: the
    most one call may cost (what the buyer authorizes)."""

    route: str
    maximum: str
    description: str = ""
    mime_type: str = "application/json"


def upto_option(price: MeteredPrice, terms: PaymentTerms) -> PaymentOption:
    amount = parse_units(price.maximum, terms.token.decimals)
    if amount <= 0:
        raise ConfigError(f"maximum of {price.route} must be positive, got {price.maximum!r}")
    assert terms.token.address is not None
    return PaymentOption(
        scheme=SCHEME,
        pay_to=to_address(terms.pay_to),
        network=terms.network,
        price=AssetAmount(amount=str(amount), asset=terms.token.address, extra={}),
        max_timeout_seconds=terms.max_timeout_seconds,
    )


def metered_routes(prices: Sequence[MeteredPrice], terms: PaymentTerms) -> Extension:
    """An ``install_paywall(extend=...)`` hook: registers the SDK's ``upto`` server scheme and
    offers ``upto`` on each route of ``prices`` (beside what the route already accepts)."""

    def extend(server: x402ResourceServer, routes: dict[str, RouteConfig]) -> None:
        # the SDK's own upto server scheme (its payment_flows annotation is looser than the
        # registry's protocol, hence the cast)
        server.register(terms.network, cast(Any, UptoEvmServerScheme()))  # type: ignore[no-untyped-call]
        for price in prices:
            option = upto_option(price, terms)
            config = routes.get(price.route)
            if config is None:
                routes[price.route] = RouteConfig(
                    accepts=[option],
                    description=price.description or None,
                    mime_type=price.mime_type,
                )
                continue
            accepts = config.accepts if isinstance(config.accepts, list) else [config.accepts]
            config.accepts = [*accepts, option]

    return extend


def charge(request: Request, response: Response, amount: int) -> int | None:
    """Report that this request used ``amount`` base units; returns it, or None when the
    request was not paid with ``upto`` (then its scheme's fixed price applies)."""
    requirements = getattr(request.state, "payment_requirements", None)
    if getattr(requirements, "scheme", None) != SCHEME:
        return None
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ValueError(f"usage is a non-negative integer of base units, not {amount!r}")
    set_settlement_overrides(response, {"amount": str(amount)})
    return amount


def authorized_maximum(request: Request) -> int | None:
    """The maximum the buyer authorized for this request (``upto`` only), else None."""
    requirements: Any = getattr(request.state, "payment_requirements", None)
    if getattr(requirements, "scheme", None) != SCHEME:
        return None
    return int(requirements.amount)


def facilitator_offers(facilitator: Any, network: str, *, api_key: str | None = None) -> bool:
    """Does ``facilitator`` (ours in process, an SDK facilitator client, or a URL with its
    ``api_key``) settle ``upto`` on ``network``? A route must not offer a scheme its
    facilitator lacks: the SDK refuses the whole route table then."""
    handler_for = getattr(facilitator, "handler_for", None)
    if callable(handler_for):
        return handler_for(SCHEME, network) is not None
    if isinstance(facilitator, str):
        return _offers(facilitator_client(facilitator, api_key=api_key, timeout=10.0), network)
    return _offers(facilitator, network)


def _offers(client: Any, network: str) -> bool:
    try:
        supported = client.get_supported()
    except Exception:  # unreachable or refusing now: offer what is certain, not upto
        return False
    return any(k.scheme == SCHEME and k.network == network for k in supported.kinds)
