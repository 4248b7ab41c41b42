"""The domain types of ``agentbazaar.primitives``: each parser returns one canonical form or
raises its own error (never ``ValueError`` or ``TypeError``), and each alias does the same as a
pydantic field."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils.address import to_checksum_address
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from agentbazaar.chain import to_address
from agentbazaar.errors import AddressError, AmountError, InputError
from agentbazaar.primitives import (
    MAX_UINT256,
    Address,
    BaseUnits,
    Bytes32,
    Network,
    network_chain_id,
    parse_address,
    parse_base_units,
    parse_bytes32,
    parse_network,
)

HEX = "0123456789abcdefABCDEF"
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(),
    st.text(),
    st.text(alphabet=HEX + "0xX: \n-+_", max_size=80),
    st.builds(lambda s: "0x" + s, st.text(alphabet=HEX, max_size=80)),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def refused_with(error: type[Exception], parse: Any, value: object) -> None:
    """``parse(value)`` either succeeds or raises ``error``: nothing else escapes."""
    try:
        parse(value)
    except error:
        pass


# ---- Address --------------------------------------------------------------------------------
@given(st.binary(min_size=20, max_size=20))
def test_an_address_parses_to_its_checksum_in_any_case(raw: bytes) -> None:
    checksum = to_checksum_address(raw)
    assert parse_address(checksum) == checksum
    assert parse_address(checksum.lower()) == checksum
    assert parse_address("0x" + checksum[2:].upper()) == checksum


@given(st.binary(min_size=20, max_size=20), st.data())
def test_a_case_flip_in_a_mixed_case_address_is_refused(raw: bytes, data: st.DataObject) -> None:
    checksum = to_checksum_address(raw)
    letters = [i for i, c in enumerate(checksum) if i >= 2 and c.isalpha()]
    assume(letters)
    i = data.draw(st.sampled_from(letters))
    mutated = checksum[:i] + checksum[i].swapcase() + checksum[i + 1 :]
    digits = mutated[2:]
    assume(digits not in (digits.lower(), digits.upper()))  # still mixed case: checked
    with pytest.raises(AddressError, match="bad checksum"):
        parse_address(mutated)


@given(anything)
def test_bad_addresses_raise_address_error_only(value: object) -> None:
    refused_with(AddressError, parse_address, value)


@pytest.mark.parametrize(
    "bad",
    [
        "ab" * 20,  # no 0x
        "0X" + "ab" * 20,
        "0x" + "ab" * 20 + "\n",
        "0x" + "ab" * 19,
        "0x" + "ab" * 21,
        "0x" + "g" * 40,
        " 0x" + "ab" * 20,
        b"\x00" * 20,
    ],
)
def test_malformed_addresses_are_refused(bad: object) -> None:
    with pytest.raises(AddressError, match="not an Ethereum address"):
        parse_address(bad)


def test_chain_to_address_is_the_one_address_parser() -> None:
    assert to_address is parse_address


# ---- BaseUnits ------------------------------------------------------------------------------
@given(st.integers(min_value=0, max_value=MAX_UINT256))
def test_base_units_round_trip_as_int_and_text(units: int) -> None:
    assert parse_base_units(units) == units
    assert parse_base_units(str(units)) == units


@given(st.one_of(st.integers(max_value=-1), st.integers(min_value=MAX_UINT256 + 1)))
def test_base_units_out_of_range_are_refused(units: int) -> None:
    with pytest.raises(AmountError):
        parse_base_units(units)
    with pytest.raises(AmountError):
        parse_base_units(str(units))


@pytest.mark.parametrize(
    "bad", [True, False, 1.0, "1.5", "-1", "+1", "", " 1", "1 ", "1_000", "²", "١٢", "0x10"]
)
def test_base_units_are_whole_ascii_numbers(bad: object) -> None:
    with pytest.raises(AmountError):
        parse_base_units(bad)


@given(anything)
def test_bad_base_units_raise_amount_error_only(value: object) -> None:
    refused_with(AmountError, parse_base_units, value)


# ---- Network --------------------------------------------------------------------------------
@given(st.integers(min_value=1, max_value=10**32 - 1))
def test_a_caip2_evm_network_parses_to_itself(chain_id: int) -> None:
    network = f"eip155:{chain_id}"
    assert parse_network(network) == network
    assert network_chain_id(network) == chain_id


@pytest.mark.parametrize(
    "bad",
    [
        "eip155:0",
        "eip155:01",
        "eip155:-1",
        "eip155:",
        "eip155:1\n",
        "EIP155:1",
        "eip155:1:0xabc",
        "eip155:" + "1" * 33,
        "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
        31337,
    ],
)
def test_other_networks_are_refused(bad: object) -> None:
    with pytest.raises(InputError, match="not a network"):
        parse_network(bad)


@given(anything)
def test_bad_networks_raise_input_error_only(value: object) -> None:
    refused_with(InputError, parse_network, value)
    refused_with(InputError, network_chain_id, value)


# ---- Bytes32 --------------------------------------------------------------------------------
@given(st.binary(min_size=32, max_size=32))
def test_bytes32_parse_from_hex_in_any_case_and_from_bytes(raw: bytes) -> None:
    assert parse_bytes32("0x" + raw.hex()) == raw
    assert parse_bytes32("0x" + raw.hex().upper()) == raw
    assert parse_bytes32(raw) == raw
    assert parse_bytes32(bytearray(raw)) == raw


@given(st.binary().filter(lambda b: len(b) != 32))
def test_bytes32_of_another_length_are_refused(raw: bytes) -> None:
    with pytest.raises(InputError):
        parse_bytes32("0x" + raw.hex())
    with pytest.raises(InputError):
        parse_bytes32(raw)


@given(anything)
def test_bad_bytes32_raise_input_error_only(value: object) -> None:
    refused_with(InputError, parse_bytes32, value)


# ---- as pydantic fields ---------------------------------------------------------------------
class Payment(BaseModel):
    payer: Address
    amount: BaseUnits
    network: Network
    nonce: Bytes32


@given(
    st.binary(min_size=20, max_size=20),
    st.integers(min_value=0, max_value=MAX_UINT256),
    st.integers(min_value=1, max_value=2**64),
    st.binary(min_size=32, max_size=32),
)
def test_fields_parse_and_round_trip_through_json(
    raw: bytes, units: int, chain_id: int, nonce: bytes
) -> None:
    payment = Payment(
        payer="0x" + raw.hex(),  # type: ignore[arg-type]
        amount=str(units),  # type: ignore[arg-type]
        network=f"eip155:{chain_id}",
        nonce="0x" + nonce.hex(),  # type: ignore[arg-type]
    )
    assert payment.payer == to_checksum_address(raw)
    assert (payment.amount, payment.nonce) == (units, nonce)
    wire = payment.model_dump(mode="json")
    assert wire["nonce"] == "0x" + nonce.hex()
    assert Payment.model_validate_json(payment.model_dump_json()) == payment
    assert Payment.model_validate(payment.model_dump()) == payment


@given(st.sampled_from(["payer", "amount", "network", "nonce"]), anything)
def test_a_bad_field_is_a_validation_error_naming_it(field: str, value: object) -> None:
    good: dict[str, object] = {
        "payer": "0x" + "ab" * 20,
        "amount": "1",
        "network": "eip155:1",
        "nonce": "0x" + "00" * 32,
    }
    try:
        Payment.model_validate({**good, field: value})
    except ValidationError as exc:
        assert [e["loc"] for e in exc.errors()] == [(field,)]
