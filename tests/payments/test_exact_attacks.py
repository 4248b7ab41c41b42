"""Hostile payments to a running seller: look-alike tokens (same name and symbol, another
address), authorizations signed under wrong EIP-712 domains, and an authorization replayed on
another route after it paid. Each is refused with a typed reason, no funds move (balances read
on chain, in both tokens), nothing is recorded as paid, and honest payments go on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from web3.contract import Contract
from x402_env import PayEnv, header_of, payment, requirements, sign_authorization

from agentbazaar.chain.compiler import compile_contract
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.loopback import serve_in_thread
from agentbazaar.payments.example import create_example_app
from agentbazaar.payments.facilitator import Facilitator

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def lookalike(pay_env: PayEnv) -> Contract:
    """A second "USD Coin" (USDC, same EIP-712 name and version) at another address."""
    art = compile_contract("Stablecoin")
    fake, _ = pay_env.chain.deploy(
        dev_account(0), art.abi, art.bytecode, "USD Coin", "USDC", "USD Coin", "2", name="fake"
    )
    pay_env.chain.transact(dev_account(0), fake.functions.mint(pay_env.payer.address, 10**9))
    return fake


@pytest.fixture(scope="module")
def service(pay_env: PayEnv, facilitator_url: str) -> Iterator[str]:
    with serve_in_thread(create_example_app(pay_env.terms(), facilitator_url)) as url:
        yield url


def balances(env: PayEnv, fake: Contract) -> tuple[int, ...]:
    who = (env.payer.address, env.seller)
    return (
        *(env.balance(a) for a in who),
        *(int(fake.functions.balanceOf(a).call()) for a in who),
    )


def hostile(env: PayEnv, fake: Contract, case: str) -> dict[str, Any]:
    if case == "lookalike_asset":  # pays with the look-alike, says so
        p = payment(
            env,
            sign_authorization(
                env, env.payer, value=1000, domain={"verifyingContract": fake.address}
            ),
        )
        p["accepted"] = {**requirements(env), "asset": fake.address}
        return p
    domain = {
        "signed_for_lookalike": {"verifyingContract": fake.address},  # claims the real token
        "wrong_name": {"name": "USDC"},
        "wrong_version": {"version": "1"},
        "wrong_chain": {"chainId": 1},
        "wrong_contract": {"verifyingContract": "0x" + "00" * 19 + "01"},
    }[case]
    return payment(env, sign_authorization(env, env.payer, value=1000, domain=domain))


CASES = {
    "lookalike_asset": "payment_terms_mismatch",
    "signed_for_lookalike": "invalid_exact_evm_payload_signature",
    "wrong_name": "invalid_exact_evm_payload_signature",
    "wrong_version": "invalid_exact_evm_payload_signature",
    "wrong_chain": "invalid_exact_evm_payload_signature",
    "wrong_contract": "invalid_exact_evm_payload_signature",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_lookalike_tokens_and_wrong_domains_are_refused(
    pay_env: PayEnv, lookalike: Contract, service: str, facilitator: Facilitator, case: str
) -> None:
    before, settled = balances(pay_env, lookalike), facilitator.metrics()["settled"]
    header = header_of(hostile(pay_env, lookalike, case))
    for path in ("/quote", "/echo"):
        method = "GET" if path == "/quote" else "POST"
        r = httpx.request(method, f"{service}{path}", headers={"PAYMENT-SIGNATURE": header})
        assert r.status_code == 402, r.text
        # /echo costs 0.002: a payment of 0.001 is for other terms before anything else
        expected = CASES[case] if path == "/quote" else "payment_terms_mismatch"
        assert r.json()["error"] == expected, r.text
        assert "quote_id" not in r.text and "echo" not in r.json()
    assert balances(pay_env, lookalike) == before  # no funds moved, in either token
    assert facilitator.metrics()["settled"] == settled  # nothing recorded as paid
    honest = header_of(payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000)))
    assert httpx.get(f"{service}/quote", headers={"PAYMENT-SIGNATURE": honest}).status_code == 200


def test_an_authorization_that_paid_is_refused_on_every_other_route(
    pay_env: PayEnv, lookalike: Contract, service: str, facilitator: Facilitator
) -> None:
    header = header_of(payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000)))
    assert httpx.get(f"{service}/quote", headers={"PAYMENT-SIGNATURE": header}).status_code == 200
    before, settled = balances(pay_env, lookalike), facilitator.metrics()["settled"]
    for _ in range(3):
        again = httpx.get(f"{service}/quote", headers={"PAYMENT-SIGNATURE": header})
        assert again.status_code == 402
        assert again.json()["error"] == "invalid_exact_evm_nonce_already_used"
    other = httpx.post(f"{service}/echo", content=b"x", headers={"PAYMENT-SIGNATURE": header})
    assert other.status_code == 402  # another price: other terms, and used anyway
    assert balances(pay_env, lookalike) == before
    assert facilitator.metrics()["settled"] == settled
