"""The example paid service: ``GET /quote`` (0.001 USDC) and ``POST /echo`` (0.002 USDC).

    bazaar serve-example --port 4021 --pay-to 0xSELLER [--facilitator http://127.0.0.1:4020]

Without ``--facilitator`` it settles through an in-process facilitator of our own.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import FastAPI, Request
from x402.http.facilitator_client_base import FacilitatorClient

from agentbazaar.payments.server import PaymentTerms, RoutePrice, install_paywall

QUOTE_PRICE = "0.001"
ECHO_PRICE = "0.002"
MAX_ECHO_BYTES = 16 * 1024


def example_prices() -> list[RoutePrice]:
    return [
        RoutePrice("GET /quote", QUOTE_PRICE, "A fresh price quote"),
        RoutePrice("POST /echo", ECHO_PRICE, "Echoes the request body"),
    ]


def create_example_app(terms: PaymentTerms, facilitator: str | FacilitatorClient) -> FastAPI:
    app = FastAPI(title="agentbazaar example paid service")

    @app.get("/quote")
    async def quote() -> dict[str, Any]:
        return {"pair": "ETH/USDC", "quote_id": secrets.token_hex(8), "price": "3150.25"}

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        body = (await request.body())[:MAX_ECHO_BYTES]
        return {"echo": body.decode("utf-8", errors="replace")}

    @app.get("/free")
    async def free() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "network": terms.network, "pay_to": terms.pay_to}

    install_paywall(app, example_prices(), terms=terms, facilitator=facilitator)
    return app
