"""Exact quantities: money in integer base units, durations in whole seconds; text parsed with
Decimal, never a float.

``parse_units("12.5", 6) == 12_500_000``; ``format_units(12_500_000, 6) == "12.5"``;
``parse_duration("15m") == parse_duration("15 minutes") == 900``; ``format_duration(5400) ==
"1h 30m"``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from agentbazaar.errors import AmountError, DurationError

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


# a month and a year in a contract or a command are fixed numbers of seconds
SECONDS: dict[str, int] = {
    "second": 1,
    "minute": 60,
    "hour": 3_600,
    "day": 86_400,
    "week": 604_800,
    "month": 2_592_000,  # 30 days
    "year": 31_536_000,  # 365 days
}
_DURATION_UNITS = {
    **{unit: unit for unit in SECONDS},
    "s": "second", "sec": "second",
    "m": "minute", "min": "minute",
    "h": "hour", "hr": "hour",
    "d": "day",
    "w": "week", "wk": "week",
    "mo": "month",
    "y": "year", "yr": "year",
}  # fmt: skip
_DURATION = re.compile(r"^\s*([\d.,_]+)\s*([a-z]*)\s*$")


def parse_duration(text: str) -> int:
    """Whole seconds in "90", "90s", "15m", "2h", "3d", "1w", "1.5 hours", "12 months".

    Raises DurationError for anything else, an unknown unit, or a fraction of a second.
    """
    if not isinstance(text, str):
        raise DurationError(f"not a duration: {text!r}")
    m = _DURATION.match(text.lower())
    if not m:
        raise DurationError(f"not a duration: {text!r} (write it like 90s, 15m, 2h, 3d or 7 days)")
    number, unit = m.group(1).replace(",", "").replace("_", ""), m.group(2)
    plural = unit[:-1] if unit.endswith("s") and len(unit) > 2 else None  # "mins", not "ms"
    name = _DURATION_UNITS.get(unit or "s") or _DURATION_UNITS.get(plural or "")
    if name is None:
        raise DurationError(f"unknown time unit in {text!r}: use {', '.join(SECONDS)}")
    try:
        seconds = Decimal(number) * SECONDS[name]
    except InvalidOperation as exc:
        raise DurationError(f"not a duration: {text!r}") from exc
    if seconds != seconds.to_integral_value():
        raise DurationError(f"{text!r} is not a whole number of seconds")
    return int(seconds)


def format_duration(seconds: int) -> str:
    """``5400`` -> ``"1h 30m"``: the two largest units (d, h, m, s), ``"0s"`` for nothing."""
    left = abs(int(seconds))
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return " ".join(parts[:2]) or "0s"
