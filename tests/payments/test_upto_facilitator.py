"""Our facilitator's ``upto`` and Permit2 ``exact`` on the embedded chain, with payloads made by
the SDK's own client schemes: settled <= authorized, once, durably; every bad input a typed
refusal with nothing moved and nothing recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st
from upto_env import UptoEnv, setup_chain
from x402.mechanisms.evm import constants as c
from x402.schemas import PaymentPayload, PaymentRequirements

from agentbazaar.chain import Chain
from agentbazaar.chain.devkeys import dev_account
from agentbazaar.payments import permit2
from agentbazaar.payments.facilitator import Facilitator
from agentbazaar.payments.store import SettlementKey, SettlementStore

MAX = 5_000


@pytest.fixture(scope="module")
def env() -> Iterator[UptoEnv]:
    yield setup_chain(Chain.embedded())


@pytest.fixture
def fac(env: UptoEnv, tmp_path: Path) -> Facilitator:
    return env.facilitator(tmp_path / "settlements.db")


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def at(req: PaymentRequirements, amount: int) -> PaymentRequirements:
    """The requirement as the seller's resource server sends it to settle: the used amount."""
    return req.model_copy(update={"amount": str(amount)})


def stored(tmp_path: Path, env: UptoEnv, payload: PaymentPayload) -> bool:
    nonce = int(payload.payload["permit2Authorization"]["nonce"])
    key = SettlementKey.of(
        env.chain.network, permit2.PERMIT2_ADDRESS, env.payer.address, f"0x{nonce:064x}"
    )
    return SettlementStore(tmp_path / "settlements.db").get(key) is not None


def test_supported_advertises_upto_with_the_facilitator_address(
    env: UptoEnv, fac: Facilitator
) -> None:
    kinds = {k.scheme: k for k in fac.get_supported().kinds}
    assert set(kinds) == {"exact", "upto"}
    assert kinds["upto"].extra == {"facilitatorAddress": env.gas.address}


def test_upto_settles_the_used_amount_once(env: UptoEnv, fac: Facilitator, tmp_path: Path) -> None:
    req = env.requirement(MAX)
    payload = env.pay(req)
    seller, payer = env.balance(env.seller), env.balance(env.payer.address)
    verified = run(fac.verify(payload, req))
    assert verified.is_valid and verified.payer == env.payer.address
    first = run(fac.settle(payload, at(req, 1234)))
    assert first.success and first.amount == "1234" and first.transaction.startswith("0x")
    assert env.balance(env.seller) == seller + 1234
    assert env.balance(env.payer.address) == payer - 1234
    again = run(fac.settle(payload, at(req, 1234)))  # a retry: the first result, no new payment
    assert again.success and again.transaction == first.transaction
    other = run(fac.settle(payload, at(req, 10)))  # never a second settlement, whatever the amount
    assert not other.success and other.error_reason == permit2.ERR_INVALID_NONCE
    replay = run(fac.verify(payload, req))
    assert not replay.is_valid and replay.invalid_reason == permit2.ERR_INVALID_NONCE
    assert env.balance(env.seller) == seller + 1234
    # a new facilitator on the same store (a restart) answers the same
    restarted = env.facilitator(tmp_path / "settlements.db")
    assert restarted.recover() == 0
    assert run(restarted.settle(payload, at(req, 1234))).transaction == first.transaction
    assert env.balance(env.seller) == seller + 1234


def test_above_the_maximum_is_refused_and_nothing_recorded(
    env: UptoEnv, fac: Facilitator, tmp_path: Path
) -> None:
    req = env.requirement(MAX)
    payload = env.pay(req)
    seller = env.balance(env.seller)
    over = run(fac.settle(payload, at(req, MAX + 1)))
    assert not over.success and over.error_reason == c.ERR_UPTO_SETTLEMENT_EXCEEDS_AMOUNT
    assert env.balance(env.seller) == seller and not stored(tmp_path, env, payload)
    exact = run(fac.settle(payload, at(req, MAX)))  # the maximum itself is fine
    assert exact.success and env.balance(env.seller) == seller + MAX


