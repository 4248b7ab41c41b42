"""Standing orders: a sentence with a schedule or a price condition, held until it is due.

parse_order("buy 0.1 WETH with USDC every day for a week")
    # Every(interval=86400, count=7): slot k is due in [start + k*day, start + (k+1)*day)
parse_order("sell half my WETH if the price goes above 3,000 USDC")
    # PriceCondition(WETH, USDC, "above", "3000"): one slot, due while 1 WETH quotes > 3000 USDC
parse_order("when WETH drops below 2,500 USDC buy 1 WETH with at most 0.5% slippage")

The trigger phrase is cut off with a small grammar; what is left is the action, read by the
same parser as ``bazaar do`` (``parser.parse_clause``, after the same screening). A swap that
names only one token takes the condition's quote token as the other ("sell half my WETH if
the price goes above 3,000 USDC" sells WETH for USDC). Nothing is guessed: a schedule without
an end is a question (``NeedsClarification``), a condition that can never hold ("below 0") or
a second condition is refused (``IntentRefused``).

``due(order, now, price, claimed)`` is the whole decision, pure: which slot (if any) to fill
now. A schedule fills each period at most once and never catches up on periods that passed
while nobody was watching (``missed`` lists those, to be recorded as skips); a price order
fills once, the first time the price is seen on the right side of its threshold. The runner
(``agentbazaar.intents.runner``) claims the slot in the order book before it spends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from agentbazaar.errors import NeedsClarification
from agentbazaar.intents import _grammar as g
from agentbazaar.intents import guard, zh
from agentbazaar.intents.errors import IntentParseError, IntentRefused
from agentbazaar.intents.model import Intent, canonical_decimal
from agentbazaar.intents.numbers import words_to_digits
from agentbazaar.units import SECONDS

Status = Literal["active", "done", "cancelled"]
Direction = Literal["above", "below"]
MAX_FILLS = 1_000
ORDER_ACTIONS = ("swap", "send", "pay")


@dataclass(frozen=True)
class Every:
    """A schedule: ``count`` fills, one per ``interval`` seconds from the order's start."""

    interval: int
    count: int
    kind: Literal["every"] = "every"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "interval": self.interval, "count": self.count}


@dataclass(frozen=True)
class PriceCondition:
    """One fill when 1 ``token`` quotes strictly ``direction`` ``threshold`` ``quote`` (a
    decimal string in whole quote tokens, compared exactly)."""

    token: str
    quote: str
    direction: Direction
    threshold: str
    kind: Literal["price"] = "price"

    @property
    def count(self) -> int:
        return 1

    def holds(self, price: Decimal) -> bool:
        limit = Decimal(self.threshold)
        return price > limit if self.direction == "above" else price < limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "token": self.token,
            "quote": self.quote,
            "direction": self.direction,
            "threshold": self.threshold,
        }


Trigger = Every | PriceCondition


def trigger_from_dict(doc: dict[str, Any]) -> Trigger:
    if doc["kind"] == "every":
        return Every(interval=int(doc["interval"]), count=int(doc["count"]))
    return PriceCondition(
        token=doc["token"],
        quote=doc["quote"],
        direction=doc["direction"],
        threshold=doc["threshold"],
    )


@dataclass(frozen=True)
class OrderSpec:
    """What a sentence asks for: the action and its trigger (not yet in a book)."""

    sentence: str
    intent: Intent
    trigger: Trigger


@dataclass(frozen=True)
class StandingOrder:
    id: int
    wallet: str
    sentence: str
    intent: Intent
    trigger: Trigger
    created_at: float
    status: Status

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "wallet": self.wallet,
            "sentence": self.sentence,
            "intent": self.intent.stable(),
            "trigger": self.trigger.to_dict(),
            "created_at": self.created_at,
            "status": self.status,
        }


