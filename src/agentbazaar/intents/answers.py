"""The answer to a clarifying question completes the request.

``answer(partial, missing, reply)`` reads the reply for exactly the missing fields ("100",
"100 USDC", "half", "25% of my USDC", "WETH", "bob", "0x..."; English or Chinese) and returns the
completed ``Intent``, validated like any other; a reply that does not give them asks again. A
reply that is a whole new request replaces the question (it is parsed on its own). The question
itself comes from ``intents.clarify``, which the parser calls; this module sits above both.
"""

from __future__ import annotations

import re
from decimal import Decimal

from agentbazaar.errors import NeedsClarification
from agentbazaar.intents import _grammar as g
from agentbazaar.intents import guard, zh
from agentbazaar.intents.clarify import amount_fields, needs
from agentbazaar.intents.errors import IntentParseError, IntentRefused
from agentbazaar.intents.model import Intent
from agentbazaar.intents.parser import build, parse_intent


def answer(partial: dict[str, object], missing: list[str], reply: str) -> Intent:
    """Complete ``partial`` with ``reply`` (see the module doc); ``NeedsClarification`` again
    when the reply does not give what is missing."""
    cleaned = guard.screen(reply)
    try:
        return parse_intent(cleaned)  # a whole request: it stands on its own
    except IntentRefused:
        raise
    except (IntentParseError, NeedsClarification):
        pass  # not a request on its own: read it as the answer
    english = zh.to_english(cleaned, fragment=True) if zh.has_chinese(cleaned) else cleaned
    s, addresses = g.normalise(english or cleaned)
    filled = dict(partial)
    still = [name for name in missing if not _fill(name, s, filled, addresses)]
    if still:
        raise needs(filled, still, reply)
    return build(filled, addresses, reply)


_SHARE_ALONE = re.compile(
    rf"(?:(?P<fw>{'|'.join(re.escape(w) for w in g.FRACTIONS)})|(?P<pct>{g.NUM})\s*(?:%|percent))"
    r"(?: of (?:it|them|that|my balance|what i have))?"
)


def _fill(name: str, s: str, filled: dict[str, object], addresses: list[str]) -> bool:
    if filled.get(name) is not None:
        return True  # given by the answer to another field ("10 USDC": amount and token)
    if name == "amount":
        return _fill_amount(s, filled)
    if name in ("token_in", "token_out"):
        m = re.fullmatch(
            rf"(?:(?:in|with|using|for|pay with|paying with|into|to) )?(?P<t>{g.SYM})", s
        )
        if m is None:
            return False
        filled[name] = g.token(m["t"])
        return True
    if name == "to":
        m = re.fullmatch(rf"(?:(?:to|send it to|give it to) )?(?P<to>{g.ADDR}|{g.NAME})", s)
        if m is None:
            return False
        to = m["to"]
        filled["to"] = addresses[int(to[2:])] if re.fullmatch(g.ADDR, to) else to
        return True
    return False


def _fill_amount(s: str, filled: dict[str, object]) -> bool:
    m = re.search(rf"(?:^|\s)(?:{g.amount_or_share('a')})(?=\s|$)", s)
    if m:
        return _take_amount(g.read_amount(m, "a"), filled)
    share = _SHARE_ALONE.fullmatch(s)
    if share and filled.get("token_in"):
        fraction = (
            g.FRACTIONS[share["fw"]]
            if share["fw"]
            else format((Decimal(g.number(share["pct"])) / 100).normalize(), "f")
        )
        filled["fraction"] = fraction
        return True
    m = re.fullmatch(rf"(?P<n>{g.NUM})", s)
    if m is None:
        return False
    filled["amount"] = g.number(m["n"])
    if filled.get("action") == "swap":
        filled.setdefault("amount_side", "in")
    return True


def _take_amount(amount: dict[str, str], filled: dict[str, object]) -> bool:
    tok, swap = amount["token"], filled.get("action") == "swap"
    if swap and "amount" in amount and filled.get("token_out") == tok:
        filled.update(amount=amount["amount"], amount_side="out")  # "1 WETH" for WETH
        return True
    if filled.get("token_in") not in (None, tok):
        return False
    filled["token_in"] = tok
    filled.update(amount_fields(amount, "in" if swap else None))
    return True
