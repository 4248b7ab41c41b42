"""The pure parts of the exact scheme and the settlement store, without a chain."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given
from hypothesis import strategies as st
from x402.schemas import PaymentPayload, PaymentRequirements

from agentbazaar.payments.eip3009 import (
    authorization_used,
    check_requirements,
    map_revert,
    parse_authorization,
    recover_payer,
)
from agentbazaar.payments.errors import Rejected
from agentbazaar.payments.store import CLAIMED, SENT, SETTLED, SettlementKey, SettlementStore

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
PAY_TO = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
NETWORK = "eip155:31337"
PAYER = Account.create()


def signed(
    value: int = 1000,
    valid_after: int = 0,
    valid_before: int | None = None,
    signer: object = PAYER,
    to: str = PAY_TO,
) -> dict[str, object]:
    valid_before = valid_before or int(time.time()) + 300
    nonce = os.urandom(32)
    msg = encode_typed_data(
        domain_data={
            "name": "USD Coin",
            "version": "2",
            "chainId": 31337,
            "verifyingContract": TOKEN,
        },
        message_types={
            "TransferWithAuthorization": [
                {"name": "from", "type": "address"},
                {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "validAfter", "type": "uint256"},
                {"name": "validBefore", "type": "uint256"},
                {"name": "nonce", "type": "bytes32"},
            ]
        },
        message_data={
            "from": PAYER.address,
            "to": to,
            "value": value,
            "validAfter": valid_after,
            "validBefore": valid_before,
            "nonce": nonce,
        },
    )
    sig = signer.sign_message(msg).signature  # type: ignore[attr-defined]
    return {
        "signature": "0x" + bytes(sig).hex(),
        "authorization": {
            "from": PAYER.address,
            "to": to,
            "value": str(value),
            "validAfter": str(valid_after),
            "validBefore": str(valid_before),
            "nonce": "0x" + nonce.hex(),
        },
    }


def req(**changes: object) -> PaymentRequirements:
    base: dict[str, object] = {
        "scheme": "exact",
        "network": NETWORK,
        "asset": TOKEN,
        "amount": "1000",
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 300,
        "extra": {"name": "USD Coin", "version": "2"},
    }
    base.update(changes)
    return PaymentRequirements.model_validate(base)


def check(
    payload: dict[str, object],
    requirement: PaymentRequirements | None = None,
    accepted: PaymentRequirements | None = None,
) -> None:
    requirement = requirement or req()
    pp = PaymentPayload(payload=payload, accepted=accepted or requirement)
    check_requirements(
        pp,
        requirement,
        parse_authorization(payload),
        networks=frozenset({NETWORK}),
        assets=frozenset({TOKEN.lower()}),
        now=int(time.time()),
    )


def test_a_good_authorization_passes_and_recovers_its_signer() -> None:
    p = signed()
    check(p)
    assert recover_payer(parse_authorization(p), 31337, TOKEN, "USD Coin", "2") == PAYER.address
    # any other domain recovers someone else
    assert recover_payer(parse_authorization(p), 1, TOKEN, "USD Coin", "2") != PAYER.address


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda p: p.pop("signature"), "invalid_exact_evm_payload_signature"),
        (lambda p: p.update(signature="0xzz"), "invalid_exact_evm_payload_signature"),
        (lambda p: p.pop("authorization"), "invalid_payload"),
        (lambda p: p["authorization"].update(value="1e3"), "invalid_payload"),
        (lambda p: p["authorization"].update(value=1000), "invalid_payload"),
        (lambda p: p["authorization"].update(value=str(2**256)), "invalid_payload"),
        (lambda p: p["authorization"].update(nonce="0x00"), "invalid_payload"),
        (lambda p: p["authorization"].update(to="0x123"), "invalid_payload"),
    ],
)
def test_malformed_payloads(mutate: object, reason: str) -> None:
    p = signed()
    mutate(p)  # type: ignore[operator]
    with pytest.raises(Rejected) as info:
        parse_authorization(p)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("payload_kw", "requirement", "reason"),
    [
        ({"value": 999}, req(), "invalid_exact_evm_payload_authorization_value_mismatch"),
        ({"to": TOKEN}, req(), "invalid_exact_evm_payload_recipient_mismatch"),
        (
            lambda: {"valid_before": int(time.time()) + 3},  # times taken when the test runs
            req(),
            "invalid_exact_evm_payload_authorization_valid_before",
        ),
        (
            lambda: {"valid_after": int(time.time()) + 60},
            req(),
            "invalid_exact_evm_payload_authorization_valid_after",
        ),
        ({}, req(network="eip155:1"), "network_mismatch"),
        ({}, req(asset=PAY_TO), "unsupported_asset"),
        ({}, req(scheme="upto"), "unsupported_scheme"),
        ({}, req(extra={}), "missing_eip712_domain"),
    ],
)
def test_requirement_checks(
    payload_kw: dict | Callable[[], dict], requirement: PaymentRequirements, reason: str
) -> None:
    kwargs = payload_kw() if callable(payload_kw) else payload_kw
    with pytest.raises(Rejected) as info:
        check(signed(**kwargs), requirement)
    assert info.value.reason == reason


def test_accepted_must_match_the_requirement() -> None:
    with pytest.raises(Rejected) as info:
        check(signed(), req(), accepted=req(network="eip155:8453"))
    assert info.value.reason == "network_mismatch"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            "execution reverted: authorization is expired",
            "invalid_exact_evm_payload_authorization_valid_before",
        ),
        ("authorization is not yet valid", "invalid_exact_evm_payload_authorization_valid_after"),
        ("authorization is used or canceled", "invalid_exact_evm_nonce_already_used"),
        ("erc20: transfer amount exceeds balance", "invalid_exact_evm_insufficient_balance"),
        ("invalid signature", "invalid_exact_evm_payload_signature"),
        ("something else", "invalid_exact_evm_transaction_simulation_failed"),
    ],
)
def test_revert_reasons_map_to_x402_codes(message: str, reason: str) -> None:
    assert map_revert(message) == reason


def test_authorization_used_reads_exactly_one_authorization() -> None:
    from agentbazaar.payments.eip3009 import AUTHORIZATION_USED_TOPIC

    payer, nonce = PAYER.address, "0x" + "ab" * 32
    log = {
        "address": TOKEN.lower(),
        "topics": [AUTHORIZATION_USED_TOPIC, "0x" + "00" * 12 + payer[2:].lower(), nonce],
    }
    assert authorization_used([log], TOKEN, payer, nonce)
    assert not authorization_used([log], TOKEN, payer, "0x" + "cd" * 32)
    assert not authorization_used([log], PAY_TO, payer, nonce)
    assert not authorization_used([], TOKEN, payer, nonce)


def test_store_claims_once_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SettlementStore(path)
    key = SettlementKey.of(NETWORK, TOKEN, PAYER.address, "0x" + "01" * 32)
    assert store.claim(key, signature="0xaa", pay_to=PAY_TO, amount=5) is None
    again = store.claim(key, signature="0xaa", pay_to=PAY_TO, amount=5)
    assert again is not None and again.status == CLAIMED
    store.mark_sent(key, "0x" + "11" * 32, b"raw")
    store.release(key)  # only claims under which nothing was signed are released
    store.close()
    reopened = SettlementStore(path)
    record = reopened.get(key)
    assert record is not None and record.status == SENT and record.raw_tx == b"raw"
    assert [r.key for r in reopened.with_status(SENT)] == [key]
    reopened.finish(key, success=True, tx_hash="0x" + "11" * 32, reason=None)
    assert reopened.counts()[SETTLED] == 1 and reopened.get(key).final  # type: ignore[union-attr]


@given(
    st.sampled_from(["from", "to", "value", "validAfter", "validBefore", "nonce"]),
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(),
        st.text(alphabet="0123456789abcdefABCDEFx²١", max_size=80),
        st.lists(st.integers(), max_size=2),
    ),
)
def test_any_field_value_is_parsed_or_rejected_with_a_reason(field: str, value: object) -> None:
    """Whatever a field holds, the parser answers with an x402 reason, never a stray error."""
    p = signed()
    p["authorization"][field] = value  # type: ignore[index]
    try:
        parse_authorization(p)
    except Rejected as exc:
        assert exc.reason == "invalid_payload"


def test_addresses_are_checksummed_and_a_wrong_checksum_is_rejected() -> None:
    p = signed()
    p["authorization"]["from"] = PAYER.address.lower()  # type: ignore[index]
    assert parse_authorization(p).payer == PAYER.address
    flipped = next(i for i, ch in enumerate(PAY_TO) if i > 1 and ch.isalpha())
    bad = PAY_TO[:flipped] + PAY_TO[flipped].swapcase() + PAY_TO[flipped + 1 :]
    p["authorization"]["to"] = bad  # type: ignore[index]
    with pytest.raises(Rejected, match=r"authorization\.to"):
        parse_authorization(p)


@pytest.mark.parametrize("amount", ["²", "1000.0", " 1000", ""])
def test_a_requirement_amount_that_is_not_base_units_matches_nothing(amount: str) -> None:
    with pytest.raises(Rejected) as info:
        check(signed(), req(amount=amount))
    assert info.value.reason == "invalid_exact_evm_payload_authorization_value_mismatch"
