"""Bad payments against our example service: always 402/4xx with a reason, never served unpaid,
never settled twice, never a 500."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from x402_env import PayEnv, header_of, payment, requirements, sign_authorization

from agentbazaar.chain.anvil import free_port
from agentbazaar.payments.example import create_example_app
from agentbazaar.testing import serve_in_thread

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def service(pay_env: PayEnv, facilitator_url: str) -> Iterator[str]:
    with serve_in_thread(create_example_app(pay_env.terms(), facilitator_url)) as url:
        yield url


def call(url: str, header: str | None, name: str = "PAYMENT-SIGNATURE") -> httpx.Response:
    headers = {name: header} if header is not None else {}
    return httpx.get(f"{url}/quote", headers=headers, timeout=30)


def assert_refused(r: httpx.Response, reason: str | None = None) -> None:
    assert r.status_code == 402, r.text
    body = r.json()
    assert "quote_id" not in body
    assert isinstance(body["error"], str) and body["error"]
    if reason is not None:
        assert body["error"] == reason, body


def test_unpaid_request_gets_402_with_requirements(service: str) -> None:
    r = call(service, None)
    assert_refused(r)
    assert r.headers["PAYMENT-REQUIRED"]


def test_free_route_is_free(service: str) -> None:
    assert httpx.get(f"{service}/free").json() == {"ok": True}


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("garbage!!", "invalid_payment_header"),
        (base64.b64encode(b"{not json").decode(), "invalid_payment_header"),
        (base64.b64encode(b'{"x402Version": 2}').decode(), "invalid_payment_header"),
        ("A" * 10_000, "payment_header_too_large"),
    ],
)
def test_undecodable_headers(service: str, header: str, reason: str) -> None:
    assert_refused(call(service, header), reason)


def test_truncated_header(pay_env: PayEnv, service: str) -> None:
    good = header_of(payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000)))
    assert_refused(call(service, good[: len(good) // 2]))


def test_v1_x_payment_gets_a_clear_402(pay_env: PayEnv, service: str) -> None:
    good = header_of(payment(pay_env, sign_authorization(pay_env, pay_env.payer, value=1000)))
    assert_refused(call(service, good, name="X-PAYMENT"), "x402_v1_not_supported")


def _mutated_accepted(env: PayEnv, **changes: object) -> str:
    p = payment(env, sign_authorization(env, env.payer, value=1000))
    accepted = dict(requirements(env))
    accepted.update(changes)
    p["accepted"] = accepted
    return header_of(p)


@pytest.mark.parametrize(
    "changes",
    [
        {"network": "eip155:8453"},
        {"asset": "0x0000000000000000000000000000000000000001"},
        {"payTo": "0x0000000000000000000000000000000000000002"},
        {"amount": "1"},
    ],
)
def test_payment_for_other_terms_is_refused(pay_env: PayEnv, service: str, changes: dict) -> None:
    before = pay_env.balance(pay_env.payer.address)
    assert_refused(call(service, _mutated_accepted(pay_env, **changes)))
    assert pay_env.balance(pay_env.payer.address) == before


def _signed(env: PayEnv, **kw: object) -> str:
    signer = kw.pop("signer", env.payer)
    return header_of(payment(env, sign_authorization(env, signer, **kw)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"value": 1}, "invalid_exact_evm_payload_authorization_value_mismatch"),
        (
            {"value": 1000, "to": "0x0000000000000000000000000000000000000002"},
            "invalid_exact_evm_payload_recipient_mismatch",
        ),
        (
            {"value": 1000, "valid_before": 1},
            "invalid_exact_evm_payload_authorization_valid_before",
        ),
        (
            {"value": 1000, "valid_after": 4_000_000_000},
            "invalid_exact_evm_payload_authorization_valid_after",
        ),
    ],
)
def test_bad_authorizations(pay_env: PayEnv, service: str, kwargs: dict, reason: str) -> None:
    before = pay_env.balance(pay_env.payer.address)
    assert_refused(call(service, _signed(pay_env, **kwargs)), reason)
    assert pay_env.balance(pay_env.payer.address) == before


def test_forged_signature(pay_env: PayEnv, service: str) -> None:
    forger = Account.create()
    header = _signed(pay_env, signer=forger, value=1000, payer=pay_env.payer.address)
    before = pay_env.balance(pay_env.payer.address)
    assert_refused(call(service, header), "invalid_exact_evm_payload_signature")
    assert pay_env.balance(pay_env.payer.address) == before


def test_insufficient_balance(pay_env: PayEnv, service: str) -> None:
    pauper = Account.create()
    assert_refused(
        call(service, _signed(pay_env, signer=pauper, value=1000)),
        "invalid_exact_evm_insufficient_balance",
    )


def test_reused_nonce_is_served_once_and_settled_once(pay_env: PayEnv, service: str) -> None:
    header = _signed(pay_env, value=1000)
    before = pay_env.balance(pay_env.seller)
    first = call(service, header)
    assert first.status_code == 200 and "quote_id" in first.json()
    assert_refused(call(service, header), "invalid_exact_evm_nonce_already_used")
    assert pay_env.balance(pay_env.seller) == before + 1000


def test_facilitator_down_gives_402(pay_env: PayEnv) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with serve_in_thread(create_example_app(pay_env.terms(), dead)) as url:
        before = pay_env.balance(pay_env.payer.address)
        r = call(url, _signed(pay_env, value=1000))
        assert_refused(r)
        assert pay_env.balance(pay_env.payer.address) == before


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.one_of(
        st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=300),
        st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
        st.dictionaries(
            st.sampled_from(["x402Version", "accepted", "payload", "resource"]),
            st.one_of(
                st.integers(),
                st.text(max_size=20),
                st.none(),
                st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
            ),
            max_size=4,
        ).map(lambda d: header_of(d)),
    )
)
def test_fuzzed_headers_never_serve_or_crash(pay_env: PayEnv, service: str, header: str) -> None:
    r = call(service, header)
    assert 400 <= r.status_code < 500, r.text
    assert "quote_id" not in r.text


def test_settlement_failure_after_the_handler_delivers_nothing(pay_env: PayEnv) -> None:
    """Verify passes, the handler runs, the settlement cannot be sent (the facilitator's gas
    wallet is empty): the buyer gets a 402 with the reason, not the resource, and pays nothing."""
    from agentbazaar.payments.facilitator import exact_facilitator

    broke = exact_facilitator(pay_env.chain, Account.create(), store_path=pay_env.tmp / "b.db")
    with serve_in_thread(create_example_app(pay_env.terms(), broke)) as url:
        before = pay_env.balance(pay_env.payer.address)
        r = call(url, _signed(pay_env, value=1000))
        assert_refused(r)
        assert r.json()["error"] == "transaction_failed"
        assert pay_env.balance(pay_env.payer.address) == before