# ---- the decision (pure) -----------------------------------------------------------------------
def period(order: StandingOrder, now: float) -> int | None:
    """The schedule's current period (may be >= count once it is over); None before start."""
    assert isinstance(order.trigger, Every)
    if now < order.created_at:
        return None
    return int((now - order.created_at) // order.trigger.interval)


def due(order: StandingOrder, now: float, price: Decimal | None, claimed: set[int]) -> int | None:
    """The slot to fill now, or None. ``claimed``: the slots already claimed (filled, skipped
    or in progress); ``price``: 1 token in the quote token (price orders; None: unknown)."""
    if order.status != "active":
        return None
    trigger = order.trigger
    if isinstance(trigger, PriceCondition):
        if 0 in claimed or price is None or not trigger.holds(price):
            return None
        return 0
    k = period(order, now)
    if k is None or k >= trigger.count or k in claimed:
        return None
    return k


def missed(order: StandingOrder, now: float, claimed: set[int]) -> list[int]:
    """Schedule slots whose period passed unfilled (recorded as skips, never filled late)."""
    if order.status != "active" or not isinstance(order.trigger, Every):
        return []
    k = period(order, now)
    if k is None:
        return []
    return [s for s in range(min(k, order.trigger.count)) if s not in claimed]


def finished(order: StandingOrder, claimed: set[int]) -> bool:
    """Every slot of the order has been claimed: nothing is left to fill."""
    return all(s in claimed for s in range(order.trigger.count))


# ---- the grammar of triggers -------------------------------------------------------------------
_UNIT = r"(?P<{}>seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?)"
_ADVERB = {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month"}
_EVERY = re.compile(
    r"(?:,\s*)?\b(?:(?:every|each)\s+(?:(?P<n>\d+)\s*)?" + _UNIT.format("u") + r"|"
    r"(?P<adverb>hourly|daily|weekly|monthly))\b"
)
_FOR = re.compile(
    r"(?:,\s*)?\b(?:for\s+(?:the\s+next\s+)?(?:(?P<n>\d+)|an?|one)\s*"
    + _UNIT.format("u")
    + r"|(?P<times>\d+)\s+times)\b"
)
_VERBS = (
    r"(?:is|goes|gets|trades|moves|rises|climbs|jumps|drops|falls|dips|sinks|"
    r"is trading|has gone|has risen|has dropped|has fallen)"
)
_PRICE_IF = re.compile(
    r"(?:,\s*)?\b(?:if|when|whenever|once|as soon as)\s+(?:the\s+)?"
    rf"(?:price\s+of\s+(?P<t1>{g.SYM})|(?P<t2>{g.SYM})(?:'s)?\s+price|price|(?P<t3>{g.SYM}))"
    rf"\s+(?:{_VERBS}\s+)?(?:to\s+)?(?P<dir>above|over|below|under|>|<)\s+"
    rf"(?P<n>-?{g.NUM})\s*(?:(?P<q>{g.SYM})(?:\s+(?:per|/|for each|an?)\s+(?P<t4>{g.SYM}))?)?"
    r"(?:\s*,)?(?:\s+then\b)?"
)


def parse_order(sentence: str) -> OrderSpec:
    """A standing order from a sentence; ``NeedsClarification`` for a missing value,
    ``IntentRefused``/``IntentParseError`` for what cannot be an order (see the module doc)."""
    cleaned = guard.screen(sentence)
    if zh.has_chinese(cleaned):
        raise IntentParseError(
            "standing orders are read in English for now: write it like 'buy 0.1 WETH with "
            "USDC every day for a week'",
            text=sentence,
        )
    text = words_to_digits(cleaned.lower())
    condition = _PRICE_IF.search(text)
    every = _EVERY.search(text)
    if condition and every:
        raise IntentRefused(
            "one trigger per order: a schedule or a price condition, not both",
            text=sentence,
            reason="invalid",
        )
    if condition:
        action = _cut(cleaned, text, condition)
        spec = _price_order(sentence, action, condition)
    elif every:
        action_text = _cut(text, text, every)
        bound = _FOR.search(action_text)
        if bound is None:
            raise NeedsClarification(
                f"{sentence!r} has no end: say for how long or how many times",
                missing=["how_long"],
                question="For how long? (e.g. 'for a week' or '7 times')",
                text=sentence,
            )
        action = _cut(action_text, action_text, bound)
        trigger = Every(interval=_every_seconds(every), count=0)
        trigger = Every(trigger.interval, _count(trigger.interval, bound, sentence))
        spec = OrderSpec(sentence, _action(action, sentence, None), trigger)
    else:
        raise IntentParseError(
            f"{sentence!r} has no schedule or price condition: write it like 'buy 0.1 WETH with "
            "USDC every day for a week' or 'sell 1 WETH for USDC if WETH goes above 3,000 USDC' "
            "(to do something now: bazaar do)",
            text=sentence,
        )
    return spec


def _cut(original: str, lowered: str, m: re.Match[str]) -> str:
    """``original`` without the span ``m`` matched in ``lowered`` (same text, lower case and
    number words as digits: lengths may differ, so cut in the lowered text when they do)."""
    source = original if len(original) == len(lowered) else lowered
    out = source[: m.start()] + " " + source[m.end() :]
    return re.sub(r"\s+", " ", out).strip(" ,")


def _every_seconds(m: re.Match[str]) -> int:
    if m.group("adverb"):
        return SECONDS[_ADVERB[m.group("adverb")]]
    return int(m.group("n") or 1) * SECONDS[_unit(m.group("u"))]


def _unit(word: str) -> str:
    for unit in SECONDS:
        if word.startswith(unit[:3]) and (unit != "month" or word.startswith("mo")):
            return "minute" if word.startswith("min") else unit
    raise IntentParseError(f"unknown time unit {word!r}")  # pragma: no cover - regex guards


def _count(interval: int, bound: re.Match[str], sentence: str) -> int:
    if bound.group("times"):
        count = int(bound.group("times"))
    else:
        total = int(bound.group("n") or 1) * SECONDS[_unit(bound.group("u"))]
        count = total // interval
    if not 1 <= count <= MAX_FILLS:
        raise IntentRefused(
            f"{sentence!r} fills {count} times: a schedule fills between 1 and {MAX_FILLS} "
            "times (is the period longer than the interval?)",
            text=sentence,
            reason="invalid",
        )
    return count


def _price_order(sentence: str, action: str, m: re.Match[str]) -> OrderSpec:
    number = m.group("n").replace(",", "")
    if number.startswith("-") or Decimal(g.number(number.lstrip("-"))) <= 0:
        raise IntentRefused(
            f"a price {m.group('dir')} {m.group('n')} can never be reached: a price is above 0",
            text=sentence,
            reason="invalid",
        )
    threshold = canonical_decimal(g.number(number))
    direction: Direction = "above" if m.group("dir") in ("above", "over", ">") else "below"
    named = m.group("t1") or m.group("t2") or m.group("t3") or m.group("t4")
    quote = g.token(m.group("q")) if m.group("q") else None
    intent = _action(action, sentence, quote)
    token = g.token(named) if named else None
    pair = {intent.token_in, intent.token_out} - {None}
    if token is None and quote is not None:
        token = next(iter(pair - {quote}), None) if len(pair) == 2 else None
    if quote is None and token is not None:
        quote = next(iter(pair - {token}), None) if len(pair) == 2 else None
    if token is None or quote is None or token == quote:
        raise NeedsClarification(
            f"{sentence!r}: the price of which token, in which token?",
            missing=["price_token"],
            question="Which price should I watch? (e.g. 'if WETH goes above 3,000 USDC')",
            text=sentence,
        )
    return OrderSpec(sentence, intent, PriceCondition(token, quote, direction, threshold))


def _action(action: str, sentence: str, quote: str | None) -> Intent:
    """The action of an order, read by the ``bazaar do`` grammar; a swap missing its other
    token takes ``quote`` (the condition's quote token)."""
    from agentbazaar.intents.parser import parse_clause

    if not action or g.CONDITIONAL.search(action.lower()):
        raise IntentRefused(
            f"could not read one action and one trigger in {sentence!r}: write it like 'buy 1 "
            "WETH with USDC if WETH drops below 2,500 USDC'",
            text=sentence,
            reason="invalid",
        )
    try:
        intent = parse_clause(action, sentence)
    except NeedsClarification as exc:
        if quote is None or exc.missing not in (["token_in"], ["token_out"]):
            raise
        intent = parse_clause(f"{action} for {quote}", sentence)
    if intent.action not in ORDER_ACTIONS:
        raise IntentRefused(
            f"a standing order swaps, sends or pays; {intent.action!r} is not one of them",
            text=sentence,
            reason="invalid",
        )
    return intent


__all__ = [
    "Every",
    "OrderSpec",
    "PriceCondition",
    "StandingOrder",
    "Trigger",
    "due",
    "finished",
    "missed",
    "parse_order",
    "trigger_from_dict",
]
