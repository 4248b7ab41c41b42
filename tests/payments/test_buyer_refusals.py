"""The one buyer refuses, before anything is signed, what it must not pay: a scheme it cannot
sign, another network or token, a payee other than the expected one, a price above the maximum.
The seller is a real HTTP service on loopback answering a fixed 402; the buyer a real wallet (its
ledger must stay empty: nothing reserved, nothing recorded as paid). Sync and async clients."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from agentbazaar.errors import PolicyViolation
from agentbazaar.payments import PaymentDeclined
from agentbazaar.payments.client import AcceptedToken, PayingClient, X402Auth, payment_of
from agentbazaar.payments.payers import WalletPayer
from agentbazaar.testing import serve_in_thread
from agentbazaar.wallet import Ledger, SpendingPolicy, Wallet

NETWORK = "eip155:31337"
ASSET = "0x" + "11" * 20
SELLER = "0x" + "22" * 20
OFFERS: dict[str, list[dict[str, Any]]] = {}


def requirement(**over: Any) -> dict[str, Any]:
    base = {
        "scheme": "exact",
        "network": NETWORK,
        "asset": ASSET,
        "amount": "2500",
        "payTo": SELLER,
        "maxTimeoutSeconds": 300,
        "extra": {"name": "USD Coin", "version": "2"},
    }
    return {**base, **over}


@pytest.fixture(scope="module")
def seller() -> Iterator[str]:
    """Answers every request to ``/<offer>`` with a 402 offering ``OFFERS[offer]``."""
    app = FastAPI()

    @app.api_route("/{offer}", methods=["GET", "POST"])
    async def priced(offer: str, request: Request) -> JSONResponse:
        if request.headers.get("PAYMENT-SIGNATURE"):  # must never happen in these tests
            return JSONResponse({"paid": True})
        required = {
            "x402Version": 2,
            "error": "Payment required",
            "resource": {"url": str(request.url)},
            "accepts": OFFERS[offer],
        }
        header = base64.b64encode(json.dumps(required).encode()).decode()
        return JSONResponse({}, status_code=402, headers={"PAYMENT-REQUIRED": header})

    with serve_in_thread(app) as url:
        yield url


@pytest.fixture()
def wallet(tmp_path: Path) -> Wallet:
    return Wallet("buyer", Account.create(), SpendingPolicy(), Ledger(tmp_path / "ledger.db"))


CASES = {
    "upto-only": ([requirement(scheme="upto")], PaymentDeclined, "offers only upto"),
    "unknown-scheme": ([requirement(scheme="lottery")], PaymentDeclined, "offers only lottery"),
    "other-network": ([requirement(network="eip155:8453")], PaymentDeclined, "eip155:8453"),
    "other-token": ([requirement(asset="0x" + "33" * 20)], PaymentDeclined, "33333333"),
    "payee": ([requirement(payTo="0x" + "44" * 20)], PaymentDeclined, "not its wallet"),
    "above-max": ([requirement(amount="2501")], PolicyViolation, "above the maximum of 2500"),
}


def auth(wallet: Wallet) -> X402Auth:
    return X402Auth(
        WalletPayer(wallet),
        [AcceptedToken(NETWORK, ASSET)],
        max_amount=2500,
        pay_to=SELLER,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_before_signing_sync(seller: str, wallet: Wallet, case: str) -> None:
    offers, error, message = CASES[case]
    OFFERS[case] = offers
    with pytest.raises(error, match=message), httpx.Client() as http:
        http.post(f"{seller}/{case}", json={"x": 1}, auth=auth(wallet))
    assert wallet.ledger.records("buyer") == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_before_signing_async(seller: str, wallet: Wallet, case: str) -> None:
    offers, error, message = CASES[case]
    OFFERS[case] = offers

    async def go() -> None:
        async with PayingClient(
            WalletPayer(wallet), [AcceptedToken(NETWORK, ASSET)], max_amount=2500, pay_to=SELLER
        ) as client:
            await client.request("GET", f"{seller}/{case}")

    with pytest.raises(error, match=message):
        asyncio.run(go())
    assert wallet.ledger.records("buyer") == []


def test_the_signable_option_is_chosen_among_unsignable_ones(seller: str) -> None:
    """A 402 offering upto first and exact second: the buyer picks exact (the only scheme it
    signs), the cheapest among equals, and the expected payee only."""
    required = [
        requirement(scheme="upto", amount="1"),
        requirement(amount="2000", payTo="0x" + "44" * 20),
        requirement(amount="2400"),
        requirement(amount="2300"),
    ]
    chooser = X402Auth(
        WalletPayer(None), [AcceptedToken(NETWORK, ASSET)], max_amount=2500, pay_to=SELLER
    )
    from x402.schemas import PaymentRequired

    chosen = chooser.choose(
        PaymentRequired.model_validate({"x402Version": 2, "accepts": required}), "u", "k"
    )
    assert (chosen.scheme, chosen.amount, chosen.pay_to) == ("exact", 2300, SELLER)


@settings(max_examples=40, deadline=None)
@given(
    amounts=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=6),
    limit=st.integers(min_value=0, max_value=10**9),
)
def test_the_choice_never_exceeds_the_maximum(amounts: list[int], limit: int) -> None:
    from x402.schemas import PaymentRequired

    required = PaymentRequired.model_validate(
        {"x402Version": 2, "accepts": [requirement(amount=str(a)) for a in amounts]}
    )
    chooser = X402Auth(WalletPayer(None), [AcceptedToken(NETWORK, ASSET)], max_amount=limit)
    try:
        chosen = chooser.choose(required, "u", "k")
    except PolicyViolation:
        assert min(amounts) > limit
    else:
        assert chosen.amount == min(amounts) <= limit


def test_a_free_response_carries_no_payment(seller: str) -> None:
    with httpx.Client() as http:
        r = http.get(f"{seller}/docs", auth=auth(None))  # type: ignore[arg-type]
    assert r.status_code != 402 and payment_of(r) is None
