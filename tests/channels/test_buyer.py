"""Our buyer (wallet-checked deposits and vouchers) pays our seller over HTTP on the embedded
chain: ledger records, exactly-once vouchers, recovery after losing local state, policy refusal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.channels import ChannelContracts, ChannelEngine, ChannelStore, ChannelTerms
from agentbazaar.channels.buyer import ChannelBuyer
from agentbazaar.channels.http import ChannelPaywall, ChannelPaywallMiddleware
from agentbazaar.errors import PolicyViolation
from agentbazaar.testing import LocalWorld, serve_in_thread
from agentbazaar.wallet import Ledger, SpendingPolicy, TokenLimits, Wallet

PRICE = 1_000


FORMS = pytest.mark.parametrize("form", ["asgi", "http-middleware"])


def seller(d: LocalWorld, path: Path, form: str = "asgi") -> tuple[FastAPI, ChannelEngine]:
    authorizer = dev_account(2)
    terms = ChannelTerms(
        chain_id=d.chain.chain_id,
        receiver=dev_account(4).address,
        receiver_authorizer=authorizer.address,
        token=d.usdc.address,
    )
    engine = ChannelEngine(ChannelStore(path), terms, chain=ChannelContracts(d.chain, authorizer))
    app = FastAPI()
    paywall = ChannelPaywall(
        engine,
        {
            "GET /quote": PRICE,
            "GET /broken": PRICE,
            "GET /raises": PRICE,
            "GET /missing": PRICE,
            "GET /big": 3 * PRICE,
        },
        token_name="USD Coin",
        token_version="2",
    )
    if form == "asgi":
        app.add_middleware(ChannelPaywallMiddleware, paywall=paywall)
    else:
        app.middleware("http")(paywall)

    @app.get("/quote")
    async def quote() -> dict[str, int]:
        return {"price": 42}

    @app.get("/big")
    async def big() -> dict[str, int]:
        return {"price": 4200}

    @app.get("/broken")
    async def broken() -> JSONResponse:
        return JSONResponse({"error": "the model is not loaded"}, status_code=503)

    @app.get("/raises")
    async def raises() -> dict[str, int]:
        raise RuntimeError("the handler failed")

    return app, engine


def wallet(tmp: Path, policy: SpendingPolicy | None = None) -> Wallet:
    return Wallet("buyer", dev_account(1), policy or SpendingPolicy(), Ledger(tmp / "ledger.db"))


async def calls(buyer: ChannelBuyer, url: str, n: int) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as http:
        return [(await buyer.get(http, url)).status_code for _ in range(n)]


def test_buyer_pays_records_in_ledger_and_recovers_after_losing_state(
    embedded: LocalWorld, tmp_path: Path
) -> None:
    d = embedded
    d.mint(dev_account(1).address, 10**9)
    app, engine = seller(d, tmp_path / "seller.db")
    w = wallet(tmp_path)
    with serve_in_thread(app) as url:
        buyer = ChannelBuyer(w, chain_id=d.chain.chain_id, deposit_multiplier=10)
        assert asyncio.run(calls(buyer, url + "/quote", 25)) == [200] * 25
        # a new buyer process with no local state, but the chain to read the deposit from
        fresh = ChannelBuyer(w, chain_id=d.chain.chain_id, chain=d.chain, deposit_multiplier=10)
        assert asyncio.run(calls(fresh, url + "/quote", 5)) == [200] * 5
    [rec] = engine.records()
    assert rec.charged == 30 * PRICE
    assert rec.balance == 3 * 10 * PRICE  # 10-call deposits: the first, then two top-ups
    deposits = [r for r in w.ledger.records(w.name) if r.kind == "deposit"]
    assert sum(r.amount for r in deposits) == rec.balance
    vouchers = [
        w.ledger.get(w.name, f"voucher:0x{rec.channel_id.hex()}:{k * PRICE}") for k in range(1, 31)
    ]
    assert all(v is not None and v.status == "settled" for v in vouchers)
    assert sum(v.amount for v in vouchers if v) == rec.charged
    assert d.balance(dev_account(1).address) == 10**9 - rec.balance


def test_policy_refuses_a_voucher_over_the_limit(embedded: LocalWorld, tmp_path: Path) -> None:
    d = embedded
    d.mint(dev_account(1).address, 10**9)
    app, engine = seller(d, tmp_path / "seller.db")
    limits = TokenLimits("USDC", 6, max_per_payment=PRICE - 1)
    w = wallet(tmp_path, SpendingPolicy(tokens={d.token.lower(): limits}))
    with serve_in_thread(app) as url, pytest.raises(PolicyViolation):
        asyncio.run(calls(ChannelBuyer(w, chain_id=d.chain.chain_id), url + "/quote", 1))
    assert engine.records() == []  # nothing was signed, nothing deposited


def test_seller_service_claims_in_the_background(embedded: LocalWorld, tmp_path: Path) -> None:
    """Past the threshold the running service claims and settles on its own; on shutdown it
    claims whatever is left."""
    from agentbazaar.channels.service import ChannelSeller
    from agentbazaar.channels.settlement import ClaimPolicy

    d = embedded
    d.mint(dev_account(1).address, 10**9)
    terms = ChannelTerms(
        d.chain.chain_id, dev_account(4).address, dev_account(2).address, d.usdc.address
    )
    seller_svc = ChannelSeller(
        d.chain,
        dev_account(2),
        terms,
        tmp_path / "seller.db",
        {"GET /quote": PRICE},
        policy=ClaimPolicy(threshold=5 * PRICE, period_s=3600),
        claim_interval_s=0.05,
    )
    app = FastAPI(lifespan=seller_svc.lifespan)
    app.middleware("http")(seller_svc.paywall)

    @app.get("/quote")
    async def quote() -> dict[str, int]:
        return {"price": 42}

    buyer = ChannelBuyer(wallet(tmp_path), chain_id=d.chain.chain_id, deposit_multiplier=20)
    with serve_in_thread(app) as url:
        assert asyncio.run(calls(buyer, url + "/quote", 6)) == [200] * 6
        for _ in range(200):  # the loop claims within a few intervals
            if d.balance(terms.receiver) >= 5 * PRICE:
                break
            asyncio.run(asyncio.sleep(0.05))
        assert d.balance(terms.receiver) in (5 * PRICE, 6 * PRICE)  # the threshold was reached
        assert asyncio.run(calls(buyer, url + "/quote", 2)) == [200] * 2
    assert d.balance(terms.receiver) == 8 * PRICE  # claimed and settled at shutdown


@FORMS
def test_bad_payment_headers_get_402_never_500(
    embedded: LocalWorld, tmp_path: Path, form: str
) -> None:
    import base64
    import json

    d = embedded
    app, engine = seller(d, tmp_path / "seller.db", form)
    good_req = {
        "scheme": "batch-settlement",
        "network": f"eip155:{d.chain.chain_id}",
        "amount": str(PRICE),
    }
    envelopes: list[object] = [
        None,
        [],
        7,
        {"x402Version": 1},
        {"x402Version": 2},
        {"x402Version": 2, "accepted": {"scheme": "exact"}, "payload": {}},
        {"x402Version": 2, "accepted": {**good_req, "amount": "1"}, "payload": {}},
        {"x402Version": 2, "accepted": good_req, "payload": []},
        {"x402Version": 2, "accepted": good_req, "payload": {"type": "voucher"}},
        {"x402Version": 2, "accepted": good_req, "payload": {"type": "refund", "voucher": 1}},
        {
            "x402Version": 2,
            "accepted": good_req,
            "payload": {"type": "deposit", "channelConfig": {"withdrawDelay": "x"}},
        },
        {
            "x402Version": 2,
            "accepted": good_req,
            "payload": {"type": "voucher", "channelConfig": {"payer": [], "salt": {}}},
        },
        {
            "x402Version": 2,
            "accepted": good_req,
            "payload": {"type": "refund", "channelConfig": {"payer": [1]}, "amount": []},
        },
    ]
    headers = ["%%%", base64.b64encode(b"not json").decode(), "x" * 10_000]
    headers += [base64.b64encode(json.dumps(e).encode()).decode() for e in envelopes]

    async def go(url: str) -> list[int]:
        async with httpx.AsyncClient(timeout=30) as http:
            out = []
            for h in headers:
                r = await http.get(url + "/quote", headers={"PAYMENT-SIGNATURE": h})
                out.append(r.status_code)
                assert "PAYMENT-REQUIRED" in r.headers
            return out

    with serve_in_thread(app) as url:
        assert asyncio.run(go(url)) == [402] * len(headers)
    assert engine.records() == []


@FORMS
def test_a_failing_handler_charges_nothing_and_the_stream_goes_on(
    embedded: LocalWorld, tmp_path: Path, form: str
) -> None:
    """A handler that fails (503), raises (500) or a route that is not there (404): no charge, no
    PAYMENT-RESPONSE; the buyer's next voucher (from the same acknowledged total) is accepted."""
    d = embedded
    app, engine = seller(d, tmp_path / "seller.db", form)
    w = wallet(tmp_path)
    d.mint(w.address, 10**9)
    buyer = ChannelBuyer(w, chain_id=d.chain.chain_id, chain=d.chain)

    async def go(url: str) -> list[tuple[int, bool]]:
        out = []
        for path in ("/quote", "/broken", "/missing", "/quote", "/raises", "/broken", "/quote"):
            # a new connection each time: the server closes one whose handler raised
            async with httpx.AsyncClient(timeout=30) as http:
                r = await buyer.get(http, url + path)
            out.append((r.status_code, "PAYMENT-RESPONSE" in r.headers))
        return out

    with serve_in_thread(app) as url:
        results = asyncio.run(go(url))
    assert [code for code, _ in results] == [200, 503, 404, 200, 500, 503, 200]
    assert all(paid == (code == 200) for code, paid in results)
    (rec,) = engine.records()
    assert rec.charged == 3 * PRICE and rec.pending == 0
    engine.store.flush()
    on_disk = engine.store.get(rec.channel_id)
    assert on_disk is not None and (on_disk.charged, on_disk.pending) == (3 * PRICE, 0)