def test_zero_usage_settles_nothing_and_spends_the_permit(env: UptoEnv, fac: Facilitator) -> None:
    req = env.requirement(MAX)
    payload = env.pay(req)
    seller = env.balance(env.seller)
    zero = run(fac.settle(payload, at(req, 0)))
    assert zero.success and zero.transaction == "" and zero.amount == "0"
    later = run(fac.settle(payload, at(req, 100)))
    assert not later.success and later.error_reason == permit2.ERR_INVALID_NONCE
    assert env.balance(env.seller) == seller


def _tampered(payload: PaymentPayload, **changes: str) -> PaymentPayload:
    inner = {**payload.payload}
    auth = {
        **inner["permit2Authorization"],
        "witness": {**inner["permit2Authorization"]["witness"]},
    }
    for key, value in changes.items():
        if key in ("to", "facilitator", "validAfter"):
            auth["witness"][key] = value
        else:
            auth[key] = value
    inner["permit2Authorization"] = auth
    return payload.model_copy(update={"payload": inner})


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"spender": permit2.EXACT_PROXY_ADDRESS}, c.ERR_PERMIT2_INVALID_SPENDER),
        ({"to": dev_account(5).address}, c.ERR_PERMIT2_RECIPIENT_MISMATCH),
        ({"facilitator": dev_account(5).address}, c.ERR_UPTO_FACILITATOR_MISMATCH),
        ({"deadline": "1000"}, c.ERR_PERMIT2_DEADLINE_EXPIRED),
        ({"validAfter": "99999999999"}, c.ERR_PERMIT2_NOT_YET_VALID),
        ({"nonce": "12345"}, c.ERR_PERMIT2_INVALID_SIGNATURE),  # signed over another nonce
        ({"from": dev_account(4).address}, c.ERR_PERMIT2_INVALID_SIGNATURE),
        ({"nonce": "0x12"}, "invalid_payload"),
    ],
)
def test_bad_permits_are_typed_refusals(
    env: UptoEnv, fac: Facilitator, change: dict[str, str], reason: str
) -> None:
    req = env.requirement(MAX)
    bad = _tampered(env.pay(req), **change)
    seller = env.balance(env.seller)
    verified = run(fac.verify(bad, req))
    assert not verified.is_valid and verified.invalid_reason == reason
    settled = run(fac.settle(bad, at(req, 100)))
    assert not settled.success and settled.error_reason == reason
    assert env.balance(env.seller) == seller


def test_requirements_that_do_not_match_the_payment(env: UptoEnv, fac: Facilitator) -> None:
    req = env.requirement(MAX)
    payload = env.pay(req)
    cases = [
        (
            req.model_copy(update={"pay_to": dev_account(5).address}),
            c.ERR_PERMIT2_RECIPIENT_MISMATCH,
        ),
        (req.model_copy(update={"amount": str(MAX + 1)}), c.ERR_PERMIT2_AMOUNT_MISMATCH),
        (req.model_copy(update={"asset": permit2.PERMIT2_ADDRESS}), c.ERR_PERMIT2_TOKEN_MISMATCH),
        (req.model_copy(update={"scheme": "exact"}), c.ERR_UNSUPPORTED_SCHEME),
        (req.model_copy(update={"network": "eip155:1"}), "unsupported_scheme"),
    ]
    for wrong, reason in cases:
        result = run(fac.verify(payload, wrong))
        assert not result.is_valid and result.invalid_reason == reason, wrong
    assert run(fac.verify(payload, req)).is_valid


