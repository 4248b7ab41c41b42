"""Our facilitator over HTTP: the SDK's wire format, durable idempotent settle, recovery."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.schemas import PaymentPayload, PaymentRequirements
from x402_env import PayEnv, payment, requirements, sign_authorization

from agentbazaar.chain.devkeys import dev_account
from agentbazaar.payments.exact import ExactEvmHandler
from agentbazaar.payments.facilitator import Facilitator
from agentbazaar.payments.store import SETTLED, SettlementKey, SettlementStore

pytestmark = pytest.mark.anvil


def body(env: PayEnv, payload: dict[str, object], amount: int = 1000) -> dict[str, object]:
    return {
        "x402Version": 2,
        "paymentPayload": payment(env, payload, amount),
        "paymentRequirements": requirements(env, amount),
    }


def test_supported_lists_exact_on_the_chain(pay_env: PayEnv, facilitator_url: str) -> None:
    supported = HTTPFacilitatorClient(FacilitatorConfig(url=facilitator_url)).get_supported()
    kinds = {(k.x402_version, k.scheme, k.network) for k in supported.kinds}
    assert kinds == {(2, "exact", "eip155:31337")}
    assert supported.signers["eip155:*"] == [pay_env.gas.address]


def test_sdk_http_client_verifies_and_settles_once(pay_env: PayEnv, facilitator_url: str) -> None:
    payload = PaymentPayload.model_validate(
        payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000))
    )
    req = PaymentRequirements.model_validate(requirements(pay_env))
    before = pay_env.balance(pay_env.seller)

    async def go() -> tuple[bool, list[str]]:
        client = HTTPFacilitatorClient(FacilitatorConfig(url=facilitator_url))
        verified = await client.verify(payload, req)
        results = [await client.settle(payload, req) for _ in range(3)]
        await client.aclose()
        assert all(r.success for r in results)
        return verified.is_valid, [r.transaction for r in results]

    valid, txs = asyncio.run(go())
    assert valid
    assert len(set(txs)) == 1 and txs[0].startswith("0x")
    assert pay_env.balance(pay_env.seller) == before + 1000


def test_concurrent_settles_of_one_authorization_send_one_transfer(
    pay_env: PayEnv, facilitator_url: str
) -> None:
    request = body(pay_env, sign_authorization(pay_env, pay_env.payer, value=777), 777)
    before = pay_env.balance(pay_env.payer.address)

    def settle(_: int) -> dict[str, object]:
        r = httpx.post(f"{facilitator_url}/settle", json=request, timeout=30)
        assert r.status_code == 200
        return dict(r.json())

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(settle, range(8)))
    hashes = {r["transaction"] for r in results if r["success"]}
    assert hashes, results
    assert len(hashes) == 1
    assert all(r["success"] or r["errorReason"] == "settlement_pending" for r in results)
    assert pay_env.balance(pay_env.payer.address) == before - 777


def test_concurrent_distinct_payments_keep_one_nonce_sequence(
    pay_env: PayEnv, facilitator_url: str
) -> None:
    requests = [
        body(pay_env, sign_authorization(pay_env, pay_env.payer, value=5), 5) for _ in range(12)
    ]
    before = pay_env.balance(pay_env.seller)

    def settle(request: dict[str, object]) -> dict[str, object]:
        return dict(httpx.post(f"{facilitator_url}/settle", json=request, timeout=30).json())

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(settle, requests))
    assert all(r["success"] for r in results), results
    assert len({r["transaction"] for r in results}) == 12
    assert pay_env.balance(pay_env.seller) == before + 60


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'{"x402Version": 2}', 400),
        (b'{"paymentPayload": {"x402Version": 2}, "paymentRequirements": {}}', 400),
        (b"{" + b" " * 70_000 + b"}", 413),
    ],
)
def test_malformed_bodies_get_4xx(facilitator_url: str, raw: bytes, status: int) -> None:
    for path in ("/verify", "/settle"):
        r = httpx.post(
            f"{facilitator_url}{path}", content=raw, headers={"content-type": "application/json"}
        )
        assert r.status_code == status, r.text
        assert r.json()["error"] == "invalid_payload"


def test_v1_payload_is_refused_with_a_reason(pay_env: PayEnv, facilitator_url: str) -> None:
    v1 = {
        "x402Version": 1,
        "paymentPayload": {
            "x402Version": 1,
            "scheme": "exact",
            "network": "base-sepolia",
            "payload": {},
        },
        "paymentRequirements": {
            "scheme": "exact",
            "network": "base-sepolia",
            "maxAmountRequired": "1000",
            "resource": "http://x",
            "description": "",
            "mimeType": "application/json",
            "payTo": pay_env.seller,
            "maxTimeoutSeconds": 60,
            "asset": pay_env.token.address,
        },
    }
    r = httpx.post(f"{facilitator_url}/verify", json=v1)
    assert r.status_code == 200
    assert r.json() == {"isValid": False, "invalidReason": "unsupported_x402_version"}


def test_health_and_metrics(facilitator_url: str) -> None:
    assert httpx.get(f"{facilitator_url}/healthz").json()["ok"] is True
    metrics = httpx.get(f"{facilitator_url}/metrics").json()
    assert {"settled", "pending", "failed"} <= set(metrics)


def test_crash_between_send_and_receipt_is_recovered_at_start(pay_env: PayEnv) -> None:
    """A signed settlement recorded as sent but never broadcast is broadcast once at start-up."""
    gas = dev_account(4)
    store = SettlementStore(pay_env.tmp / "crash.db")
    handler = ExactEvmHandler(pay_env.chain, gas, store, ThreadPoolExecutor(2))
    payload = sign_authorization(pay_env, pay_env.payer, value=4242)
    auth = payload["authorization"]
    assert isinstance(auth, dict)
    key = SettlementKey.of(
        pay_env.chain.network, str(pay_env.token.address), auth["from"], auth["nonce"]
    )
    store.claim(key, signature=str(payload["signature"]), pay_to=pay_env.seller, amount=4242)
    # what settle does up to the crash: sign, record, (crash before the broadcast)
    from agentbazaar.payments.eip3009 import parse_authorization

    parsed = parse_authorization(payload)
    fn = handler._transfer_fn(
        PaymentRequirements.model_validate(requirements(pay_env, 4242)), parsed
    )
    tx = fn.build_transaction(
        {
            "from": gas.address,
            "nonce": pay_env.chain.w3.eth.get_transaction_count(gas.address),
            "gas": 200_000,
            **pay_env.chain.fee_params(),
        }
    )
    signed = gas.sign_transaction(tx)
    store.mark_sent(key, "0x" + bytes(signed.hash).hex(), bytes(signed.raw_transaction))
    store.close()
    before = pay_env.balance(pay_env.seller)

    restarted = Facilitator(
        [
            ExactEvmHandler(
                pay_env.chain, gas, SettlementStore(pay_env.tmp / "crash.db"), ThreadPoolExecutor(2)
            )
        ]
    )
    assert restarted.recover() == 1
    assert pay_env.balance(pay_env.seller) == before + 4242
    record = SettlementStore(pay_env.tmp / "crash.db").get(key)
    assert record is not None and record.status == SETTLED

    # a repeated settle of the same authorization returns that transaction; nothing more moves
    result = asyncio.run(
        restarted.settle(
            PaymentPayload.model_validate(payment(pay_env, payload, 4242)),
            PaymentRequirements.model_validate(requirements(pay_env, 4242)),
        )
    )
    assert result.success and result.transaction == "0x" + bytes(signed.hash).hex()
    assert pay_env.balance(pay_env.seller) == before + 4242


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.dictionaries(
        st.sampled_from(["x402Version", "accepted", "payload", "resource", "extensions"]), _json
    ),
    reqs=st.dictionaries(
        st.sampled_from(["scheme", "network", "asset", "amount", "payTo", "extra"]), _json
    ),
    path=st.sampled_from(["/verify", "/settle"]),
)
def test_fuzzed_bodies_never_500(
    pay_env: PayEnv, facilitator_url: str, payload: dict, reqs: dict, path: str
) -> None:
    before = pay_env.balance(pay_env.seller)
    r = httpx.post(
        f"{facilitator_url}{path}",
        json={"x402Version": 2, "paymentPayload": payload, "paymentRequirements": reqs},
    )
    assert r.status_code in (200, 400), r.text
    body = r.json()
    assert body.get("isValid") is not True and body.get("success") is not True
    assert pay_env.balance(pay_env.seller) == before


def test_valid_envelope_with_mangled_authorization(pay_env: PayEnv, facilitator_url: str) -> None:
    good = sign_authorization(pay_env, pay_env.payer, value=1000)
    auth = dict(good["authorization"])  # type: ignore[call-overload]
    cases = [
        {**good, "signature": "0x1234"},
        {**good, "signature": "0x" + "00" * 65},
        {**good, "authorization": {**auth, "value": "-1"}},
        {**good, "authorization": {**auth, "value": str(2**256)}},
        {**good, "authorization": {**auth, "nonce": "0x12"}},
        {**good, "authorization": {**auth, "from": "not an address"}},
        {**good, "authorization": "nope"},
    ]
    for payload in cases:
        for path in ("/verify", "/settle"):
            r = httpx.post(f"{facilitator_url}{path}", json=body(pay_env, payload))
            assert r.status_code == 200, r.text
            out = r.json()
            assert out.get("isValid") is False or out.get("success") is False
            assert out.get("invalidReason") or out.get("errorReason")


def test_waiting_for_a_receipt_does_not_block_the_service(
    pay_env: PayEnv, facilitator_url: str
) -> None:
    """With mining paused, a settlement waits for its receipt; meanwhile the same facilitator
    answers other requests and reports it pending. Once a block is mined, it completes."""
    from web3.types import RPCEndpoint

    w3 = pay_env.chain.w3
    request = body(pay_env, sign_authorization(pay_env, pay_env.payer, value=31), 31)
    w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [False])
    try:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(
                lambda: httpx.post(f"{facilitator_url}/settle", json=request, timeout=30).json()
            )
            deadline = time.monotonic() + 10
            while httpx.get(f"{facilitator_url}/metrics").json()["pending"] == 0:
                assert time.monotonic() < deadline, "the settlement never became pending"
                time.sleep(0.02)
            assert not pending.done()
            assert httpx.get(f"{facilitator_url}/healthz", timeout=2).json()["ok"] is True
            assert httpx.get(f"{facilitator_url}/supported", timeout=2).status_code == 200
            w3.provider.make_request(RPCEndpoint("evm_mine"), [])
            result = pending.result(timeout=20)
    finally:
        w3.provider.make_request(RPCEndpoint("evm_setAutomine"), [True])
    assert result["success"] is True and result["transaction"].startswith("0x")
    assert httpx.get(f"{facilitator_url}/metrics").json()["pending"] == 0
