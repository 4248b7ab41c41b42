"""Domain types below every layer: one parser each, and an ``Annotated`` alias for pydantic.

    type        value            parser              refuses with
    Address     ChecksumAddress  parse_address       AddressError  (0x + 40 hex, EIP-55 checked
                                                                    when mixed-case)
    BaseUnits   int              parse_base_units    AmountError   (0 <= n < 2**256, an int or
                                                                    a decimal string; no bool)
    Network     str              parse_network       InputError    (CAIP-2 ``eip155:<chain id>``)
    Bytes32     bytes            parse_bytes32       InputError    (0x + 64 hex, or 32 bytes)

A parser takes anything (text off the wire, a JSON value, a Python object) and either returns
the value in its one canonical form or raises the error named above: never ``ValueError`` or
``TypeError``. Packages that answer with their own error (a channel's, an x402 reason code)
translate it where they read the field. As pydantic fields the aliases raise pydantic's
``ValidationError`` with the parser's message; ``Bytes32`` serialises to ``0x`` hex in JSON.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Annotated, Any

from eth_typing import ChecksumAddress
from eth_utils.address import is_checksum_address, to_checksum_address
from pydantic import BeforeValidator, PlainSerializer
from pydantic_core import PydanticCustomError

from agentbazaar.errors import AddressError, AmountError, BazaarError, InputError

MAX_UINT256 = 2**256 - 1
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_DIGITS = re.compile(r"[0-9]{1,78}")  # 2**256 - 1 has 78 digits
_NETWORK = re.compile(r"eip155:[1-9][0-9]{0,31}")  # a CAIP-2 reference is at most 32 characters
_BYTES32 = re.compile(r"0x[0-9a-fA-F]{64}")


def parse_address(value: object) -> ChecksumAddress:
    """``value`` as an EIP-55 checksummed address: 0x + 40 hex digits, all lower case, all upper
    case, or mixed case with a correct checksum."""
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise AddressError(f"not an Ethereum address: {value!r} (expected 0x + 40 hex digits)")
    return _checksummed(value)


@functools.lru_cache(maxsize=65_536)
def _checksummed(value: str) -> ChecksumAddress:
    """The checksum of a well-formed address (cached: cards and payloads repeat addresses)."""
    digits = value[2:]
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(value):
        raise AddressError(f"bad checksum in address {value!r}: copy it again or use lower case")
    return to_checksum_address(value)


def parse_base_units(value: object) -> int:
    """An amount in a token's smallest unit: a non-negative ``int`` below 2**256, given as an
    ``int`` or a string of ASCII digits (how x402 payloads carry numbers)."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        units = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        units = value
    else:
        raise AmountError(f"not an amount in base units: {value!r} (expected a whole number)")
    if not 0 <= units <= MAX_UINT256:
        raise AmountError(f"amount in base units out of range 0 .. 2**256-1: {value!r}")
    return units


def parse_network(value: object) -> str:
    """A CAIP-2 EVM network id, ``eip155:<chain id>`` (``eip155:31337``)."""
    if not isinstance(value, str) or not _NETWORK.fullmatch(value):
        raise InputError(f"not a network: {value!r} (expected a CAIP-2 id like 'eip155:31337')")
    return value


def network_chain_id(network: object) -> int:
    """The chain id of a CAIP-2 EVM network id (``eip155:8453`` -> 8453)."""
    return int(parse_network(network).partition(":")[2])


def parse_bytes32(value: object) -> bytes:
    """32 bytes: 0x + 64 hex digits (a nonce, salt, channel id or hash), or 32 raw bytes."""
    if isinstance(value, bytes | bytearray) and len(value) == 32:
        return bytes(value)
    if not isinstance(value, str) or not _BYTES32.fullmatch(value):
        raise InputError(f"not 32 bytes of hex: {value!r} (expected 0x + 64 hex digits)")
    return bytes.fromhex(value[2:])


def _field(parse: Callable[[Any], object]) -> BeforeValidator:
    """A pydantic validator that runs ``parse`` and reports its message as a validation error
    (pydantic turns only its own errors and ``ValueError`` into a ``ValidationError``)."""

    def validate(value: object) -> object:
        try:
            return parse(value)
        except BazaarError as exc:
            raise PydanticCustomError(parse.__name__, "{message}", {"message": str(exc)}) from exc

    return BeforeValidator(validate)


Address = Annotated[ChecksumAddress, _field(parse_address)]
BaseUnits = Annotated[int, _field(parse_base_units)]
Network = Annotated[str, _field(parse_network)]
Bytes32 = Annotated[
    bytes, _field(parse_bytes32), PlainSerializer(lambda b: "0x" + b.hex(), when_used="json")
]