def test_the_nonce_of_another_settled_permit_is_refused(env: UptoEnv, fac: Facilitator) -> None:
    req = env.requirement(MAX)
    first = env.pay(req)
    assert run(fac.settle(first, at(req, 1))).success
    second = env.pay(req)  # a new permit by the same payer, re-signed over the used nonce
    from eth_account.messages import encode_typed_data

    auth = dict(second.payload["permit2Authorization"])
    auth["nonce"] = first.payload["permit2Authorization"]["nonce"]
    message = {
        "permitted": {"token": auth["permitted"]["token"], "amount": int(auth["permitted"]["amount"])},
        "spender": auth["spender"], "nonce": int(auth["nonce"]), "deadline": int(auth["deadline"]),
        "witness": {"to": auth["witness"]["to"], "facilitator": auth["witness"]["facilitator"], "validAfter": 0},
    }  # fmt: skip
    signable = encode_typed_data(
        domain_data={"name": "Permit2", "chainId": env.chain.chain_id, "verifyingContract": permit2.PERMIT2_ADDRESS},
        message_types=c.UPTO_PERMIT2_WITNESS_TYPES,
        message_data=message,
    )  # fmt: skip
    signature = env.payer.sign_message(signable).signature.hex()
    reused = second.model_copy(
        update={
            "payload": {
                "permit2Authorization": auth,
                "signature": "0x" + signature.removeprefix("0x"),
            }
        }
    )
    result = run(fac.verify(reused, req))
    assert not result.is_valid and result.invalid_reason == permit2.ERR_INVALID_NONCE


def test_allowance_and_balance_are_diagnosed(env: UptoEnv, fac: Facilitator) -> None:
    funded, approved = dev_account(4), dev_account(5)
    env.fund(funded.address)
    env.approve_permit2(approved)
    req = env.requirement(MAX)
    no_allowance = run(fac.verify(env.pay(req, funded), req))
    assert no_allowance.invalid_reason == c.ERR_PERMIT2_ALLOWANCE_REQUIRED
    poor = run(fac.verify(env.pay(req, approved), req))
    assert poor.invalid_reason == c.ERR_PERMIT2_INSUFFICIENT_BALANCE


def test_exact_with_permit2(env: UptoEnv, fac: Facilitator) -> None:
    """Tokens without EIP-3009: the SDK's exact client signs for the exact proxy when the
    requirement says assetTransferMethod=permit2; our facilitator settles the exact price once."""
    req = env.requirement(700, scheme="exact", assetTransferMethod="permit2")
    payload = env.pay(req)
    assert "permit2Authorization" in payload.payload
    seller = env.balance(env.seller)
    assert run(fac.verify(payload, req)).is_valid
    first = run(fac.settle(payload, req))
    assert first.success and env.balance(env.seller) == seller + 700
    assert run(fac.settle(payload, req)).transaction == first.transaction
    cheaper = run(fac.settle(payload, at(req, 600)))  # exact moves the price, nothing else
    assert not cheaper.success and cheaper.error_reason == c.ERR_PERMIT2_AMOUNT_MISMATCH
    assert env.balance(env.seller) == seller + 700


def test_concurrent_settles_of_one_permit_pay_once(env: UptoEnv, fac: Facilitator) -> None:
    req = env.requirement(MAX)
    payload = env.pay(req)
    seller = env.balance(env.seller)

    async def many() -> list[str]:
        results = await asyncio.gather(*(fac.settle(payload, at(req, 777)) for _ in range(8)))
        assert all(r.success for r in results)
        return [r.transaction for r in results]

    assert len(set(run(many()))) == 1
    assert env.balance(env.seller) == seller + 777


@settings(max_examples=15, deadline=None)
@given(
    maximum=st.integers(min_value=1, max_value=10**6),
    used=st.integers(min_value=0, max_value=2 * 10**6),
)
def test_settled_never_exceeds_authorized(env: UptoEnv, maximum: int, used: int) -> None:
    fac = env.facilitator()
    req = env.requirement(maximum)
    payload = env.pay(req)
    seller = env.balance(env.seller)
    result = run(fac.settle(payload, at(req, used)))
    moved = env.balance(env.seller) - seller
    assert result.success == (used <= maximum)
    assert moved == (used if used <= maximum else 0)
    assert moved <= maximum


