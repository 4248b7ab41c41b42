"""Small deterministic readers of English the template parsers share (no model, no network).

Each returns the value as written (a raw parameter) or None; ``params.resolve`` turns it into
an exact value and says what is wrong with it.
"""

from __future__ import annotations

import re

NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?[km]?"
NAME = r"0x[0-9a-fA-F]{40}|[A-Za-z][\w-]*"
_UNITS = r"seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|mos?|years?|yrs?"
DURATION = rf"(?:{NUMBER}|an?|one)[\s-]*(?:{_UNITS})"
_AMOUNT = re.compile(rf"(?<![\w.])({NUMBER})\s*([A-Za-z]{{2,6}})\b")
_STOP = {"to", "for", "over", "per", "a", "an", "the", "and", "or", "with", "in", "of", "from"}


def plain_number(text: str) -> str:
    """'2.5k' -> '2500', '21m' -> '21000000', '1,000' stays (parse_units reads commas)."""
    from agentbazaar.authoring.params import plain_amount

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
