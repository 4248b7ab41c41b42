"""EIP-3009 ``TransferWithAuthorization`` for the x402 ``exact`` scheme: pure parts.

Strict parsing of the scheme payload, the checks that need no chain (network, asset, payTo,
amount, validity window), EIP-712 signature recovery, calldata, and reading the outcome of a
settlement from receipt logs. Each failed check raises ``Rejected`` with the x402 reason code
(the SDK's own codes, so SDK clients understand them).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak
from eth_typing import ChecksumAddress
from web3 import Web3
from x402.mechanisms.evm import constants as c
from x402.schemas import PaymentPayload, PaymentRequirements

from agentbazaar.errors import AddressError, AmountError, InputError
from agentbazaar.payments.errors import Rejected
from agentbazaar.primitives import parse_address, parse_base_units, parse_bytes32

ERR_UNSUPPORTED_ASSET = "unsupported_asset"
ERR_INVALID_PAYLOAD = "invalid_payload"
ERR_UNSUPPORTED_VERSION = "unsupported_x402_version"
VALID_BEFORE_MARGIN = 6  # seconds, as the reference facilitator
_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")
_ANY_SIGNATURE = re.compile(r"^0x(?:[0-9a-fA-F]{2})+$")
MAX_WALLET_SIGNATURE = 8 * 1024  # bytes; an ERC-6492 wrapper carries the factory call too

TOKEN_ABI: list[dict[str, Any]] = [
    *c.TRANSFER_WITH_AUTHORIZATION_VRS_ABI,
    *c.AUTHORIZATION_STATE_ABI,
    *c.BALANCE_OF_ABI,
]

_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_TRANSFER_TYPEHASH = keccak(
    b"TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
    b"uint256 validBefore,bytes32 nonce)"
)
_EIP712_TYPES = {
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ]
}


@dataclass(frozen=True)
class Authorization:
    """A parsed EIP-3009 ``TransferWithAuthorization`` with its 65-byte signature."""

    payer: ChecksumAddress
    to: ChecksumAddress
    value: int
    valid_after: int
    valid_before: int
    nonce: bytes
    signature: bytes

    @property
    def nonce_hex(self) -> str:
        return "0x" + self.nonce.hex()

    @property
    def vrs(self) -> tuple[int, bytes, bytes]:
        v = self.signature[64]
        return (v + 27 if v in (0, 1) else v, self.signature[:32], self.signature[32:64])


# ---- pure checks ---------------------------------------------------------------------------
def uint_field(value: object, field: str, where: str = "authorization") -> int:
    """A uint256 sent as a decimal string (as x402 payloads carry numbers), or ``Rejected``."""
    if isinstance(value, str):  # not a JSON number: x402 carries uint256 values as text
        try:
            return parse_base_units(value)
        except AmountError:
            pass
    raise Rejected(ERR_INVALID_PAYLOAD, f"{where}.{field} must be a uint256 string")


def address_field(value: object, field: str, where: str = "authorization") -> ChecksumAddress:
    """A 0x-prefixed 20-byte hex address (checksummed), or ``Rejected``."""
    try:
        return parse_address(value)
    except AddressError as exc:
        raise Rejected(ERR_INVALID_PAYLOAD, f"{where}.{field} must be a 20-byte address") from exc


def parse_authorization(payload: dict[str, Any], *, any_signature: bool = False) -> Authorization:
    """Parse the scheme payload ``{signature, authorization: {...}}`` strictly. The signature
    is 65 bytes (ECDSA) unless ``any_signature`` (a contract wallet's: ERC-1271 or ERC-6492,
    up to ``MAX_WALLET_SIGNATURE`` bytes)."""
    auth = payload.get("authorization")
    sig = payload.get("signature")
    if not isinstance(auth, dict):
        raise Rejected(ERR_INVALID_PAYLOAD, "payload.authorization is missing")
    pattern = _ANY_SIGNATURE if any_signature else _SIGNATURE
    if (
        not isinstance(sig, str)
        or not pattern.match(sig)
        or len(sig) > 2 + 2 * MAX_WALLET_SIGNATURE
    ):
        raise Rejected(c.ERR_INVALID_SIGNATURE, "payload.signature must be 65 bytes of hex")
    try:
        nonce = parse_bytes32(auth.get("nonce"))
    except InputError as exc:
        raise Rejected(ERR_INVALID_PAYLOAD, "authorization.nonce must be 32 bytes of hex") from exc
    return Authorization(
        payer=address_field(auth.get("from"), "from"),
        to=address_field(auth.get("to"), "to"),
        value=uint_field(auth.get("value"), "value"),
        valid_after=uint_field(auth.get("validAfter"), "validAfter"),
        valid_before=uint_field(auth.get("validBefore"), "validBefore"),
        nonce=nonce,
        signature=bytes.fromhex(sig[2:]),
    )


def check_requirements(
    payload: PaymentPayload,
    req: PaymentRequirements,
    auth: Authorization,
    *,
    networks: frozenset[str],
    assets: frozenset[str] | None,
    now: int,
) -> None:
    """Everything that can be checked without the chain; raises ``Rejected``."""
    payer = auth.payer
    if payload.x402_version != 2:
        raise Rejected(ERR_UNSUPPORTED_VERSION, "only x402 v2 payloads are accepted", payer)
    if payload.accepted.scheme != c.SCHEME_EXACT or req.scheme != c.SCHEME_EXACT:
        raise Rejected(c.ERR_UNSUPPORTED_SCHEME, payer=payer)
    if payload.accepted.network != req.network or req.network not in networks:
        raise Rejected(c.ERR_NETWORK_MISMATCH, f"network {req.network} is not served", payer)
    try:
        asset = parse_address(req.asset).lower()
    except AddressError:
        asset = None
    if asset is None or (assets is not None and asset not in assets):
        raise Rejected(ERR_UNSUPPORTED_ASSET, f"asset {req.asset} is not accepted", payer)
    if payload.accepted.asset.lower() != req.asset.lower():
        raise Rejected(ERR_UNSUPPORTED_ASSET, "the payment is for another asset", payer)
    extra = req.extra or {}
    if not isinstance(extra.get("name"), str) or not isinstance(extra.get("version"), str):
        raise Rejected(c.ERR_MISSING_EIP712_DOMAIN, payer=payer)
    if auth.to.lower() != req.pay_to.lower():
        raise Rejected(c.ERR_RECIPIENT_MISMATCH, payer=payer)
    try:
        amount: int | None = parse_base_units(req.amount)
    except AmountError:
        amount = None
    if auth.value != amount:
        raise Rejected(c.ERR_AUTHORIZATION_VALUE_MISMATCH, payer=payer)
    if auth.valid_before < now + VALID_BEFORE_MARGIN:
        raise Rejected(c.ERR_VALID_BEFORE_EXPIRED, payer=payer)
    if auth.valid_after > now:
        raise Rejected(c.ERR_VALID_AFTER_FUTURE, payer=payer)


def terms_digest(req: PaymentRequirements) -> str:
    """A digest of the requirement a payment is verified for: a reservation is bound to it, so
    the authorization cannot be settled for other terms while it is held."""
    canonical = json.dumps(
        req.model_dump(by_alias=True, mode="json", exclude_none=True),
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def transfer_digest(
    auth: Authorization, chain_id: int, token: str, name: str, version: str
) -> bytes:
    """The EIP-712 digest of ``auth`` under the token's domain (what a wallet is asked to
    approve through ERC-1271)."""
    domain = keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [_DOMAIN_TYPEHASH, keccak(name.encode()), keccak(version.encode()), chain_id, token],
        )
    )
    struct = keccak(
        abi_encode(
            ["bytes32", "address", "address", "uint256", "uint256", "uint256", "bytes32"],
            [
                _TRANSFER_TYPEHASH,
                auth.payer,
                auth.to,
                auth.value,
                auth.valid_after,
                auth.valid_before,
                auth.nonce,
            ],
        )
    )
    return keccak(b"\x19\x01" + domain + struct)


def recover_payer(auth: Authorization, chain_id: int, token: str, name: str, version: str) -> str:
    """The address that signed ``auth`` under the token's EIP-712 domain."""
    message = encode_typed_data(
        domain_data={
            "name": name,
            "version": version,
            "chainId": chain_id,
            "verifyingContract": token,
        },
        message_types=_EIP712_TYPES,
        message_data={
            "from": auth.payer,
            "to": auth.to,
            "value": auth.value,
            "validAfter": auth.valid_after,
            "validBefore": auth.valid_before,
            "nonce": auth.nonce,
        },
    )
    v, r, s = auth.vrs
    try:
        return str(Account.recover_message(message, vrs=(v, r, s)))
    except Exception as exc:  # malformed (r, s, v): not a signature of anyone
        raise Rejected(c.ERR_INVALID_SIGNATURE, "signature does not recover", auth.payer) from exc


