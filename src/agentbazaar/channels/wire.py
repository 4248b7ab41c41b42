"""Wire constants of the x402 `batch-settlement` scheme (EVM), as the official SDK spells them,
and the builders of its payloads (pure: what is signed is signed elsewhere)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from eth_utils.address import to_checksum_address

SCHEME = "batch-settlement"
BATCH_SETTLEMENT_ADDRESS = to_checksum_address("0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003")
ERC3009_DEPOSIT_COLLECTOR_ADDRESS = to_checksum_address(
    "0x4020806089470a89826cB9fB1f4059150b550004"
)
MULTICALL3_ADDRESS = to_checksum_address("0xcA11bde05977b3631167028862bE2a173976CA11")

_P = "invalid_batch_settlement_evm_"
ERR_CHANNEL_NOT_FOUND = _P + "channel_not_found"
ERR_CHANNEL_ID_MISMATCH = _P + "channel_id_mismatch"
ERR_RECEIVER_MISMATCH = _P + "receiver_mismatch"
ERR_RECEIVER_AUTHORIZER_MISMATCH = _P + "receiver_authorizer_mismatch"
ERR_TOKEN_MISMATCH = _P + "token_mismatch"
ERR_WITHDRAW_DELAY_MISMATCH = _P + "withdraw_delay_mismatch"
ERR_INVALID_VOUCHER_SIGNATURE = _P + "voucher_signature"
ERR_CUMULATIVE_EXCEEDS_BALANCE = _P + "cumulative_exceeds_balance"
ERR_CUMULATIVE_AMOUNT_MISMATCH = _P + "cumulative_amount_mismatch"
ERR_DEPOSIT_TRANSACTION_FAILED = _P + "deposit_transaction_failed"
ERR_VOUCHER_PAYLOAD = _P + "voucher_payload"
ERR_INVALID_SCHEME = _P + "scheme"
ERR_NETWORK_MISMATCH = _P + "network_mismatch"
ERR_INVALID_PAYLOAD_TYPE = _P + "payload_type"
ERR_CUMULATIVE_AMOUNT_BELOW_CLAIMED = _P + "cumulative_below_claimed"
ERR_DEPOSIT_PAYLOAD = _P + "deposit_payload"
ERR_DEPOSIT_SIMULATION_FAILED = _P + "deposit_simulation_failed"
ERR_VALID_BEFORE_EXPIRED = _P + "payload_authorization_valid_before"
ERR_VALID_AFTER_IN_FUTURE = _P + "payload_authorization_valid_after"
ERR_INVALID_RECEIVE_AUTHORIZATION_SIGNATURE = _P + "receive_authorization_signature"
ERR_CLAIM_PAYLOAD = _P + "claim_payload"
ERR_CLAIM_TRANSACTION_FAILED = _P + "claim_transaction_failed"
ERR_SETTLE_PAYLOAD = _P + "settle_payload"
ERR_SETTLE_TRANSACTION_FAILED = _P + "settle_transaction_failed"
ERR_UNKNOWN_SETTLE_ACTION = _P + "unknown_settle_action"
ERR_AUTHORIZER_ADDRESS_MISMATCH = _P + "authorizer_address_mismatch"
ERR_REFUND_NO_BALANCE = _P + "refund_no_balance"


# ---- payloads: the one place their shape is spelled (the buyer, the test kit, benchmarks) ------
def voucher_wire(channel_id: bytes, ceiling: int, signature: str) -> dict[str, str]:
    """A voucher as the scheme payload carries it (``signature``: 0x-hex, 65 bytes)."""
    return {
        "channelId": "0x" + channel_id.hex(),
        "maxClaimableAmount": str(ceiling),
        "signature": signature,
    }


def deposit_wire(amount: int, valid_before: int, salt: bytes, signature: str) -> dict[str, Any]:
    """The ``deposit`` of a payload: an ERC-3009 ReceiveWithAuthorization to the collector,
    valid from 0 to ``valid_before``, its nonce derived from the channel id and ``salt``."""
    return {
        "amount": str(amount),
        "authorization": {
            "erc3009Authorization": {
                "validAfter": "0",
                "validBefore": str(valid_before),
                "salt": "0x" + salt.hex(),
                "signature": signature,
            }
        },
    }


def channel_payload(
    config: Mapping[str, Any], voucher: Mapping[str, str], deposit: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The scheme payload: a voucher, and a deposit when one comes with it (``config`` is
    ``ChannelConfig.to_wire()``)."""
    payload: dict[str, Any] = {
        "type": "deposit" if deposit is not None else "voucher",
        "channelConfig": dict(config),
        "voucher": dict(voucher),
    }
    if deposit is not None:
        payload["deposit"] = dict(deposit)
    return payload


def payment_header(accepted: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    """The ``PAYMENT-SIGNATURE`` header value: x402 v2 envelope, compact JSON, base64."""
    envelope = {"x402Version": 2, "accepted": accepted, "payload": payload}
    return base64.b64encode(json.dumps(envelope, separators=(",", ":")).encode()).decode()
