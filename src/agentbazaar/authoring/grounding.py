"""A model's answer held to what the sentence says: every value must be found in it.

A language model constrained to a template's schema still chooses *which* words go where, and a
small one will fill a required field rather than leave it empty. So each value it gives is
checked against the sentence before it is resolved (``check``): a name must be written in the
sentence (and it must then be a wallet: ``params.resolve`` asks the address book), a number must
be one of the sentence's numbers, a duration one of its durations, a token one of its words.
What fails is dropped, and a required value dropped is asked for (``NeedsClarification``),
never guessed. An amount the sentence writes as a rate ("10 USDC per day") is not accepted as
a total unless the parameter is itself a rate (a vault's cap per period).

``unused`` is the other direction: numbers and wallet names of the sentence that no parameter
took. When a model chose or filled the contract, something the sentence says and the contract
ignores means the template does not cover it, or the model misplaced a value: refused or asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from agentbazaar.authoring import _text
from agentbazaar.authoring._text import plain_amount
from agentbazaar.authoring.params import SELF_NAMES, Kind, Param, parse_duration
from agentbazaar.errors import BazaarError

_RATE_AFTER = re.compile(
    r"^\s*(?:[a-z]{2,6}\s+)?(?:(?:per|a|an|each|every|/)\s*"
    r"(?:second|sec|minute|min|hour|hr|day|week|month|year)s?\b|"
    r"(?:hourly|daily|weekly|monthly|yearly|annually)\b)",
    re.IGNORECASE,
)
_SELF = re.compile(r"\b(?:me|my|myself|mine|i|us|our|we|this agent|this wallet)\b", re.IGNORECASE)
_EQUAL = re.compile(r"\b(?:equal(?:ly)?|even(?:ly)?|same|fifty[- ]fifty|50/50|halves)\b", re.I)
_BLANK = {"", "none", "null", "n/a", "na", "unknown", "not specified", "unspecified", "-"}


@dataclass(frozen=True)
class Evidence:
    """What a sentence says, in comparable form."""

    text: str  # lower case, one line
    words: frozenset[str]
    numbers: frozenset[Decimal]
    durations: frozenset[int]  # seconds
    rate_only: frozenset[Decimal]  # numbers written only as a rate ("20 USDC per day")
    self_ref: bool
    equal: bool

    @classmethod
    def of(cls, sentence: str) -> Evidence:
        text = " ".join(_text.words_to_digits(sentence).split())
        found = list(_numbers(text))
        rate: set[Decimal] = set()
        total: set[Decimal] = set()
        for value, end in found:
            (rate if _RATE_AFTER.match(text[end:]) else total).add(value)
        return cls(
            text=text.lower(),
            words=frozenset(re.findall(r"0x[0-9a-f]{40}|[a-z0-9][\w-]*", text.lower())),
            numbers=frozenset(v for v, _ in found),
            durations=frozenset(_durations(text)),
            rate_only=frozenset(rate - total),
            self_ref=_SELF.search(text) is not None,
            equal=_EQUAL.search(text) is not None,
        )


@dataclass
class Grounded:
    kept: dict[str, Any] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)  # parameter -> why


def normalise(value: Any) -> Any:
    """A model's raw value as the resolver reads it: number words as digits, blanks as None."""
    if isinstance(value, list):
        items = [normalise(v) for v in value]
        return [v for v in items if v is not None] or None
    if value is None or isinstance(value, bool):
        return None
    text = " ".join(_text.words_to_digits(str(value)).split())
    return None if text.lower() in _BLANK else text


def check(sentence: str, params: Sequence[Param], answer: Mapping[str, Any]) -> Grounded:
    """Split ``answer`` into the values the sentence supports and those it does not."""
    ev = Evidence.of(sentence)
    out = Grounded()
    by_name = {p.name: p for p in params}
    for name, raw in answer.items():
        value = normalise(raw)
        if value is None:
            continue
        param = by_name.get(name)
        if param is None:
            out.dropped[name] = "not a parameter of this template"
            continue
        why = _unsupported(param, value, ev)
        if why is None:
            out.kept[name] = value
        else:
            out.dropped[name] = why
    return out


def unused(
    sentence: str, values: Iterable[Any], is_wallet: Callable[[str], bool]
) -> tuple[list[Decimal], list[str]]:
    """Numbers and wallet names of ``sentence`` that none of ``values`` (raw) mentions."""
    ev = Evidence.of(sentence)
    said = Evidence.of(" ; ".join(_flatten(values)))
    numbers = sorted(
        n for n in ev.numbers if n not in said.numbers and not _as_duration(n, ev, said)
    )
    names = sorted(
        w for w in ev.words - said.words
        if not w.startswith("0x") and w not in SELF_NAMES and is_wallet(w)
    )  # fmt: skip
    return numbers, names


def _as_duration(n: Decimal, ev: Evidence, said: Evidence) -> bool:
    """A number used through a duration written otherwise ('12 months' said as '360 days')."""
    return any(d in said.durations for d in ev.durations if _duration_has(ev.text, n, d))