_TRANSFER_SELECTOR = Web3.keccak(
    text="transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
)[:4]
_TRANSFER_TYPES = [
    "address",
    "address",
    "uint256",
    "uint256",
    "uint256",
    "bytes32",
    "uint8",
    "bytes32",
    "bytes32",
]


def transfer_calldata(auth: Authorization) -> str:
    """ABI calldata of ``transferWithAuthorization(..., v, r, s)`` for ``auth``."""
    v, r, s = auth.vrs
    args = [
        auth.payer,
        auth.to,
        auth.value,
        auth.valid_after,
        auth.valid_before,
        auth.nonce,
        v,
        r,
        s,
    ]
    return "0x" + (_TRANSFER_SELECTOR + abi_encode(_TRANSFER_TYPES, args)).hex()


_TRANSFER_BYTES_SELECTOR = Web3.keccak(
    text="transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)"
)[:4]


def transfer_bytes_calldata(auth: Authorization, signature: bytes) -> str:
    """ABI calldata of the ``bytes signature`` overload (contract wallets' signatures)."""
    args = [auth.payer, auth.to, auth.value, auth.valid_after, auth.valid_before, auth.nonce]
    types = [*_TRANSFER_TYPES[:6], "bytes"]
    return "0x" + (_TRANSFER_BYTES_SELECTOR + abi_encode(types, [*args, signature])).hex()


