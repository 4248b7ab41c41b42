"""Batching mode: many concurrent settles, one ExactBatchSettler transaction, each answered alone;
an authorization whose simulation fails is refused before it enters a batch."""

from __future__ import annotations

import asyncio

import pytest
from eth_account import Account
from x402.schemas import PaymentPayload, PaymentRequirements
from x402_env import PayEnv, payment, requirements, sign_authorization

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.payments.batch import batching_facilitator, deploy_batch_settler

pytestmark = pytest.mark.anvil


def test_batch_settles_each_once_and_skips_bad_ones(pay_env: PayEnv) -> None:
    settler = deploy_batch_settler(pay_env.chain, dev_account(0))
    gas = dev_account(6)
    fac = batching_facilitator(
        pay_env.chain, gas, settler=settler, store_path=pay_env.tmp / "batch.db", window=1.0
    )
    good = [sign_authorization(pay_env, pay_env.payer, value=10) for _ in range(9)]
    # signed correctly but unfunded: its simulation fails, so it never enters the batch (no gas
    # spent on it) and does not sink the others
    pauper = sign_authorization(pay_env, Account.create(), value=10)
    req = PaymentRequirements.model_validate(requirements(pay_env, 10))

    def pp(p: dict[str, object]) -> PaymentPayload:
        return PaymentPayload.model_validate(payment(pay_env, p, 10))

    before = pay_env.balance(pay_env.seller)

    async def go():  # type: ignore[no-untyped-def]
        results = await asyncio.gather(
            *(fac.settle(pp(p), req) for p in [*good, *good[:3], pauper])
        )
        again = await fac.settle(pp(good[0]), req)
        return results[:-1], results[-1], again

    results, failed, again = asyncio.run(go())
    assert not failed.success
    assert failed.error_reason == "invalid_exact_evm_insufficient_balance"
    assert failed.transaction == ""  # refused before anything was signed or sent
    assert all(r.success for r in results), results
    txs = {r.transaction for r in results}
    assert len(txs) == 1  # one transaction for the whole batch
    assert again.success and again.transaction in txs
    assert pay_env.balance(pay_env.seller) == before + 90
    receipt = pay_env.chain.w3.eth.get_transaction_receipt(txs.pop())
    assert receipt["to"] == settler
    assert fac.metrics()["batches"] == 1


def test_batch_settler_contract_directly(pay_env: PayEnv) -> None:
    from web3.logs import DISCARD

    from agentbazaar.chain.compiler import compile_contract
    from agentbazaar.errors import TransactionReverted
    from agentbazaar.payments.eip3009 import parse_authorization

    settler_address = deploy_batch_settler(pay_env.chain, dev_account(0))
    settler = pay_env.chain.contract(settler_address, compile_contract("ExactBatchSettler").abi)

    def row(p: dict[str, object]) -> tuple[object, ...]:
        a = parse_authorization(p)
        v, r, s = a.vrs
        return (a.payer, a.to, a.value, a.valid_after, a.valid_before, a.nonce, v, r, s)

    good = row(sign_authorization(pay_env, pay_env.payer, value=3))
    bad = row(sign_authorization(pay_env, Account.create(), value=3))  # unfunded
    caller = dev_account(8)
    with pytest.raises(TransactionReverted, match="no code"):
        pay_env.chain.transact(caller, settler.functions.settle(pay_env.seller, [good]))
    assert settler.functions.settle(pay_env.token.address, [good, bad, good]).call() == 1
    before = pay_env.balance(pay_env.seller)
    receipt = pay_env.chain.transact(
        caller, settler.functions.settle(pay_env.token.address, [good, bad, good])
    )
    assert receipt["status"] == 1
    assert pay_env.balance(pay_env.seller) == before + 3  # the repeat of `good` was skipped
    event = settler.events.BatchSettled().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (event["submitted"], event["settled"]) == (3, 1)
