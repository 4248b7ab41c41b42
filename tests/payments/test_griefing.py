"""Griefing the facilitator: a payer who moves its funds away between verify and settle must not
make the facilitator broadcast a reverting transfer (gas from its account); repeated, the payer
is throttled, and ``/metrics`` counts it. Honest payers keep being served."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from x402.schemas import PaymentPayload, PaymentRequirements
from x402_env import PayEnv, payment, requirements, sign_authorization

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.loopback import serve_in_thread
from agentbazaar.payments.facilitator import create_app, exact_facilitator
from agentbazaar.payments.throttle import PayerThrottle

pytestmark = pytest.mark.anvil


def griefer(env: PayEnv) -> LocalAccount:
    account: LocalAccount = Account.create()
    env.chain.fund_native(account.address, 10**18)
    env.fund(account, 1000)
    return account


def test_funds_moved_after_verify_never_burn_the_facilitators_gas(pay_env: PayEnv) -> None:
    gas = dev_account(6)
    fac = exact_facilitator(pay_env.chain, gas, store_path=pay_env.tmp / "grief.db")
    bad = griefer(pay_env)
    accomplice = Account.create().address
    req = PaymentRequirements.model_validate(requirements(pay_env, 1000))
    w3 = pay_env.chain.w3
    seller_before = pay_env.balance(pay_env.seller)

    with serve_in_thread(create_app(fac)) as url:
        for _ in range(3):
            pp = PaymentPayload.model_validate(
                payment(pay_env, sign_authorization(pay_env, bad, value=1000))
            )
            assert asyncio.run(fac.verify(pp, req)).is_valid
            # between verify and settle the payer empties its balance
            pay_env.chain.transact(bad, pay_env.usdc.functions.transfer(accomplice, 1000))
            nonce, eth = w3.eth.get_transaction_count(gas.address), w3.eth.get_balance(gas.address)
            settled = asyncio.run(fac.settle(pp, req))
            assert not settled.success and not settled.transaction
            assert settled.error_reason == "invalid_exact_evm_insufficient_balance"
            assert w3.eth.get_transaction_count(gas.address) == nonce  # nothing broadcast
            assert w3.eth.get_balance(gas.address) == eth  # no gas burned
            pay_env.fund(bad, 1000)  # and it comes back for another round
        metrics = httpx.get(f"{url}/metrics").json()

        # throttled now: refused at verify, with a typed reason
        pp = PaymentPayload.model_validate(
            payment(pay_env, sign_authorization(pay_env, bad, value=1000))
        )
        refused = asyncio.run(fac.verify(pp, req))
        assert not refused.is_valid and refused.invalid_reason == "payer_throttled"
        assert httpx.get(f"{url}/metrics").json()["throttled"] == 1

        # an honest payer is still served
        honest = PaymentPayload.model_validate(
            payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000))
        )
        assert asyncio.run(fac.verify(honest, req)).is_valid
        assert asyncio.run(fac.settle(honest, req)).success
    assert metrics["not_broadcast"] == 3 and metrics["payers_with_failures"] == 1
    assert pay_env.balance(pay_env.seller) == seller_before + 1000


# ---- the throttle alone ----------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_counts_failures_in_a_sliding_window() -> None:
    clock = Clock()
    throttle = PayerThrottle(max_failures=2, window_s=60, clock=clock)
    payer = "0x" + "ab" * 20
    throttle.record_failure(payer)
    assert not throttle.throttled(payer)
    clock.now += 30
    throttle.record_failure(payer.upper().replace("0X", "0x"))  # one payer, any case
    assert throttle.throttled(payer) and throttle.refused == 1
    assert 29 < throttle.retry_after(payer) <= 30
    clock.now += 31  # the first failure left the window
    assert not throttle.throttled(payer)
    clock.now += 60
    assert not throttle.throttled(payer) and len(throttle) == 0


def test_throttle_memory_is_bounded() -> None:
    throttle = PayerThrottle(max_failures=3, max_payers=100, clock=Clock())
    for i in range(1000):
        for _ in range(5):
            throttle.record_failure(f"0x{i:040x}")
    assert len(throttle) == 100
    assert throttle.throttled(f"0x{999:040x}")  # the most recent are kept
    assert not throttle.throttled(f"0x{0:040x}")  # the oldest were forgotten
