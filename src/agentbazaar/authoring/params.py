"""Typed template parameters: a schema per template, and one resolver for every filler.

A filler (the deterministic extractor, or a language model constrained to ``json_schema``)
returns *raw* values as text, the way a person writes them: a wallet name or an address, an
amount ("1,000" with a token, or "1,000 USDC"), a duration ("12 months", or seconds), a share
("70%" or basis points). ``resolve`` turns them into exact values (checksummed addresses, base
units, seconds) or raises: ``NeedsClarification`` naming what is missing or ambiguous,
``BadParameters`` for values that are wrong. Both fillers go through the same ``resolve``, so a
model's answer is validated exactly like the extractor's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from web3 import Web3

from agentbazaar import units
from agentbazaar.authoring._text import plain_amount, words_to_digits
from agentbazaar.errors import (
    AmountError,
    BadParameters,
    BazaarError,
    DurationError,
    NeedsClarification,
    UnknownTokenError,
)
from agentbazaar.tokens import Token, TokenRegistry
from agentbazaar.units import SECONDS, parse_units

SELF_NAMES = frozenset({"me", "myself", "i", "this agent", "this wallet", "self", "us"})


class Kind(StrEnum):
    ADDRESS = "address"  # a wallet name or 0x address
    ADDRESSES = "addresses"  # a list of them
    TOKEN = "token"  # a token symbol or address known on this chain
    AMOUNT = "amount"  # base units of the template's token (or given with its symbol)
    DURATION = "duration"  # seconds
    TIMESTAMP = "timestamp"  # unix seconds
    BPS = "bps"  # basis points, 0..10000
    SHARES = "shares"  # a list of positive integers (weights)
    TEXT = "text"
    INTEGER = "integer"


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind
    description: str
    required: bool = True
    default: Callable[[ResolveContext, dict[str, Any]], Any] | None = None
    max_length: int | None = None  # TEXT characters, or list items
    rate: bool = False  # an AMOUNT per period (a vault's cap), not a total


@dataclass
class ResolveContext:
    """What names and amounts resolve against: the address book, tokens, now, the wallet."""

    names: Callable[[str], str]  # wallet name -> address (raises for unknown names)
    tokens: TokenRegistry
    now: int
    me: str | None = None  # the wallet the sentence speaks for ("me", "this agent")
    extra: dict[str, Any] = field(default_factory=dict)


# ---- JSON schema ------------------------------------------------------------------------------
_HINTS = {
    Kind.ADDRESS: "a wallet name (e.g. bob) or a 0x address",
    Kind.ADDRESSES: "wallet names or 0x addresses",
    Kind.TOKEN: "a token symbol (e.g. USDC) or address",
    Kind.AMOUNT: "an amount as written, e.g. 1,000 or 1,000 USDC",
    Kind.DURATION: "a duration, e.g. 12 months, 7 days, or seconds",
    Kind.TIMESTAMP: "unix seconds, or a duration from now (e.g. 7 days)",
    Kind.BPS: "a percentage (e.g. 2.5%) or basis points",
    Kind.SHARES: "positive whole weights, e.g. 70 and 30",
    Kind.TEXT: "text",
    Kind.INTEGER: "a whole number",
}


def json_schema(params: Sequence[Param]) -> dict[str, Any]:
    """The JSON schema a filler (a model) answers in: every value as written, as text."""
    props: dict[str, Any] = {}
    for p in params:
        item = {"type": "string", "description": f"{p.description} ({_HINTS[p.kind]})"}
        if p.kind in (Kind.ADDRESSES, Kind.SHARES):
            props[p.name] = {"type": "array", "items": {"type": "string"}, **_desc(item)}
            if p.max_length:
                props[p.name]["maxItems"] = p.max_length
        else:
            props[p.name] = item
    return {
        "type": "object",
        "properties": props,
        "required": [p.name for p in params if p.required and p.default is None],
        "additionalProperties": False,
    }


def _desc(item: dict[str, Any]) -> dict[str, Any]:
    return {"description": item["description"]}


# ---- resolution -------------------------------------------------------------------------------
def resolve(
    params: Sequence[Param], raw: Mapping[str, Any], ctx: ResolveContext, *, template: str
) -> dict[str, Any]:
    """Raw values -> exact values, in schema order; defaults fill what may be left out."""
    unknown = sorted(set(raw) - {p.name for p in params})
    if unknown:
        raise BadParameters(f"{template} has no parameter {', '.join(unknown)}")
    out: dict[str, Any] = {}
    missing = [p.name for p in params if p.required and p.default is None and _blank(raw, p)]
    if missing:
        raise NeedsClarification(
            f"{template}: say {_list(missing)} ({'; '.join(_ask(params, missing))})",
            missing=missing,
        )
    for p in params:
        if _blank(raw, p):
            out[p.name] = p.default(ctx, out) if p.default is not None else None
            continue
        out[p.name] = _one(p, raw[p.name], ctx, out, template)
    return out


def _blank(raw: Mapping[str, Any], p: Param) -> bool:
    value = raw.get(p.name)
    return value is None or value == "" or value == []


def _ask(params: Sequence[Param], names: list[str]) -> list[str]:
    by = {p.name: p for p in params}
    return [f"{n}: {by[n].description}" for n in names]


def _list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _one(p: Param, value: Any, ctx: ResolveContext, done: dict[str, Any], template: str) -> Any:
    try:
        return _CONVERT[p.kind](p, value, ctx, done)
    except NeedsClarification:
        raise
    except BazaarError as exc:
        raise BadParameters(f"{template}: {p.name}: {exc}", parameter=p.name) from exc


def _address(p: Param, value: Any, ctx: ResolveContext, done: dict[str, Any]) -> str:
    text = str(value).strip()
    if text.lower() in SELF_NAMES:
        if ctx.me is None:
            raise NeedsClarification(f"who is {text!r}? give --wallet", missing=[p.name])
        return Web3.to_checksum_address(ctx.me)
    if text.lower().startswith("0x"):
        from agentbazaar.chain import to_address

        return str(to_address(text))
    try:
        return Web3.to_checksum_address(ctx.names(text))
    except BazaarError as exc:
        raise NeedsClarification(
            f"{p.name}: {text!r} is no wallet here ({exc}); give a wallet name or a 0x address",
            missing=[p.name],
        ) from exc


def _addresses(p: Param, value: Any, ctx: ResolveContext, done: dict[str, Any]) -> list[str]:
    items = [value] if isinstance(value, str) else list(value)
    if p.max_length is not None and len(items) > p.max_length:
        raise BadParameters(f"at most {p.max_length} addresses, got {len(items)}")
    out = [_address(p, item, ctx, done) for item in items]
    if len({a.lower() for a in out}) != len(out):
        raise BadParameters(f"the same address appears twice in {p.name}")
    return out


def _token(p: Param, value: Any, ctx: ResolveContext, done: dict[str, Any]) -> str:
    token = ctx.tokens.get(str(value).strip())
    if token.is_native:
        raise BadParameters("templates hold ERC-20 tokens, not the native currency")
    return str(token.address)


def token_of(ctx: ResolveContext, address: str) -> Token:
    return ctx.tokens.get(address)


def _amount(p: Param, value: Any, ctx: ResolveContext, done: dict[str, Any]) -> int:
    text = str(value).strip()
    token_addr = done.get("token")
    parts = text.split()
    if len(parts) == 2:
        named = ctx.tokens.get(parts[1])
        if token_addr is not None and named.address != token_addr:
            raise BadParameters(f"{text!r} is not in {token_of(ctx, token_addr).symbol}")
        return parse_units(plain_amount(parts[0]), named.decimals)
    if token_addr is None:  # an amount of the contract's own token (e.g. a capped token)
        decimals = int(done.get("decimals", ctx.extra.get("decimals", 0)))
        return parse_units(plain_amount(text), decimals)
    return parse_units(plain_amount(text), token_of(ctx, token_addr).decimals)


def parse_duration(text: str) -> int:
    """'12 months', 'a week', 'seven days', '1.5 hours', '3600' (seconds) -> seconds (exact,
    whole): numbers in words first, then ``units.parse_duration``."""
    cleaned = re.sub(r"^(a|an|one)\s+", "1 ", words_to_digits(text.strip().lower()))
    cleaned = re.sub(r"^(\d+(?:\.\d+)?)-", r"\1 ", cleaned)
    try:
        return units.parse_duration(cleaned)
    except DurationError as exc:
        raise AmountError(str(exc).replace(repr(cleaned), repr(text))) from exc


def _duration(p: Param, value: Any, ctx: ResolveContext, done: dict[str, Any]) -> int:
    return parse_duration(str(value))


def _timestamp(p: Param, value: Any, ctx: ResolveContext, done: dict[str, Any]) -> int:
    text = str(value).strip()
    if re.fullmatch(r"\d{9,}", text):
        return int(text)
    return ctx.now + parse_duration(text)


def _bps(p: Param, value: Any, ctx: ResolveContext, done: dict[str, Any]) -> int:
    text = str(value).strip()
    if text.endswith("%"):
        bps = Decimal(text[:-1].strip()) * 100
    else:
        bps = Decimal(text)
    if bps != bps.to_integral_value() or not 0 <= bps <= 10_000:
        raise AmountError(f"{text!r} is not a share between 0 and 100% in whole basis points")
    return int(bps)


def _shares(p: Param, value: Any, ctx: ResolveContext, done: dict[str, Any]) -> list[int]:
    items = [value] if isinstance(value, str) else list(value)
    out = []
    for item in items:
        text = str(item).strip().rstrip("%").strip()
        if not re.fullmatch(r"\d+", text) or int(text) == 0:
            raise AmountError(f"a share is a positive whole number, not {item!r}")
        out.append(int(text))
    return out


def _text(p: Param, value: Any, ctx: ResolveContext, done: dict[str, Any]) -> str:
    text = str(value).strip()
    if not text or (p.max_length is not None and len(text) > p.max_length):
        raise BadParameters(f"{p.name} must be 1 to {p.max_length} characters")
    if not text.isprintable() or not text.isascii():
        raise BadParameters(f"{p.name} must be printable ASCII")
    return text


def _integer(p: Param, value: Any, ctx: ResolveContext, done: dict[str, Any]) -> int:
    text = str(value).strip()
    if not re.fullmatch(r"\d+", text):
        raise BadParameters(f"{p.name} must be a whole number, not {value!r}")
    return int(text)


_CONVERT: dict[Kind, Callable[[Param, Any, ResolveContext, dict[str, Any]], Any]] = {
    Kind.ADDRESS: _address,
    Kind.ADDRESSES: _addresses,
    Kind.TOKEN: _token,
    Kind.AMOUNT: _amount,
    Kind.DURATION: _duration,
    Kind.TIMESTAMP: _timestamp,
    Kind.BPS: _bps,
    Kind.SHARES: _shares,
    Kind.TEXT: _text,
    Kind.INTEGER: _integer,
}


def to_jsonable(params: Sequence[Param], values: Mapping[str, Any]) -> dict[str, Any]:
    """Exact values for JSON: amounts as decimal strings (never a float), the rest as is."""
    out: dict[str, Any] = {}
    for p in params:
        v = values.get(p.name)
        out[p.name] = str(v) if p.kind == Kind.AMOUNT and v is not None else v
    return out


def from_jsonable(params: Sequence[Param], data: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of ``to_jsonable`` (a stored record back to exact values)."""
    out: dict[str, Any] = {}
    for p in params:
        v = data.get(p.name)
        out[p.name] = int(v) if p.kind == Kind.AMOUNT and v is not None else v
    return out


__all__ = [
    "SECONDS",
    "Kind",
    "Param",
    "ResolveContext",
    "UnknownTokenError",
    "from_jsonable",
    "json_schema",
    "parse_duration",
    "resolve",
    "to_jsonable",
]
