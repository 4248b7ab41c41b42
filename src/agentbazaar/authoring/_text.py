"""Small deterministic readers of English the template parsers share (no model, no network).

Each returns the value as written (a raw parameter) or None; ``params.resolve`` turns it into
an exact value and says what is wrong with it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from agentbazaar.errors import AmountError

NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?[km]?"
NAME = r"0x[0-9a-fA-F]{40}|[A-Za-z][\w-]*"
_UNITS = r"seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|mos?|years?|yrs?"
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}  # fmt: skip
NUMBER_WORDS: dict[str, int] = {**{w: i for i, w in enumerate(_ONES)}, **_TENS}
_WORD = "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))
DURATION = rf"(?:{NUMBER}|an?|{_WORD})[\s-]*(?:{_UNITS})"
PERIOD_WORDS = {"hourly": "1 hour", "daily": "1 day", "weekly": "1 week", "monthly": "1 month",
                "yearly": "1 year", "annually": "1 year", "fortnightly": "2 weeks"}  # fmt: skip
_AMOUNT = re.compile(rf"(?<![\w.])({NUMBER})\s*([A-Za-z]{{2,6}})\b")
_STOP = {"to", "for", "over", "per", "a", "an", "the", "and", "or", "with", "in", "of", "from"}


def words_to_digits(text: str) -> str:
    """'twelve months' -> '12 months', 'twenty-five' -> '25', 'two thousand' -> '2000',
    'a dozen' -> '12', 'a hundred' -> '100'; the rest as written."""

    def tens(m: re.Match[str]) -> str:
        return str(_TENS[m.group(1).lower()] + NUMBER_WORDS[m.group(2).lower()])

    out = re.sub(rf"\b({'|'.join(_TENS)})[\s-]({'|'.join(_ONES[1:10])})\b", tens, text, flags=re.I)
    out = re.sub(r"\b(?:an?|one)\s+dozen\b", "12", out, flags=re.IGNORECASE)
    out = re.sub(r"\ban?\s+(hundred|thousand|million)\b", r"1 \1", out, flags=re.IGNORECASE)
    out = re.sub(rf"\b({_WORD})\b", lambda m: str(NUMBER_WORDS[m.group(1).lower()]), out,
                 flags=re.IGNORECASE)  # fmt: skip
    return re.sub(r"(\d+(?:\.\d+)?)\s+(hundred|thousand|million)\b", _scaled, out, flags=re.I)


def _scaled(m: re.Match[str]) -> str:
    from decimal import Decimal

    scale = {"hundred": 100, "thousand": 1_000, "million": 1_000_000}[m.group(2).lower()]
    return format((Decimal(m.group(1)) * scale).normalize(), "f")


def plain_amount(text: str) -> str:
    """'2.5k' -> '2500', '1.5m' -> '1500000'; anything else as written."""
    t = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(t[-1:]) if t else None
    if scale is None:
        return text.strip()
    try:
        value = Decimal(t[:-1].replace(",", "")) * scale
    except InvalidOperation as exc:
        raise AmountError(f"not a number: {text!r}") from exc
    return format(value.normalize(), "f")


def plain_number(text: str) -> str:
    """'2.5k' -> '2500', '21m' -> '21000000', '1,000' stays (parse_units reads commas)."""
    return plain_amount(text)


def amount_token(sentence: str, tokens: set[str] | None = None) -> tuple[str, str] | None:
    """The first '<number> <TOKEN>' ('1,000 USDC', '50usdc'): (number, symbol)."""
    for m in _AMOUNT.finditer(sentence):
        symbol = m.group(2)
        if symbol.lower() in _STOP or re.fullmatch(_UNITS, symbol.lower()):
            continue
        if tokens is not None and symbol.upper() not in tokens:
            continue
        return plain_number(m.group(1)), symbol.upper()
    return None


def after(sentence: str, words: str) -> str | None:
    """The name or address right after one of ``words`` ('to bob', 'for carol')."""
    m = re.search(rf"\b(?:{words})\s+({NAME})\b", sentence, re.IGNORECASE)
    if not m or m.group(1).lower() in _STOP:
        return None
    return m.group(1)


def duration_after(sentence: str, words: str) -> str | None:
    """A duration right after one of ``words`` ('over 12 months', 'for 7 days')."""
    m = re.search(rf"\b(?:{words})\s+({DURATION})\b", sentence, re.IGNORECASE)
    return m.group(1) if m else None


def duration_before(sentence: str, words: str) -> str | None:
    """A duration right before one of ``words`` ('3 month cliff', '7 days pass')."""
    m = re.search(rf"\b({DURATION})\s+(?:{words})\b", sentence, re.IGNORECASE)
    return m.group(1) if m else None


def names_list(text: str) -> list[str]:
    """'alice, bob and carol' -> ['alice', 'bob', 'carol']."""
    parts = re.split(r"\s*(?:,|\band\b|&)\s*", text.strip())
    return [p for p in parts if p and re.fullmatch(NAME, p)]


def has_word(sentence: str, *words: str) -> bool:
    return any(re.search(rf"\b{w}", sentence, re.IGNORECASE) for w in words)