def _duration_has(text: str, n: Decimal, seconds: int) -> bool:
    return any(
        parse_duration(f"{n} {unit}") == seconds
        for unit in ("second", "minute", "hour", "day", "week", "month", "year")
        if n == n.to_integral_value()
    )


def _flatten(values: Iterable[Any]) -> list[str]:
    out: list[str] = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out.extend(_flatten(v))
        elif v is not None:
            out.append(str(v))
    return out


# ---- per kind ---------------------------------------------------------------------------------
def _unsupported(p: Param, value: Any, ev: Evidence) -> str | None:
    """None when ``ev`` supports ``value`` for ``p``; else why not."""
    try:
        if p.kind in (Kind.ADDRESSES, Kind.SHARES):
            items = value if isinstance(value, list) else [value]
            if p.kind == Kind.SHARES and _equal_shares(items, ev):
                return None
            check_one = _ADDRESS if p.kind == Kind.ADDRESSES else _NUMBER
            bad = [str(v) for v in items if not check_one(str(v), ev)]
            return f"the sentence does not say {', '.join(bad)}" if bad else None
        if isinstance(value, list):
            return "one value expected, not a list"
        text = str(value)
        if p.kind == Kind.AMOUNT and not p.rate and _is_rate(text, ev):
            return f"the sentence gives {text} as a rate, not a total"
        return None if _CHECKS[p.kind](text, ev) else f"the sentence does not say {text!r}"
    except (BazaarError, InvalidOperation, ValueError):
        return f"{value!r} is not a {p.kind.value}"


def _address(value: str, ev: Evidence) -> bool:
    v = value.strip().lower()
    if v in SELF_NAMES:
        return ev.self_ref
    return v in ev.words or (v.startswith("0x") and v in ev.text)


def _token(value: str, ev: Evidence) -> bool:
    v = value.strip().lower()
    return v in ev.words or (v.startswith("0x") and v in ev.text)


def _number(value: str, ev: Evidence) -> bool:
    return Decimal(plain_amount(value.strip().rstrip("%").strip()).replace(",", "")) in ev.numbers


def _amount(value: str, ev: Evidence) -> bool:
    parts = value.split()
    if len(parts) == 2:
        return _number(parts[0], ev) and _token(parts[1], ev)
    return len(parts) == 1 and _number(parts[0], ev)


def _is_rate(value: str, ev: Evidence) -> bool:
    number = Decimal(plain_amount(value.split()[0]).replace(",", ""))
    return number in ev.rate_only


def _duration(value: str, ev: Evidence) -> bool:
    text = value.strip()
    if re.fullmatch(r"\d+", text):
        return int(text) in ev.durations or Decimal(text) in ev.numbers
    return parse_duration(text) in ev.durations


def _timestamp(value: str, ev: Evidence) -> bool:
    text = value.strip()
    if re.fullmatch(r"\d{9,}", text):
        return Decimal(text) in ev.numbers
    return _duration(text, ev)


def _text_value(value: str, ev: Evidence) -> bool:
    v = value.strip().lower()
    return bool(v) and re.search(rf"(?<![\w]){re.escape(v)}(?![\w])", ev.text) is not None


def _equal_shares(items: list[Any], ev: Evidence) -> bool:
    return ev.equal and len({str(i).strip() for i in items}) == 1


_CHECKS: dict[Kind, Callable[[str, Evidence], bool]] = {
    Kind.ADDRESS: _address,
    Kind.TOKEN: _token,
    Kind.AMOUNT: _amount,
    Kind.DURATION: _duration,
    Kind.TIMESTAMP: _timestamp,
    Kind.BPS: _number,
    Kind.TEXT: _text_value,
    Kind.INTEGER: _number,
}
_ADDRESS, _NUMBER = _address, _number


# ---- what a sentence holds ----------------------------------------------------------------------
def _numbers(text: str) -> Iterable[tuple[Decimal, int]]:
    """Every number written in ``text`` (digits, '2.5k'), with where it ends."""
    for m in re.finditer(rf"(?<![\w.]){_text.NUMBER}(?![\w])", text, re.IGNORECASE):
        try:
            yield Decimal(plain_amount(m.group(0)).replace(",", "")), m.end()
        except (InvalidOperation, BazaarError):
            continue


def _durations(text: str) -> Iterable[int]:
    """Every duration written in ``text``, in seconds ('3 months', 'a year', 'daily')."""
    for m in re.finditer(rf"\b{_text.DURATION}\b", text, re.IGNORECASE):
        try:
            yield parse_duration(m.group(0).replace("-", " "))
        except BazaarError:
            continue
    for word, period in _text.PERIOD_WORDS.items():
        if re.search(rf"\b{word}\b", text, re.IGNORECASE):
            yield parse_duration(period)
    for m in re.finditer(r"\b(?:per|each|every|a|an)\s+(second|minute|hour|day|week|month|year)\b",
                         text, re.IGNORECASE):  # fmt: skip
        yield parse_duration(f"1 {m.group(1)}")
