"""The seller's exactly-once pieces without a chain: what a retry must match, the response store
(window, size caps, sharing between processes), reading a payment header, the outage answer."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

from fastapi import Request
from hypothesis import given
from hypothesis import strategies as st
from x402.schemas import PaymentPayload, PaymentRequirements

from agentbazaar.chain.anvil import free_port
from agentbazaar.payments.auth import facilitator_client
from agentbazaar.payments.once import (
    Paid,
    ReservingClient,
    Retained,
    RetainedResponses,
    payment_identifier_for,
    read_payment,
)

KEY = ("eip155:31337", "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 32)
SIG = "0x" + "44" * 65


def kept(retry_id: str | None = "pay_" + "a" * 32, body: bytes = b'{"ok":1}') -> Retained:
    headers = [("content-type", "application/json"), ("payment-response", "eyJ9")]
    return Retained(SIG, retry_id, "fp", 200, headers, body)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@given(
    retry=st.sampled_from(["same", "other", "none"]),
    signature=st.sampled_from(["same", "other"]),
    fp=st.sampled_from(["fp", "other"]),
)
def test_only_a_genuine_retry_is_answered(retry: str, signature: str, fp: str) -> None:
    first = kept()
    retry_id = {"same": first.retry_id, "other": "pay_" + "b" * 32, "none": None}[retry]
    paid = Paid(KEY, SIG if signature == "same" else "0x" + "55" * 65, retry_id)
    genuine = retry == "same" and signature == "same" and fp == "fp"
    assert first.answers(paid, fp) is genuine
    assert not kept(retry_id=None).answers(Paid(KEY, SIG, None), "fp")  # no id: never a replay


def test_responses_are_kept_for_the_window_and_replayed_exactly(tmp_path: Path) -> None:
    clock = Clock()
    store = RetainedResponses(tmp_path / "r.db", window_s=60, clock=clock)
    assert store.put(KEY, kept())
    again = store.get(KEY)
    assert again == kept()
    response = again.response()
    assert response.body == b'{"ok":1}' and response.headers["payment-response"] == "eyJ9"
    other = RetainedResponses(tmp_path / "r.db", window_s=60, clock=clock)  # another process
    assert other.get(KEY) == kept()
    clock.now += 61
    assert store.get(KEY) is None


def test_the_store_is_capped(tmp_path: Path) -> None:
    clock = Clock()
    store = RetainedResponses(None, max_entries=10, max_body=100, clock=clock)
    assert not store.put(KEY, kept(body=b"x" * 101))  # too large to keep
    assert store.get(KEY) is None
    for i in range(200):
        clock.now += 1
        store.put((*KEY[:3], f"0x{i:064x}"), kept())
    assert len(store) == 10 + 200 % 64  # pruned to the newest 10 every 64 writes
    assert store.get((*KEY[:3], f"0x{199:064x}")) is not None
    assert store.get((*KEY[:3], f"0x{0:064x}")) is None


def request_with(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request(
        {"type": "http", "method": "GET", "path": "/", "headers": raw, "query_string": b""}
    )


def header(envelope: object) -> str:
    return base64.b64encode(json.dumps(envelope).encode()).decode()


def envelope(**extensions: object) -> dict[str, object]:
    return {
        "x402Version": 2,
        "accepted": {"scheme": "exact", "network": KEY[0], "asset": KEY[1].upper()},
        "payload": {"signature": SIG, "authorization": {"from": KEY[2], "nonce": KEY[3]}},
        **({"extensions": extensions} if extensions else {}),
    }


def test_reading_the_payment_and_its_retry_id() -> None:
    pid = payment_identifier_for("order-1")
    assert pid == payment_identifier_for("order-1") and 16 <= len(pid) <= 128
    with_id = envelope(**{"payment-identifier": {"info": {"required": False, "id": pid}}})
    paid = read_payment(request_with({"PAYMENT-SIGNATURE": header(with_id)}))
    assert paid == Paid(KEY, SIG, pid)
    by_header = read_payment(
        request_with({"PAYMENT-SIGNATURE": header(envelope()), "Idempotency-Key": "order-1"})
    )
    assert by_header is not None and by_header.retry_id == "order-1"
    bad_id = envelope(**{"payment-identifier": {"info": {"id": "short"}}})
    assert read_payment(request_with({"PAYMENT-SIGNATURE": header(bad_id)})).retry_id is None  # type: ignore[union-attr]
    for junk in ("garbage!!", header([1]), header({"accepted": {"scheme": "upto"}}), "A" * 9000):
        assert read_payment(request_with({"PAYMENT-SIGNATURE": junk})) is None
    assert read_payment(request_with({})) is None


def test_an_unreachable_facilitator_is_a_reason_code_not_exception_text() -> None:
    client = ReservingClient(facilitator_client(f"http://127.0.0.1:{free_port()}", timeout=2))
    payload = PaymentPayload.model_validate(
        {
            "x402Version": 2,
            "accepted": {
                "scheme": "exact",
                "network": KEY[0],
                "asset": KEY[1],
                "amount": "1",
                "payTo": KEY[2],
                "maxTimeoutSeconds": 60,
            },
            "payload": {"signature": SIG, "authorization": {"from": KEY[2], "nonce": KEY[3]}},
        }
    )
    req = PaymentRequirements.model_validate(payload.accepted.model_dump(by_alias=True))

    async def go() -> tuple[object, object]:
        return await client.verify(payload, req), await client.settle(payload, req)

    verified, settled = asyncio.run(go())
    assert verified.invalid_reason == "facilitator_unavailable"  # type: ignore[attr-defined]
    assert "connect" not in (verified.invalid_message or "").lower()  # type: ignore[attr-defined]
    assert settled.error_reason == "facilitator_unavailable"  # type: ignore[attr-defined]