def test_eoa_exact_still_takes_the_eip3009_path(env: UptoEnv, fac: Facilitator) -> None:
    req = env.requirement(300, scheme="exact")
    payload = env.pay(req)
    assert "authorization" in payload.payload
    seller = env.balance(env.seller)
    assert run(fac.verify(payload, req)).is_valid
    assert run(fac.settle(payload, req)).success
    assert env.balance(env.seller) == seller + 300
    assert fac.metrics()["settled"] >= 1  # counted by the EIP-3009 handler behind the router


def test_suite_step_places_permit2_and_the_proxies(env: UptoEnv) -> None:
    from agentbazaar.chain.compiler import compile_contract
    from agentbazaar.deployment import SUITE
    from agentbazaar.payments.deployment import PLACE_PERMIT2

    assert PLACE_PERMIT2 in SUITE
    assert permit2.deployed(env.chain)
    contract = env.chain.contract(permit2.PERMIT2_ADDRESS, compile_contract("Permit2").abi)
    assert contract.functions.DOMAIN_SEPARATOR().call() == permit2.domain_separator(
        env.chain.chain_id
    )
    for proxy, name in (
        (permit2.UPTO_PROXY_ADDRESS, "X402UptoPermit2Proxy"),
        (permit2.EXACT_PROXY_ADDRESS, "X402ExactPermit2Proxy"),
    ):
        fns = env.chain.contract(proxy, compile_contract(name).abi).functions
        assert fns.PERMIT2().call() == permit2.PERMIT2_ADDRESS
    before = env.chain.block_number()
    permit2.install(env.chain, dev_account(0))  # idempotent: the code is already in place
    assert permit2.deployed(env.chain) and env.chain.block_number() >= before


def test_sdk_upto_client_pays_the_example_on_the_embedded_chain(
    env: UptoEnv, fac: Facilitator
) -> None:
    import httpx
    from x402 import x402Client
    from x402.http import decode_payment_response_header
    from x402.http.clients.httpx import x402HttpxClient
    from x402.mechanisms.evm.upto import UptoEvmClientScheme

    from agentbazaar.loopback import serve_in_thread
    from agentbazaar.payments.example import create_example_app
    from agentbazaar.payments.server import PaymentTerms

    terms = PaymentTerms(network=env.chain.network, token=env.token, pay_to=env.seller)
    client = x402Client().register(env.chain.network, UptoEvmClientScheme(env.payer))
    allowed = {
        "network": env.chain.network,
        "asset": str(env.usdc.address),
        "max_amount_per_payment": "5000",
    }
    client.set_spend_controls({"allowed_assets": [allowed]})
    seller = env.balance(env.seller)

    async def go(url: str) -> httpx.Response:
        async with x402HttpxClient(client) as http:
            return await http.post(f"{url}/echo", content=b"12345")

    with serve_in_thread(create_example_app(terms, fac)) as url:
        paid = run(go(url))
    assert paid.status_code == 200
    assert decode_payment_response_header(paid.headers["PAYMENT-RESPONSE"]).amount == "5"
    assert env.balance(env.seller) == seller + 5


