"""Property: whatever mix of settles, repeats and concurrent retries arrives, every authorization
moves money at most once, every success for it names the same transaction, and the seller's
balance grows by exactly the sum of the settled authorizations."""

from __future__ import annotations

import asyncio

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse
from x402_env import PayEnv, payment, requirements, sign_authorization

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.payments.facilitator import Facilitator, exact_facilitator

pytestmark = pytest.mark.anvil

PAUPER = Account.create()
ops = st.lists(
    st.one_of(
        st.tuples(st.just("new"), st.integers(1, 50), st.booleans()),  # value, funded payer?
        st.tuples(st.just("again"), st.integers(0, 7), st.integers(1, 4)),  # which, how many
    ),
    min_size=1,
    max_size=8,
)


@pytest.fixture(scope="module")
def in_process(pay_env: PayEnv) -> Facilitator:
    return exact_facilitator(pay_env.chain, dev_account(7), store_path=pay_env.tmp / "prop.db")


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(script=ops)
def test_every_authorization_settles_at_most_once(
    pay_env: PayEnv, in_process: Facilitator, script: list[tuple[str, int, object]]
) -> None:
    signed: list[tuple[PaymentPayload, PaymentRequirements, int, bool]] = []
    results: dict[int, list[SettleResponse]] = {}
    before = pay_env.balance(pay_env.seller)

    async def run() -> None:
        for op, a, b in script:
            if op == "new":
                signer = pay_env.payer if b else PAUPER
                p = sign_authorization(pay_env, signer, value=a)
                signed.append(
                    (
                        PaymentPayload.model_validate(payment(pay_env, p, a)),
                        PaymentRequirements.model_validate(requirements(pay_env, a)),
                        a,
                        bool(b),
                    )
                )
                i = len(signed) - 1
                results.setdefault(i, []).append(await in_process.settle(*signed[i][:2]))
            elif signed:
                i = a % len(signed)
                pp, rq, _, _ = signed[i]
                batch = await asyncio.gather(*(in_process.settle(pp, rq) for _ in range(int(b))))
                results.setdefault(i, []).extend(batch)

    asyncio.run(run())
    settled = 0
    for i, responses in results.items():
        txs = {r.transaction for r in responses if r.success}
        assert len(txs) <= 1, responses
        if not signed[i][3]:  # the unfunded payer never pays
            assert not txs and all(
                r.error_reason == "invalid_exact_evm_insufficient_balance" for r in responses
            ), responses
        if txs:
            settled += signed[i][2]
            assert all(r.success or r.error_reason == "settlement_pending" for r in responses)
    assert pay_env.balance(pay_env.seller) == before + settled


def test_a_cancelled_caller_does_not_cancel_its_settlement(
    pay_env: PayEnv, in_process: Facilitator
) -> None:
    p = sign_authorization(pay_env, pay_env.payer, value=17)
    pp = PaymentPayload.model_validate(payment(pay_env, p, 17))
    rq = PaymentRequirements.model_validate(requirements(pay_env, 17))
    before = pay_env.balance(pay_env.seller)

    async def go() -> SettleResponse:
        first = asyncio.ensure_future(in_process.settle(pp, rq))
        await asyncio.sleep(0.001)  # the settlement has started
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await in_process.settle(pp, rq)  # the retry joins (or reads) the same settlement

    result = asyncio.run(go())
    assert result.success
    assert pay_env.balance(pay_env.seller) == before + 17
