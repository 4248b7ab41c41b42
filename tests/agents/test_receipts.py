"""Receipt signing, canonical bytes, verification and tampering of every field (no model needed)."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agentbazaar.agents.errors import BadReceipt
from agentbazaar.agents.receipts import (
    Expected,
    Receipt,
    SignedReceipt,
    input_hash,
    matrix_from_bytes,
    matrix_from_json,
    matrix_to_json,
    output_bytes,
    output_hash,
    recover_signer,
    sign_receipt,
    verify_receipt,
)
from agentbazaar.agents.store import ReceiptStore, StoredVerdict
from agentbazaar.chain.devkeys import dev_account

TEXTS = ["hello world", "ünïcødé text ✓"]
ASSET = "0x" + "ab" * 20
NONCE = "0x" + "11" * 32


def _output() -> Any:
    rng = np.random.default_rng(7)
    return rng.standard_normal((2, 8)).astype(np.float32)


def _signed(out: Any = None) -> SignedReceipt:
    provider = dev_account(3)
    receipt = Receipt(
        provider_agent_id=4,
        provider=provider.address,
        model_id="sentence-transformers/all-MiniLM-L6-v2",
        weights_hash="0x" + "22" * 32,
        input_hash=input_hash(TEXTS),
        output_hash=output_hash(_output() if out is None else out),
        asset=ASSET,
        price=120,
        payment_ref=NONCE,
        timestamp=1_700_000_000,
    )
    return sign_receipt(provider, receipt, 31337)


def _expected(**changes: Any) -> Expected:
    base = Expected(
        provider=dev_account(3).address,
        provider_agent_id=4,
        chain_id=31337,
        texts=TEXTS,
        output=_output(),
        asset=ASSET,
        max_price=120,
        payment_ref=NONCE,
        price=120,
        model_id="sentence-transformers/all-MiniLM-L6-v2",
        weights_hash="0x" + "22" * 32,
    )
    return replace(base, **changes)


def test_valid_receipt_verifies_and_recovers_the_provider() -> None:
    signed = _signed()
    verify_receipt(signed, _expected())
    assert recover_signer(signed) == dev_account(3).address
    assert signed.id.startswith("0x") and len(signed.id) == 66


def test_json_round_trip_keeps_the_receipt_valid() -> None:
    signed = _signed()
    again = SignedReceipt.from_json(signed.to_json())
    assert again == signed
    verify_receipt(again, _expected())


_CHANGED: dict[str, Any] = {
    "provider_agent_id": 5,
    "provider": dev_account(4).address,
    "model_id": "other-model",
    "weights_hash": "0x" + "23" * 32,
    "input_hash": "0x" + "00" * 32,
    "output_hash": "0x" + "01" * 32,
    "asset": "0x" + "cd" * 20,
    "price": 119,
    "payment_ref": "0x" + "12" * 32,
    "timestamp": 1_700_000_001,
}


@pytest.mark.parametrize("name", [f.name for f in fields(Receipt)])
def test_tampering_with_any_field_is_caught(name: str) -> None:
    signed = _signed()
    forged = SignedReceipt(
        replace(signed.receipt, **{name: _CHANGED[name]}), signed.signature, 31337
    )
    with pytest.raises(BadReceipt):
        verify_receipt(forged, _expected())
    assert recover_signer(forged) != dev_account(3).address


def test_other_chain_and_bad_signature_are_refused() -> None:
    signed = _signed()
    with pytest.raises(BadReceipt, match="chain"):
        verify_receipt(SignedReceipt(signed.receipt, signed.signature, 1), _expected())
    with pytest.raises(BadReceipt):
        verify_receipt(SignedReceipt(signed.receipt, "0x1234", 31337), _expected())
    flipped = signed.signature[:-4] + ("00" if signed.signature[-4:-2] != "00" else "01") + "1b"
    with pytest.raises(BadReceipt):
        verify_receipt(SignedReceipt(signed.receipt, flipped, 31337), _expected())


def test_signed_by_someone_else_is_refused() -> None:
    signed = _signed()
    impostor = dev_account(5)
    with pytest.raises(BadReceipt, match="own address"):
        sign_receipt(impostor, signed.receipt, 31337)
    forged = sign_receipt(impostor, replace(signed.receipt, provider=impostor.address), 31337)
    with pytest.raises(BadReceipt, match="not signed by the provider"):
        verify_receipt(forged, _expected())


@pytest.mark.parametrize(
    "changes",
    [
        {"texts": ["hello world", "ünïcødé text ✓ "]},
        {"max_price": 119},
        {"price": 121},
        {"payment_ref": "0x" + "13" * 32},
        {"asset": "0x" + "ef" * 20},
        {"weights_hash": "0x" + "24" * 32},
        {"model_id": "x"},
        {"provider_agent_id": 9},
    ],
)
def test_delivery_that_differs_from_the_receipt_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(BadReceipt):
        verify_receipt(_signed(), _expected(**changes))


def test_one_changed_float_changes_the_output_hash() -> None:
    out = _output()
    other = out.copy()
    other[1, 3] = np.nextafter(other[1, 3], np.float32(10))
    with pytest.raises(BadReceipt, match="output_hash"):
        verify_receipt(_signed(out), _expected(output=other))


def test_canonical_output_bytes_round_trip_through_json_exactly() -> None:
    out = _output()
    again = matrix_from_json(matrix_to_json(out))
    assert output_bytes(again) == output_bytes(out)
    assert np.array_equal(matrix_from_bytes(output_bytes(out)), out)
    assert output_bytes(out)[:13] == b"F32LE" + (2).to_bytes(4, "big") + (8).to_bytes(4, "big")


@pytest.mark.parametrize(
    "rows", [[], [[]], [[1.0], [1.0, 2.0]], [[float("nan")]], [["1"]], [[True]], "x"]
)
def test_malformed_matrices_are_refused(rows: Any) -> None:
    with pytest.raises(BadReceipt):
        matrix_from_json(rows)


def test_malformed_receipt_json_is_refused() -> None:
    data = _signed().to_json()
    for broken in (
        {**data, "signature": 5},
        {**data, "chainId": "1"},
        {**data, "receipt": {**data["receipt"], "price": "120"}},
        {**data, "receipt": {k: v for k, v in data["receipt"].items() if k != "asset"}},
        [],
    ):
        with pytest.raises(BadReceipt):
            SignedReceipt.from_json(broken)


def test_store_keeps_both_sides_once_and_queries(tmp_path: Path) -> None:
    store = ReceiptStore(tmp_path / "r.sqlite")
    signed = _signed()
    blob = output_bytes(_output())
    for _ in range(2):
        store.add(signed, role="issued", texts=TEXTS, output=blob)
    store.add(signed, role="received", texts=TEXTS, output=blob, tx_hash="0xabc")
    assert len(store.query()) == 2
    (received,) = store.query(role="received", provider_agent_id=4)
    assert received.signed == signed and received.texts == TEXTS and received.tx_hash == "0xabc"
    assert store.query(provider_agent_id=5) == []
    store.set_status(signed.id, "rejected", "validator failed it")
    assert {s.status for s in store.query()} == {"rejected"}
    store.add_verdict(StoredVerdict(signed.id, "0xv", 4, 0, 0.5, 0.2, None, "0xt"))
    assert store.verdicts(provider_agent_id=4)[0].score == 0
    store.close()
    reopened = ReceiptStore(tmp_path / "r.sqlite")
    assert len(reopened.query()) == 2


def _check(signed: SignedReceipt, **changes: Any) -> None:
    from agentbazaar.agents.validator import check_evidence

    args: dict[str, Any] = {
        "request_hash": signed.id,
        "agent_id": 4,
        "wallet": dev_account(3).address,
        "texts": TEXTS,
        "claimed": _output(),
        "model_id": "sentence-transformers/all-MiniLM-L6-v2",
        "weights_hash": "0x" + "22" * 32,
    }
    args.update(changes)
    check_evidence(signed, **args)


@pytest.mark.parametrize(
    "changes",
    [
        {"request_hash": "0x" + "00" * 32},
        {"agent_id": 5},
        {"wallet": dev_account(4).address},
        {"wallet": None},
        {"texts": ["other"]},
        {"claimed": _output() * 2},
        {"model_id": "other"},
        {"weights_hash": "0x" + "33" * 32},
    ],
)
def test_validator_refuses_evidence_that_is_not_the_sale(changes: dict[str, Any]) -> None:
    signed = _signed()
    _check(signed)  # the genuine evidence passes
    with pytest.raises(BadReceipt):
        _check(signed, **changes)