def test_a_settlement_signed_before_a_crash_is_broadcast_at_restart(
    env: UptoEnv, tmp_path: Path
) -> None:
    """The process died after recording the signed transaction and before broadcasting it:
    start-up recovery sends the same bytes, and a repeated settle answers with that payment."""
    req = env.requirement(MAX)
    payload = env.pay(req)
    auth = permit2.parse_permit2(payload.payload, upto=True)
    tx = {
        "to": permit2.UPTO_PROXY_ADDRESS,
        "data": permit2.settle_calldata(auth, 321, auth.signature),
        "gas": 300_000,
        "nonce": env.chain.w3.eth.get_transaction_count(env.gas.address, "pending"),
        "chainId": env.chain.chain_id,
        **env.chain.fee_params(),
    }
    signed = env.gas.sign_transaction(tx)
    key = SettlementKey.of(
        env.chain.network, permit2.PERMIT2_ADDRESS, env.payer.address, auth.nonce_hex
    )
    store = SettlementStore(tmp_path / "settlements.db")
    assert (
        store.claim(key, signature=payload.payload["signature"], pay_to=env.seller, amount=321)
        is None
    )
    store.mark_sent(key, "0x" + bytes(signed.hash).hex(), bytes(signed.raw_transaction))
    store.close()
    seller = env.balance(env.seller)

    restarted = env.facilitator(tmp_path / "settlements.db")
    assert restarted.recover() >= 1
    assert env.balance(env.seller) == seller + 321
    again = run(restarted.settle(payload, at(req, 321)))
    assert again.success and again.transaction == "0x" + bytes(signed.hash).hex()
    assert env.balance(env.seller) == seller + 321


@settings(max_examples=8, deadline=None)
@given(amounts=st.lists(st.integers(min_value=0, max_value=2 * MAX), min_size=2, max_size=6))
def test_concurrent_settles_with_any_amounts_pay_once(env: UptoEnv, amounts: list[int]) -> None:
    """Settles of one permit racing with different amounts: at most one payment moves, it is
    one of the amounts asked and within the maximum; every other answer is a refusal or the
    same payment."""
    fac = env.facilitator()
    req = env.requirement(MAX)
    payload = env.pay(req)
    seller = env.balance(env.seller)

    async def race() -> list[Any]:
        return list(await asyncio.gather(*(fac.settle(payload, at(req, a)) for a in amounts)))

    results = run(race())
    moved = env.balance(env.seller) - seller
    paid = {r.transaction for r in results if r.success and r.transaction}
    assert len(paid) <= 1 and moved <= MAX
    assert moved == 0 or moved in amounts
    for r, asked in zip(results, amounts, strict=True):
        if r.success:
            assert int(r.amount) == asked == moved or (asked == 0 == moved)


def test_funds_moved_after_verify_never_burn_gas_and_the_payer_is_throttled(
    env: UptoEnv, tmp_path: Path
) -> None:
    """The payer empties its balance between verify and settle: settle simulates right before
    signing (verify's simulation is not trusted), broadcasts nothing, and after three such
    failures the payer is refused at verify, on every scheme of the facilitator."""
    fac = env.facilitator(tmp_path / "grief.db")
    griefer = Account.create()
    env.chain.fund_native(griefer.address, 10**18)
    env.approve_permit2(griefer)
    accomplice = Account.create().address
    w3 = env.chain.w3
    req = env.requirement(MAX)
    for _ in range(3):
        env.fund(griefer.address, MAX)
        payload = env.pay(req, griefer)
        assert run(fac.verify(payload, req)).is_valid
        env.chain.transact(griefer, env.usdc.functions.transfer(accomplice, MAX))
        nonce, eth = (
            w3.eth.get_transaction_count(env.gas.address),
            w3.eth.get_balance(env.gas.address),
        )
        settled = run(fac.settle(payload, at(req, 1000)))
        assert not settled.success and not settled.transaction
        assert settled.error_reason == c.ERR_PERMIT2_INSUFFICIENT_BALANCE
        assert w3.eth.get_transaction_count(env.gas.address) == nonce  # nothing broadcast
        assert w3.eth.get_balance(env.gas.address) == eth
    assert fac.metrics()["upto_not_broadcast"] == 3
    env.fund(griefer.address, MAX)
    refused = run(fac.verify(env.pay(req, griefer), req))
    assert not refused.is_valid and refused.invalid_reason == "payer_throttled"
    exact_req = env.requirement(MAX, scheme="exact")  # the same payer on the other scheme
    other = run(fac.verify(env.pay(exact_req, griefer), exact_req))
    assert not other.is_valid and other.invalid_reason == "payer_throttled", other
    honest = run(fac.verify(env.pay(req), req))  # honest payers go on
    assert honest.is_valid