def map_revert(reason: str) -> str:
    """A token revert message -> the x402 reason code."""
    text = reason.lower()
    table = (
        (("expired",), c.ERR_VALID_BEFORE_EXPIRED),
        (("not yet valid",), c.ERR_VALID_AFTER_FUTURE),
        (("used", "canceled", "cancelled"), c.ERR_NONCE_ALREADY_USED),
        (("balance",), c.ERR_INSUFFICIENT_BALANCE),
        (("signature", "signer"), c.ERR_INVALID_SIGNATURE),
    )
    for markers, code in table:
        if any(m in text for m in markers):
            return code
    return c.ERR_TRANSACTION_SIMULATION_FAILED


AUTHORIZATION_USED_TOPIC = "0x" + Web3.keccak(text="AuthorizationUsed(address,bytes32)").hex()


def authorization_used(logs: list[Any], token: str, payer: str, nonce: str) -> bool:
    """True when ``logs`` hold the token's ``AuthorizationUsed(payer, nonce)`` (exactly this
    authorization was consumed; unambiguous even when a batch repeats payer, payee and value)."""
    want = (AUTHORIZATION_USED_TOPIC, "0x" + payer.lower()[2:].rjust(64, "0"), nonce.lower())
    for log in logs:
        address = str(_field(log, "address") or "").lower()
        topics = [_hex(t) for t in (_field(log, "topics") or [])]
        if address == token.lower() and tuple(topics[:3]) == want:
            return True
    return False


def _field(log: Any, name: str) -> Any:
    return log.get(name) if isinstance(log, Mapping) else getattr(log, name, None)


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = str(value).lower()
    return text if text.startswith("0x") else "0x" + text


def payer_hint(payload: PaymentPayload) -> str | None:
    auth = payload.payload.get("authorization")
    payer = auth.get("from") if isinstance(auth, dict) else None
    return payer if isinstance(payer, str) else None
