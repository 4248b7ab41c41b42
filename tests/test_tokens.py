"""Human amounts: every amount a person types is read the same way, "0.01" or "0.01 USDC", in
exact base units; another token's symbol is refused, never converted."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentbazaar.errors import AmountError, UnknownTokenError
from agentbazaar.tokens import NATIVE, Token, TokenRegistry, split_amount

USDC = Token("USDC", 6, "0x5FbDB2315678afecb367f032d93F642f64180aa3", "USD Coin", "2")
DAI = Token("DAI", 18, "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
TOKENS = TokenRegistry([NATIVE, USDC, DAI])

amounts = st.decimals(
    min_value=Decimal("0.000001"), max_value=10**12, places=6, allow_nan=False
).map(lambda d: format(d.normalize(), "f"))


@given(amounts)
def test_with_or_without_its_symbol_the_same_units(text: str) -> None:
    units = int(Decimal(text) * 10**6)
    assert USDC.parse(text) == units
    for written in (f"{text} USDC", f"{text}USDC", f" {text} usdc ", f"{text} Usdc"):
        assert USDC.parse(written) == units, written
        assert TOKENS.parse_amount(written) == (USDC, units)
    assert TOKENS.parse_amount(text, default_token="USDC") == (USDC, units)


@pytest.mark.parametrize("text", ["0.01 DAI", "0.01DAI", "1 ETH", "5 WETH"])
def test_another_tokens_symbol_is_refused(text: str) -> None:
    with pytest.raises(AmountError, match="this amount is in USDC"):
        USDC.parse(text)


@pytest.mark.parametrize(
    "text", ["", "USDC", "0.01 USDC more", "-1 USDC", "1e3 USDC", "0.0000001 USDC", "nan USDC"]
)
def test_bad_amounts_are_amount_errors(text: str) -> None:
    with pytest.raises(AmountError):
        USDC.parse(text)


def test_the_registry_needs_a_token_and_knows_it() -> None:
    with pytest.raises(AmountError, match=r"12\.5 USDC"):
        TOKENS.parse_amount("12.5")
    with pytest.raises(UnknownTokenError):
        TOKENS.parse_amount("12.5 NOPE")
    assert TOKENS.parse_amount("1.5 dai") == (DAI, 15 * 10**17)


@pytest.mark.parametrize(
    ("text", "split"),
    [("12.5 USDC", ("12.5", "USDC")), ("12.5USDC", ("12.5", "USDC")), ("12.5", ("12.5", None))],
)
def test_split_amount(text: str, split: tuple[str, str | None]) -> None:
    assert split_amount(text) == split
