"""One authorization, one served request: the same PAYMENT-SIGNATURE on many connections, on
two routes, on two seller processes, through an SDK-only seller; a slow handler; a handler that
fails (the reservation comes back); the facilitator's reservation protocol as a property."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from x402 import x402ResourceServer
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.http.middleware.fastapi import payment_middleware
from x402.mechanisms.evm.exact import register_exact_evm_server
from x402.schemas import PaymentPayload, PaymentRequirements
from x402_env import PayEnv, header_of, payment, requirements, sign_authorization

from agentbazaar.chain.anvil import free_port
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.loopback import serve_in_thread
from agentbazaar.payments.example import create_example_app
from agentbazaar.payments.facilitator import Facilitator, exact_facilitator
from agentbazaar.payments.server import RoutePrice, install_paywall, route_config

pytestmark = pytest.mark.anvil
HERE = Path(__file__).parent
REFUSED = {"authorization_in_use", "invalid_exact_evm_nonce_already_used"}


def fire(urls: list[str], header: str, method: str = "GET") -> list[httpx.Response]:
    """Send ``header`` to every URL at once, one connection each."""

    def one(url: str) -> httpx.Response:
        return httpx.request(method, url, headers={"PAYMENT-SIGNATURE": header}, timeout=60)

    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(one, urls))


def assert_served_once(env: PayEnv, responses: list[httpx.Response], before: int) -> None:
    ok = [r for r in responses if r.status_code == 200]
    assert len(ok) == 1, [(r.status_code, r.text[:120]) for r in responses]
    for r in responses:
        if r.status_code != 200:
            assert r.status_code == 402, r.text
            assert r.json()["error"] in REFUSED, r.text
    assert env.balance(env.seller) == before + 1000


@pytest.fixture(scope="module")
def example(pay_env: PayEnv, facilitator_url: str) -> Iterator[str]:
    with serve_in_thread(create_example_app(pay_env.terms(), facilitator_url)) as url:
        yield url


def test_one_header_on_five_concurrent_requests_is_served_once(
    pay_env: PayEnv, example: str
) -> None:
    header = header_of(payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000)))
    before = pay_env.balance(pay_env.seller)
    assert_served_once(pay_env, fire([f"{example}/quote"] * 5, header), before)
    # the service keeps serving honest requests
    fresh = header_of(payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000)))
    assert fire([f"{example}/quote"], fresh)[0].status_code == 200


def slow_app(env: PayEnv, facilitator: str, calls: list[str], gate: threading.Event) -> FastAPI:
    """Two routes at the same price and payTo; each handler waits for ``gate``."""
    app = FastAPI()

    async def handler(name: str) -> dict[str, str]:
        calls.append(name)
        await asyncio.to_thread(gate.wait, 30)
        return {"route": name}

    @app.get("/a")
    async def a() -> dict[str, str]:
        return await handler("a")

    @app.get("/b")
    async def b() -> dict[str, str]:
        return await handler("b")

    prices = [RoutePrice("GET /a", "0.001"), RoutePrice("GET /b", "0.001")]
    install_paywall(app, prices, terms=env.terms(), facilitator=facilitator)
    return app


def test_two_routes_and_a_slow_handler_serve_one_request(
    pay_env: PayEnv, facilitator_url: str
) -> None:
    calls: list[str] = []
    gate = threading.Event()
    header = header_of(payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000)))
    before = pay_env.balance(pay_env.seller)
    with serve_in_thread(slow_app(pay_env, facilitator_url, calls, gate)) as url:
        timer = threading.Timer(1.0, gate.set)  # the handler takes a second
        timer.start()
        try:
            responses = fire([f"{url}/a", f"{url}/b", f"{url}/a", f"{url}/b"], header)
        finally:
            timer.cancel()
            gate.set()
    assert_served_once(pay_env, responses, before)
    assert len(calls) == 1


def start_seller(env: PayEnv, facilitator: str, responses: Path | None = None) -> tuple[Any, str]:
    port = free_port()
    args = [facilitator, str(port), env.chain.network, str(env.token.address), env.seller]
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "seller_proc.py"),
            *args,
            *([str(responses)] * bool(responses)),
        ],
        cwd=HERE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise AssertionError("the seller process did not start")
        time.sleep(0.1)


def stop(proc: Any) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_two_seller_processes_sharing_a_facilitator_serve_one_request(
    pay_env: PayEnv, facilitator_url: str
) -> None:
    sellers = [start_seller(pay_env, facilitator_url) for _ in range(2)]
    try:
        header = header_of(payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000)))
        before = pay_env.balance(pay_env.seller)
        urls = [f"{url}/quote" for _, url in sellers] * 3
        assert_served_once(pay_env, fire(urls, header), before)
        # and a replay later, at either process, is refused as used
        for _, url in sellers:
            late = fire([f"{url}/quote"], header)[0]
            assert late.status_code == 402
            assert late.json()["error"] == "invalid_exact_evm_nonce_already_used"
    finally:
        for proc, _ in sellers:
            stop(proc)


def sdk_only_app(env: PayEnv, facilitator_url: str) -> FastAPI:
    """A seller built only on the SDK (no paywall of ours), on our facilitator."""
    server = x402ResourceServer(HTTPFacilitatorClient(FacilitatorConfig(url=facilitator_url)))
    register_exact_evm_server(server, env.chain.network)
    mw = payment_middleware(
        {"GET /quote": route_config(RoutePrice("GET /quote", "0.001"), env.terms())}, server
    )
    app = FastAPI()

    @app.middleware("http")
    async def x402(request, call_next):  # type: ignore[no-untyped-def]
        return await mw(request, call_next)

    @app.get("/quote")
    async def quote() -> dict[str, str]:
        return {"from": "sdk"}

    return app


def test_an_sdk_only_seller_and_ours_on_one_facilitator_serve_one_request(
    pay_env: PayEnv, facilitator_url: str, example: str
) -> None:
    with serve_in_thread(sdk_only_app(pay_env, facilitator_url)) as sdk_url:
        header = header_of(payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000)))
        before = pay_env.balance(pay_env.seller)
        urls = [f"{sdk_url}/quote", f"{example}/quote"] * 3
        responses = fire(urls, header)
    ok = [r for r in responses if r.status_code == 200]
    assert len(ok) == 1, [(r.status_code, r.text[:100]) for r in responses]
    assert all(r.status_code == 402 for r in responses if r.status_code != 200)
    assert pay_env.balance(pay_env.seller) == before + 1000


def test_a_failed_handler_gives_the_authorization_back(
    pay_env: PayEnv, facilitator: Facilitator, facilitator_url: str
) -> None:
    """The handler fails (500): nothing served, nothing charged, and the lease is released, so
    the same authorization pays for the next attempt."""
    app = FastAPI()
    attempts: list[int] = []

    @app.get("/flaky")
    async def flaky() -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            from fastapi.responses import JSONResponse

            return JSONResponse({"error": "busy"}, status_code=503)
        return {"ok": True}

    install_paywall(
        app, [RoutePrice("GET /flaky", "0.001")], terms=pay_env.terms(), facilitator=facilitator_url
    )
    released_before = facilitator.metrics()["released"]
    header = header_of(payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000)))
    before = pay_env.balance(pay_env.seller)
    with serve_in_thread(app) as url:
        first = fire([f"{url}/flaky"], header)[0]
        assert first.status_code == 503
        assert pay_env.balance(pay_env.seller) == before
        again = fire([f"{url}/flaky"], header)[0]
    assert again.status_code == 200, again.text
    assert pay_env.balance(pay_env.seller) == before + 1000
    assert facilitator.metrics()["released"] == released_before + 1


# ---- the facilitator's reservation protocol, as a property -----------------------------------
@pytest.fixture(scope="module")
def reserving(pay_env: PayEnv) -> Facilitator:
    return exact_facilitator(pay_env.chain, dev_account(5), store_path=pay_env.tmp / "lease.db")


def _terms(env: PayEnv, seller: int) -> PaymentRequirements:
    req = requirements(env, 1000)
    req["maxTimeoutSeconds"] = 300 if seller < 2 else 60  # seller 2 prices on other terms
    return PaymentRequirements.model_validate(req)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rounds=st.lists(
        st.lists(
            st.tuples(st.integers(0, 2), st.sampled_from(["serve", "fail", "hold"])),
            min_size=1,
            max_size=4,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_at_most_one_request_is_served_per_authorization(
    pay_env: PayEnv, reserving: Facilitator, rounds: list[list[tuple[int, str]]]
) -> None:
    """Rounds of concurrent requests carrying one authorization, at three sellers (two on the
    same terms): each verifies; a verified one is served (settled), fails (released) or hangs
    (keeps its lease). At most one is ever served, money moves once, refusals are typed."""
    pp = PaymentPayload.model_validate(
        payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000))
    )
    before = pay_env.balance(pay_env.seller)
    served: list[int] = []
    reasons: set[str] = set()

    async def attempt(seller: int, outcome: str) -> None:
        req = _terms(pay_env, seller)
        verified = await reserving.verify(pp, req)
        if not verified.is_valid:
            reasons.add(str(verified.invalid_reason))
            return
        if outcome == "fail":
            token = (verified.extra or {})["reservation"]
            assert await reserving.release(pp, req, token)
        elif outcome == "serve":
            settled = await reserving.settle(pp, req)
            assert settled.success, settled
            served.append(seller)

    async def run() -> None:
        for attempts in rounds:
            await asyncio.gather(*(attempt(s, o) for s, o in attempts))

    asyncio.run(run())
    assert len(served) <= 1
    assert reasons <= REFUSED
    assert pay_env.balance(pay_env.seller) == before + 1000 * len(served)
    txs = set()
    for seller in range(3):  # late settles (a held lease finishing, or anyone) move money once
        again = asyncio.run(reserving.settle(pp, _terms(pay_env, seller)))
        if again.success:
            txs.add(again.transaction)
    assert len(txs) <= 1
    assert pay_env.balance(pay_env.seller) == before + (1000 if served or txs else 0)


def test_release_needs_the_lease_token(pay_env: PayEnv, reserving: Facilitator) -> None:
    pp = PaymentPayload.model_validate(
        payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000))
    )
    req = _terms(pay_env, 0)

    async def go() -> tuple[bool, bool, bool]:
        verified = await reserving.verify(pp, req)
        assert verified.is_valid
        wrong = await reserving.release(pp, req, "0" * 32)
        second = await reserving.verify(pp, req)
        right = await reserving.release(pp, req, (verified.extra or {})["reservation"])
        return wrong, second.is_valid, right

    wrong, second_valid, right = asyncio.run(go())
    assert not wrong and not second_valid and right
    assert asyncio.run(reserving.verify(pp, req)).is_valid  # free again after the release


def test_a_reservation_is_settled_only_for_its_terms(
    pay_env: PayEnv, reserving: Facilitator
) -> None:
    pp = PaymentPayload.model_validate(
        payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000))
    )
    before = pay_env.balance(pay_env.seller)
    assert asyncio.run(reserving.verify(pp, _terms(pay_env, 0))).is_valid
    other = asyncio.run(reserving.settle(pp, _terms(pay_env, 2)))
    assert not other.success and other.error_reason == "authorization_in_use"
    assert pay_env.balance(pay_env.seller) == before
    mine = asyncio.run(reserving.settle(pp, _terms(pay_env, 0)))
    assert mine.success and pay_env.balance(pay_env.seller) == before + 1000


def test_two_signatures_for_one_nonce_settled_at_once_succeed_once(
    pay_env: PayEnv, reserving: Facilitator
) -> None:
    """Attack: the payer signs two authorizations with the same nonce (different validBefore,
    so different signatures) and settles both at the same moment: one success, the other
    refused as a used nonce (never a share of the first one's success); money moves once."""
    nonce = os.urandom(32)
    now = int(time.time())
    payloads = [
        PaymentPayload.model_validate(
            payment(
                pay_env,
                sign_authorization(
                    pay_env, pay_env.payer, value=1000, nonce=nonce, valid_before=now + ttl
                ),
            )
        )
        for ttl in (300, 301)
    ]
    assert payloads[0].payload["signature"] != payloads[1].payload["signature"]
    req = _terms(pay_env, 0)
    before = pay_env.balance(pay_env.seller)

    async def both() -> list[Any]:
        return list(await asyncio.gather(*(reserving.settle(pp, req) for pp in payloads)))

    answers = asyncio.run(both())
    assert sum(a.success for a in answers) == 1, answers
    refused = next(a for a in answers if not a.success)
    assert refused.error_reason == "invalid_exact_evm_nonce_already_used", refused
    assert pay_env.balance(pay_env.seller) == before + 1000
