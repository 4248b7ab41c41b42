"""EIP-712 hashing and ECDSA for the batch-settlement scheme, fast enough for a hot path.

Everything here is a pure function over bytes. The domain separator and each channel's id are
computed once and cached by the caller; a voucher then costs two keccaks and one secp256k1
recovery (libsecp256k1 through coincurve), instead of a full typed-data encoding per voucher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coincurve import PrivateKey, PublicKey
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address

from agentbazaar import primitives
from agentbazaar.channels.errors import ChannelInputError
from agentbazaar.errors import AddressError, AmountError, InputError
from agentbazaar.primitives import parse_address, parse_base_units

try:  # libsecp256k1 through coincurve's cffi module: ~2x cheaper per recovery than its wrappers
    from coincurve._libsecp256k1 import ffi as _ffi
    from coincurve._libsecp256k1 import lib as _lib
    from coincurve.context import GLOBAL_CONTEXT as _GLOBAL_CONTEXT

    _CTX = _GLOBAL_CONTEXT.ctx
except ImportError:  # pragma: no cover - fall back to coincurve's public API
    _ffi = _lib = _CTX = None

try:  # safe-pysha3 (pinned in constraints.txt): ~6x faster per call than pycryptodome
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        return bytes(_keccak_256(data).digest())

except ImportError:  # pragma: no cover - fallback when the C extension is unavailable
    from eth_hash.auto import keccak as _eth_keccak

    def keccak(data: bytes) -> bytes:
        return bytes(_eth_keccak(data))


ZERO_ADDRESS = to_checksum_address("0x" + "00" * 20)
DOMAIN_NAME = "x402 Batch Settlement"
DOMAIN_VERSION = "1"
MIN_WITHDRAW_DELAY = 900
MAX_WITHDRAW_DELAY = 2_592_000
UINT128_MAX = 2**128 - 1

_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
CHANNEL_CONFIG_TYPEHASH = keccak(
    b"ChannelConfig(address payer,address payerAuthorizer,address receiver,"
    b"address receiverAuthorizer,address token,uint40 withdrawDelay,bytes32 salt)"
)
VOUCHER_TYPEHASH = keccak(b"Voucher(bytes32 channelId,uint128 maxClaimableAmount)")
REFUND_TYPEHASH = keccak(b"Refund(bytes32 channelId,uint256 nonce,uint128 amount)")
CLAIM_ENTRY_TYPEHASH = keccak(
    b"ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)"
)
CLAIM_BATCH_TYPEHASH = keccak(
    b"ClaimBatch(ClaimEntry[] claims)ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,"
    b"uint128 totalClaimed)"
)
_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _addr_word(address: str) -> bytes:
    return b"\x00" * 12 + bytes.fromhex(address[2:])


def _address(value: Any, field: str) -> ChecksumAddress:
    try:
        return parse_address(value)
    except AddressError as exc:
        raise ChannelInputError(f"channelConfig.{field}: {exc}") from exc


def parse_bytes32(value: Any, field: str) -> bytes:
    """A bytes32 field of a wire payload (0x + 64 hex digits)."""
    if not isinstance(value, str):
        raise ChannelInputError(f"{field} must be 0x followed by 64 hex digits")
    try:
        return primitives.parse_bytes32(value)
    except InputError as exc:
        raise ChannelInputError(f"{field} must be 0x followed by 64 hex digits") from exc


def parse_amount(value: Any, field: str) -> int:
    """A uint128 amount given as a decimal string (or int) on the wire."""
    try:
        amount = parse_base_units(value)
    except AmountError as exc:
        raise ChannelInputError(f"{field} must be a decimal integer string: {exc}") from exc
    if amount > UINT128_MAX:
        raise ChannelInputError(f"{field} is out of the uint128 range")
    return amount


def parse_signature(value: Any, field: str = "voucher.signature") -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) > 2 + 2 * 1024:
        raise ChannelInputError(f"{field} must be a 0x-prefixed hex signature")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise ChannelInputError(f"{field} must be a 0x-prefixed hex signature") from exc


@dataclass(frozen=True)
class ChannelConfig:
    """The immutable identity of a channel (the contract's `ChannelConfig` struct)."""

    payer: ChecksumAddress
    payer_authorizer: ChecksumAddress
    receiver: ChecksumAddress
    receiver_authorizer: ChecksumAddress
    token: ChecksumAddress
    withdraw_delay: int
    salt: bytes

    @classmethod
    def from_wire(cls, data: Any) -> ChannelConfig:
        if not isinstance(data, dict):
            raise ChannelInputError("channelConfig must be an object")
        try:
            delay = parse_base_units(data.get("withdrawDelay"))
        except AmountError as exc:
            raise ChannelInputError("channelConfig.withdrawDelay must be an integer") from exc
        if not MIN_WITHDRAW_DELAY <= delay <= MAX_WITHDRAW_DELAY:
            raise ChannelInputError("channelConfig.withdrawDelay must be 15 minutes to 30 days")
        return cls(
            payer=_address(data.get("payer"), "payer"),
            payer_authorizer=_address(data.get("payerAuthorizer"), "payerAuthorizer"),
            receiver=_address(data.get("receiver"), "receiver"),
            receiver_authorizer=_address(data.get("receiverAuthorizer"), "receiverAuthorizer"),
            token=_address(data.get("token"), "token"),
            withdraw_delay=delay,
            salt=parse_bytes32(data.get("salt"), "channelConfig.salt"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "payer": self.payer,
            "payerAuthorizer": self.payer_authorizer,
            "receiver": self.receiver,
            "receiverAuthorizer": self.receiver_authorizer,
            "token": self.token,
            "withdrawDelay": self.withdraw_delay,
            "salt": "0x" + self.salt.hex(),
        }

    def as_tuple(self) -> tuple[str, str, str, str, str, int, bytes]:
        """The struct as web3.py encodes it for the contract."""
        return (
            self.payer,
            self.payer_authorizer,
            self.receiver,
            self.receiver_authorizer,
            self.token,
            self.withdraw_delay,
            self.salt,
        )

    def struct_hash(self) -> bytes:
        return keccak(
            CHANNEL_CONFIG_TYPEHASH
            + _addr_word(self.payer)
            + _addr_word(self.payer_authorizer)
            + _addr_word(self.receiver)
            + _addr_word(self.receiver_authorizer)
            + _addr_word(self.token)
            + _word(self.withdraw_delay)
            + self.salt
        )


def domain_separator(chain_id: int, contract: str) -> bytes:
    return keccak(
        _DOMAIN_TYPEHASH
        + keccak(DOMAIN_NAME.encode())
        + keccak(DOMAIN_VERSION.encode())
        + _word(chain_id)
        + _addr_word(to_checksum_address(contract))
    )


def typed_hash(domain: bytes, struct_hash: bytes) -> bytes:
    return keccak(b"\x19\x01" + domain + struct_hash)


def channel_id(domain: bytes, config: ChannelConfig) -> bytes:
    return typed_hash(domain, config.struct_hash())


def voucher_digest(domain: bytes, channel: bytes, max_claimable: int) -> bytes:
    return typed_hash(domain, keccak(VOUCHER_TYPEHASH + channel + _word(max_claimable)))


def refund_digest(domain: bytes, channel: bytes, nonce: int, amount: int) -> bytes:
    return typed_hash(domain, keccak(REFUND_TYPEHASH + channel + _word(nonce) + _word(amount)))


def claim_batch_digest(domain: bytes, entries: list[tuple[bytes, int, int]]) -> bytes:
    """Digest of a `ClaimBatch`: entries are (channelId, maxClaimableAmount, totalClaimed)."""
    hashes = b"".join(
        keccak(CLAIM_ENTRY_TYPEHASH + cid + _word(ceiling) + _word(total))
        for cid, ceiling, total in entries
    )
    return typed_hash(domain, keccak(CLAIM_BATCH_TYPEHASH + keccak(hashes)))


def _check_rsv(signature: bytes) -> int | None:
    """The recovery id of a 65-byte (r, s, v) signature the contract would accept, or None:
    v in {27, 28} (or {0, 1}) and s in the lower half of the curve order."""
    if len(signature) != 65:
        return None
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1) or int.from_bytes(signature[32:64], "big") > _HALF_N:
        return None
    return v


def recover_key_id(digest: bytes, signature: bytes) -> bytes | None:
    """The signer's public key in libsecp256k1's own 64-byte form (comparable within this
    process, see `public_key_of`), or None when the signature is not valid.

    The hot path of voucher checks: one parse and one recovery straight through the library,
    without coincurve's object wrappers or a serialisation of the key."""
    v = _check_rsv(signature)
    if v is None or len(digest) != 32:
        return None
    if _lib is None:  # pragma: no cover - coincurve without its cffi module
        return _recover_slow(digest, signature[:64] + bytes([v]))
    rsig = _ffi.new("secp256k1_ecdsa_recoverable_signature *")
    if not _lib.secp256k1_ecdsa_recoverable_signature_parse_compact(_CTX, rsig, signature[:64], v):
        return None
    pub = _ffi.new("secp256k1_pubkey *")
    if not _lib.secp256k1_ecdsa_recover(_CTX, pub, rsig, digest):
        return None
    return bytes(_ffi.buffer(pub, 64))


def public_key_of(key_id: bytes) -> bytes:
    """The 64-byte uncompressed public key (x || y) of a `recover_key_id` result."""
    if _lib is None:  # pragma: no cover
        return key_id
    pub = _ffi.new("secp256k1_pubkey *")
    _ffi.memmove(pub, key_id, 64)
    out = _ffi.new("unsigned char[65]")
    size = _ffi.new("size_t *", 65)
    _lib.secp256k1_ec_pubkey_serialize(_CTX, out, size, pub, _lib.SECP256K1_EC_UNCOMPRESSED)
    return bytes(_ffi.buffer(out, 65))[1:]


def _recover_slow(digest: bytes, rsv: bytes) -> bytes | None:
    try:
        pub = PublicKey.from_signature_and_message(rsv, digest, hasher=None)
    except Exception:  # coincurve raises plain Exception for an invalid point
        return None
    return bytes(pub.format(compressed=False)[1:])


def recover_public_key(digest: bytes, signature: bytes) -> bytes | None:
    """The 64-byte uncompressed public key behind a 65-byte (r, s, v) signature, or None.

    Same acceptance rule as the contract: v in {27, 28} (or {0, 1}), s in the lower half.
    """
    key_id = recover_key_id(digest, signature)
    return None if key_id is None else public_key_of(key_id)


def address_of(public_key: bytes) -> bytes:
    return keccak(public_key)[12:]


def recover(digest: bytes, signature: bytes) -> bytes | None:
    """The 20-byte signer of a 65-byte (r, s, v) signature, or None when it is not valid."""
    pub = recover_public_key(digest, signature)
    return None if pub is None else address_of(pub)


def sign(private_key: bytes | PrivateKey, digest: bytes) -> bytes:
    """A 65-byte (r, s, v=27/28) signature over a 32-byte digest (pass a `PrivateKey` to sign
    many: building one from bytes derives its public key, ~40 us)."""
    key = private_key if isinstance(private_key, PrivateKey) else PrivateKey(private_key)
    raw = key.sign_recoverable(digest, hasher=None)
    return raw[:64] + bytes([raw[64] + 27])


RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak(
    b"ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
    b"uint256 validBefore,bytes32 nonce)"
)


def token_domain(chain_id: int, token: str, name: str, version: str) -> bytes:
    """The EIP-712 domain separator of an EIP-3009 token (name and version from `extra`)."""
    return keccak(
        _DOMAIN_TYPEHASH
        + keccak(name.encode())
        + keccak(version.encode())
        + _word(chain_id)
        + _addr_word(to_checksum_address(token))
    )


def deposit_nonce(channel: bytes, salt: bytes) -> bytes:
    """The ERC-3009 nonce the deposit collector uses: keccak256(abi.encode(channelId, salt))."""
    return keccak(channel + salt)


def receive_authorization_digest(
    domain: bytes,
    sender: str,
    to: str,
    value: int,
    valid_after: int,
    valid_before: int,
    nonce: bytes,
) -> bytes:
    struct = keccak(
        RECEIVE_WITH_AUTHORIZATION_TYPEHASH
        + _addr_word(sender)
        + _addr_word(to)
        + _word(value)
        + _word(valid_after)
        + _word(valid_before)
        + nonce
    )
    return typed_hash(domain, struct)
