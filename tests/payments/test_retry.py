"""A retry after the client gave up: the seller settles anyway, and the retry with the same
idempotency key gets the first response and its settlement (the ledger row becomes settled with
the transaction), never a second service and never a ``nonce_already_used`` 402. A resend that
is not a genuine retry (no payment identifier, or another body) is refused."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from x402.schemas import PaymentPayload
from x402_env import PayEnv, header_of

from agentbazaar.errors import PaymentError
from agentbazaar.loopback import serve_in_thread
from agentbazaar.payments.client import AcceptedToken, PaidResponse, PayingClient
from agentbazaar.payments.once import RetainedResponses
from agentbazaar.payments.payers import WalletPayer
from agentbazaar.payments.server import RoutePrice, install_paywall
from agentbazaar.wallet import Ledger, SpendingPolicy, TokenLimits, Wallet
from agentbazaar.wallet.policy import token_key

pytestmark = pytest.mark.anvil
PRICE = 2000


class Job:
    """A paid ``POST /work`` whose handler waits for ``gate``; ``served`` lists what it did."""

    def __init__(self, env: PayEnv, facilitator: str, responses: RetainedResponses) -> None:
        self.gate = threading.Event()
        self.served: list[str] = []
        self.app = FastAPI()

        @self.app.post("/work")
        async def work(request: Request) -> dict[str, Any]:
            job, body = secrets.token_hex(8), await request.body()
            self.served.append(job)
            await asyncio.to_thread(self.gate.wait, 30)
            return {"job": job, "input": body.decode()}

        install_paywall(
            self.app,
            [RoutePrice("POST /work", "0.002")],
            terms=env.terms(),
            facilitator=facilitator,
            responses=responses,
        )


@pytest.fixture
def job(pay_env: PayEnv, facilitator_url: str) -> Iterator[tuple[Job, str]]:
    j = Job(pay_env, facilitator_url, RetainedResponses(pay_env.tmp / "kept.db"))
    with serve_in_thread(j.app) as url:
        yield j, url
        j.gate.set()


def wallet(env: PayEnv, name: str) -> Wallet:
    policy = SpendingPolicy(
        tokens={token_key(str(env.token.address)): TokenLimits("USDC", 6, max_per_payment=5_000)}
    )
    return Wallet(name, env.payer, policy, Ledger(env.tmp / f"{name}.db"))


def pay(env: PayEnv, w: Wallet, url: str, key: str, *, read_timeout: float = 30.0) -> PaidResponse:
    async def go() -> PaidResponse:
        http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=read_timeout))
        accepted = [AcceptedToken(env.chain.network, str(env.token.address))]
        async with PayingClient(WalletPayer(w), accepted, http=http, retries=0) as client:
            return await client.request("POST", url, content=b"job-1", idempotency_key=key)

    return asyncio.run(go())


def wait_for_balance(env: PayEnv, address: str, target: int) -> None:
    deadline = time.monotonic() + 30
    while env.balance(address) != target:
        assert time.monotonic() < deadline, "the seller never settled"
        time.sleep(0.05)


def test_retry_after_a_client_timeout_gets_the_first_response(
    pay_env: PayEnv, job: tuple[Job, str]
) -> None:
    j, url = job
    w = wallet(pay_env, "timeout")
    before = pay_env.balance(pay_env.seller)
    with pytest.raises(PaymentError, match="cannot reach"):
        pay(pay_env, w, f"{url}/work", "job-1", read_timeout=0.5)  # gives up mid-handler
    record = w.ledger.get("timeout", "job-1")
    assert record is not None and record.status == "signed"
    j.gate.set()  # the handler finishes; the seller settles anyway
    wait_for_balance(pay_env, pay_env.seller, before + PRICE)

    again = pay(pay_env, w, f"{url}/work", "job-1")
    assert again.response.status_code == 200, again.response.text
    assert again.response.json() == {"job": j.served[0], "input": "job-1"}
    assert len(j.served) == 1  # served once
    assert again.payment is not None and again.payment.replayed and again.payment.success
    record = w.ledger.get("timeout", "job-1")
    assert record is not None and record.status == "settled"
    assert record.tx_hash == again.payment.transaction and record.tx_hash
    assert pay_env.balance(pay_env.seller) == before + PRICE


def test_a_retry_while_the_first_is_served_waits_for_its_response(
    pay_env: PayEnv, job: tuple[Job, str]
) -> None:
    j, url = job
    w = wallet(pay_env, "concurrent")
    before = pay_env.balance(pay_env.seller)
    with pytest.raises(PaymentError, match="cannot reach"):
        pay(pay_env, w, f"{url}/work", "job-2", read_timeout=0.5)
    timer = threading.Timer(0.5, j.gate.set)  # the first is still being served when we retry
    timer.start()
    try:
        again = pay(pay_env, w, f"{url}/work", "job-2")
    finally:
        timer.cancel()
    assert again.response.status_code == 200, again.response.text
    assert again.response.json()["job"] == j.served[0] and len(j.served) == 1
    assert pay_env.balance(pay_env.seller) == before + PRICE


def test_a_resend_that_is_not_the_same_request_is_refused(
    pay_env: PayEnv, job: tuple[Job, str]
) -> None:
    j, url = job
    j.gate.set()
    w = wallet(pay_env, "resend")
    first = pay(pay_env, w, f"{url}/work", "job-3")
    assert first.response.status_code == 200
    record = w.ledger.get("resend", "job-3")
    assert record is not None and record.payload is not None
    signed = PaymentPayload.model_validate(record.payload["x402"])
    stored = signed.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert stored["extensions"]["payment-identifier"]["info"]["id"]
    before = pay_env.balance(pay_env.seller)
    without_id = {k: v for k, v in stored.items() if k != "extensions"}
    for header, body in ((header_of(stored), b"other"), (header_of(without_id), b"job-1")):
        r = httpx.post(f"{url}/work", content=body, headers={"PAYMENT-SIGNATURE": header})
        assert r.status_code == 402, r.text
        assert r.json()["error"] == "invalid_exact_evm_nonce_already_used"
    # the genuine retry still gets the first response
    r = httpx.post(
        f"{url}/work", content=b"job-1", headers={"PAYMENT-SIGNATURE": header_of(stored)}
    )
    assert r.status_code == 200 and r.json() == first.response.json()
    assert len(j.served) == 1
    assert pay_env.balance(pay_env.seller) == before
