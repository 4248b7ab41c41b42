"""The wire-field parsers of ``channels._crypto``: a channel config, an amount or a bytes32 off
the wire is read or refused with ``ChannelInputError``, never a stray ``ValueError``."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentbazaar.channels import _crypto as cx
from agentbazaar.channels.errors import ChannelInputError

PAYER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
GOOD: dict[str, Any] = {
    "payer": PAYER,
    "payerAuthorizer": PAYER,
    "receiver": TOKEN,
    "receiverAuthorizer": TOKEN,
    "token": TOKEN,
    "withdrawDelay": 900,
    "salt": "0x" + "00" * 32,
}
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.text(alphabet="0123456789abcdefABCDEFx²١", max_size=80),
    st.lists(st.integers(), max_size=2),
)


def test_a_config_round_trips_through_the_wire() -> None:
    config = cx.ChannelConfig.from_wire(GOOD)
    assert config.to_wire() == GOOD
    lower = {k: v.lower() if isinstance(v, str) else v for k, v in GOOD.items()}
    assert cx.ChannelConfig.from_wire(lower) == config


@given(st.sampled_from(sorted(GOOD)), values)
def test_any_config_field_value_is_read_or_refused(field: str, value: object) -> None:
    try:
        cx.ChannelConfig.from_wire({**GOOD, field: value})
    except ChannelInputError:
        pass


def test_a_wrong_checksum_is_refused() -> None:
    i = next(i for i, ch in enumerate(PAYER) if i > 1 and ch.isalpha())
    bad = PAYER[:i] + PAYER[i].swapcase() + PAYER[i + 1 :]
    with pytest.raises(ChannelInputError, match=r"channelConfig\.payer: bad checksum"):
        cx.ChannelConfig.from_wire({**GOOD, "payer": bad})


@given(values)
def test_amounts_and_bytes32_are_read_or_refused(value: object) -> None:
    try:
        amount = cx.parse_amount(value, "amount")
    except ChannelInputError:
        pass
    else:
        assert 0 <= amount <= cx.UINT128_MAX
    try:
        assert len(cx.parse_bytes32(value, "salt")) == 32
    except ChannelInputError:
        pass


@pytest.mark.parametrize("bad", ["²", "١٢", "-1", "1.0", str(2**128), True, None])
def test_amounts_are_ascii_uint128(bad: object) -> None:
    with pytest.raises(ChannelInputError):
        cx.parse_amount(bad, "amount")
