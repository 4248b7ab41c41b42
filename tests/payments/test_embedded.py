"""The facilitator on the embedded chain (py-evm), in-process: verify, settle once, refuse reuse."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from eth_account import Account
from x402.schemas import PaymentPayload, PaymentRequirements
from x402_env import PayEnv, payment, requirements, sign_authorization

from agentbazaar.chain import Chain
from agentbazaar.chain.compiler import compile_contract
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.payments.facilitator import exact_facilitator
from agentbazaar.tokens import Token


def test_exact_on_the_embedded_chain() -> None:
    chain = Chain.embedded()
    for i in (0, 1, 2):
        chain.fund_native(dev_account(i).address, 10**20)
    art = compile_contract("Stablecoin")
    usdc, _ = chain.deploy(
        dev_account(0), art.abi, art.bytecode, "USD Coin", "USDC", "USD Coin", "2", name="USDC"
    )
    env = PayEnv(
        chain,
        Token("USDC", 6, usdc.address, "USD Coin", "2"),
        usdc,
        dev_account(1),
        dev_account(2),
        Account.create().address,
        Path(tempfile.mkdtemp()),
    )
    env.fund(env.payer, 5_000)
    fac = exact_facilitator(chain, env.gas, store_path=env.tmp / "s.db")
    assert [k.network for k in fac.get_supported().kinds] == [f"eip155:{chain.chain_id}"]
    req = PaymentRequirements.model_validate(requirements(env, 3_000))

    def pp(p: dict[str, object]) -> PaymentPayload:
        return PaymentPayload.model_validate(payment(env, p, 3_000))

    good = pp(sign_authorization(env, env.payer, value=3_000))
    second = pp(sign_authorization(env, env.payer, value=3_000))  # more than is left after one

    async def go():  # type: ignore[no-untyped-def]
        v = await fac.verify(good, req)
        s1 = await fac.settle(good, req)
        s2 = await fac.settle(good, req)
        v2 = await fac.verify(good, req)
        v3 = await fac.verify(second, req)
        return v, s1, s2, v2, v3

    v, s1, s2, v2, v3 = asyncio.run(go())
    assert v.is_valid and s1.success and s2.success and s1.transaction == s2.transaction
    assert env.balance(env.seller) == 3_000
    assert not v2.is_valid and v2.invalid_reason == "invalid_exact_evm_nonce_already_used"
    assert not v3.is_valid and v3.invalid_reason == "invalid_exact_evm_insufficient_balance"
