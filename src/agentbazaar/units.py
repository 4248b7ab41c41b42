"""Exact money: integer base units in, integer base units out; text parsed with Decimal.

Never a float. ``parse_units("12.5", 6) == 12_500_000``; ``format_units(12_500_000, 6) == "12.5"``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from agentbazaar.errors import AmountError

_NUMBER = re.compile(r"^\+?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?$")
MAX_UINT256 = 2**256 - 1


def parse_units(text: str | int | Decimal, decimals: int, *, allow_zero: bool = False) -> int:
    """Parse a human amount ("12.5", "1,000", Decimal) into base units for ``decimals``.

    Raises AmountError for negative, non-numeric, too precise or out-of-range amounts.
    """
    if isinstance(text, bool):
        raise AmountError(f"not an amount: {text!r}")
    if isinstance(text, int):
        value = Decimal(text)
    elif isinstance(text, Decimal):
        value = text
    elif isinstance(text, str):
        cleaned = text.strip().replace("_", "")
        if cleaned.startswith("-"):
            raise AmountError(f"amount must not be negative: {text!r}")
        if not cleaned or not _NUMBER.match(cleaned) or cleaned in {".", "+"}:
            raise AmountError(f"not a number: {text!r} (write it like 12.5 or 1,000)")
        try:
            value = Decimal(cleaned.replace(",", ""))
        except InvalidOperation as exc:  # pragma: no cover - regex guards this
            raise AmountError(f"not a number: {text!r}") from exc
    else:
        raise AmountError(f"not an amount: {text!r}")
    if not value.is_finite():
        raise AmountError(f"amount must be finite: {text!r}")
    if value < 0:
        raise AmountError(f"amount must not be negative: {text!r}")
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise AmountError(
            f"amount {text!r} has more than {decimals} decimal places for this token",
            decimals=decimals,
        )
    units = int(scaled)
    if units == 0 and not allow_zero:
        raise AmountError(f"amount must be greater than zero: {text!r}")
    if units > MAX_UINT256:
        raise AmountError(f"amount is too large: {text!r}")
    return units


def format_units(units: int, decimals: int) -> str:
    """Format base units as a plain decimal string without trailing zeros ("12.5", "0", "3")."""
    if not isinstance(units, int) or isinstance(units, bool):
        raise AmountError(f"base units must be an integer, got {type(units).__name__}")
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    if decimals == 0 or frac == 0:
        return f"{sign}{whole}"
    frac_text = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{sign}{whole}.{frac_text}"