def test_a_fresh_buyer_pays_another_route_of_the_same_channel(
    embedded: LocalWorld, tmp_path: Path
) -> None:
    """A new process (same wallet, nothing in memory) pays a route at another price on the same
    channel: the ceiling it first tries was signed before at the old price, so it reuses that
    signature under its own ledger row; the seller's corrective 402 sets it right; every call
    is paid once."""
    d = embedded
    app, engine = seller(d, tmp_path / "seller.db")
    w = wallet(tmp_path)
    d.mint(w.address, 10**9)
    with serve_in_thread(app) as url:
        first = ChannelBuyer(w, chain_id=d.chain.chain_id, chain=d.chain)
        assert asyncio.run(calls(first, url + "/quote", 3)) == [200] * 3
        fresh = ChannelBuyer(w, chain_id=d.chain.chain_id, chain=d.chain)
        assert asyncio.run(calls(fresh, url + "/big", 2)) == [200] * 2
        assert asyncio.run(calls(fresh, url + "/quote", 1)) == [200]
    (rec,) = engine.records()
    assert rec.charged == 3 * PRICE + 2 * 3 * PRICE + PRICE
    vouchers = [r for r in w.ledger.records(w.name) if r.kind == "voucher"]
    assert sum(r.amount for r in vouchers if r.status == "settled") == rec.charged
