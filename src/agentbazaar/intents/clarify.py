"""Ask instead of guess: a request with a value missing becomes a question, and the answer
completes it.

``raise_if_partial`` recognises requests that are clear except for one or two values ("swap
USDC for WETH": how much?; "send 10 to bob": 10 of which token?; "send 20 USDC": to whom?;
"buy 0.5 WETH": paying with what?) and raises ``NeedsClarification`` with the question, the
names of the missing fields and the partial intent (the fields understood so far, JSON-ready).

The answer to the question is read by ``intents.answers.answer``.
"""

from __future__ import annotations

import re
from decimal import Decimal

from agentbazaar.errors import NeedsClarification
from agentbazaar.intents import _grammar as g

_SWAP = (
    r"(?:swap|trade|exchange|convert|change|turn|flip|switch|dump|offload|liquidate|cash out|"
    r"sell)"
)
_BUY = r"(?:buy|get|acquire|purchase|grab|pick up|obtain)(?: me)?"
_SEND = r"(?:send|transfer|give|wire|pay|move|forward)"
_OUT = r"(?:for|to|into|in to|in exchange for)"
_PAY = r"(?:with|using|for|paying with|paying in|from)"
_SOME = r"(?:(?:some|my|the|a bit of|some of my|a little|a few|any)\s+)?"
_RECIPIENT = rf"(?P<to>{g.ADDR}|{g.NAME})"
_UNEXACT = r"(?:a|one|two) (?:third|thirds|sixth|seventh|ninth)s?|some|a bit|a little|a few|most"

Partial = tuple[dict[str, object], list[str]] | None


def raise_if_partial(s: str, fields: dict[str, object], addresses: list[str], text: str) -> None:
    """``NeedsClarification`` if ``s`` (normalised, constraints cut) is a request with values
    missing; returns quietly when it is not one (the caller then refuses or asks a model)."""
    extra = {k: v for k, v in fields.items() if k not in ("pay_with", "price_tokens")}
    for reader in (_swap_without_amount, _swap_without_token, _send_partial, _agent_partial):
        found = reader(s, fields)
        if found is not None:
            partial, missing = found
            to = partial.get("to")
            if isinstance(to, str) and re.fullmatch(g.ADDR, to):
                partial["to"] = addresses[int(to[2:])]
            raise needs({**partial, **extra}, missing, text)
    _bare_verb(s, text)


def _swap_without_amount(s: str, fields: dict[str, object]) -> Partial:
    sym = g.SYM
    for pattern in (
        rf"{_SWAP} (?:(?:{_UNEXACT}) )?(?:of )?{_SOME}(?P<tin>{sym}) {_OUT} {_SOME}(?P<out>{sym})",
        rf"{_BUY} {_SOME}(?P<out>{sym}) {_PAY} {_SOME}(?P<tin>{sym})",
        rf"(?:{_SWAP}|spend|use) {_SOME}(?P<tin>{sym}) (?:on|to buy|to get) {_SOME}(?P<out>{sym})",
    ):
        m = re.fullmatch(pattern, s)
        if m:
            partial = {"action": "swap", "token_in": g.token(m["tin"])}
            return {**partial, "token_out": g.token(m["out"])}, ["amount"]
    pay_with = fields.get("pay_with")
    m = re.fullmatch(rf"{_BUY} {_SOME}(?P<out>{sym})", s)
    if pay_with is not None and m:
        return {"action": "swap", "token_in": pay_with, "token_out": g.token(m["out"])}, ["amount"]
    return None


def _swap_without_token(s: str, fields: dict[str, object]) -> Partial:
    num, sym, amtx = g.NUM, g.SYM, g.amount_or_share("a")
    m = re.fullmatch(rf"{_SWAP} (?:my )?{amtx}", s)
    if m:
        amount = g.read_amount(m, "a")
        partial = amount_fields(amount, "in", token_in=amount["token"])
        return {"action": "swap", **partial}, ["token_out"]
    m = re.fullmatch(rf"{_SWAP} (?P<n>{num}) {_OUT} (?P<out>{sym})", s)
    if m:
        partial = {"action": "swap", "amount": g.number(m["n"]), "amount_side": "in"}
        return {**partial, "token_out": g.token(m["out"])}, ["token_in"]
    return None


def _send_partial(s: str, fields: dict[str, object]) -> Partial:
    num, amtx, to = g.NUM, g.amount_or_share("a"), _RECIPIENT
    shapes: list[tuple[str, list[str]]] = [
        (rf"{_SEND} (?P<n>{num}) (?:to|over to) {to}", ["token_in"]),
        (rf"{_SEND} {to} (?P<n>{num})", ["token_in"]),
        (rf"{_SEND} {amtx}", ["to"]),
        (rf"{_SEND} (?:some |money |funds |tokens |a bit )?(?:to )?{to}", ["amount", "token_in"]),
        (rf"{_SEND} {_SOME}(?P<tok>{g.SYM}) (?:to|over to) {to}", ["amount"]),
    ]
    for pattern, missing in shapes:
        m = re.fullmatch(pattern, s)
        if m is None:
            continue
        gd = m.groupdict()
        if gd.get("to") in ("agent", "me", "it"):
            return None
        partial: dict[str, object] = {"action": "send"}
        if gd.get("to"):
            partial["to"] = gd["to"]
        if gd.get("n"):
            partial["amount"] = g.number(gd["n"])
        if gd.get("tok"):
            partial["token_in"] = g.token(gd["tok"])
        if "to" in missing:
            amount = g.read_amount(m, "a")
            partial.update(amount_fields(amount, None, token_in=amount["token"]))
        return partial, missing
    return None


def _agent_partial(s: str, fields: dict[str, object]) -> Partial:
    m = re.fullmatch(rf"(?:pay|tip) {g.AGENT}(?: (?P<n>{g.NUM}))?", s)
    if m is None:
        return None
    partial: dict[str, object] = {"action": "pay", "to": f"agent:{m['agent']}"}
    if m["n"]:
        partial["amount"] = g.number(m["n"])
        return partial, ["token_in"]
    return partial, ["amount", "token_in"]


def _bare_verb(s: str, text: str) -> None:
    asks = {
        "swap": ("swap", ["amount", "token_in", "token_out"]),
        "trade": ("swap", ["amount", "token_in", "token_out"]),
        "exchange": ("swap", ["amount", "token_in", "token_out"]),
        "sell": ("swap", ["amount", "token_in", "token_out"]),
        "buy": ("swap", ["amount", "token_out", "token_in"]),
        "send": ("send", ["amount", "token_in", "to"]),
        "transfer": ("send", ["amount", "token_in", "to"]),
        "give": ("send", ["amount", "token_in", "to"]),
        "pay": ("send", ["amount", "token_in", "to"]),
        "hire": ("hire", ["to"]),
    }
    verb = re.fullmatch(r"(\w+)(?: (?:an? )?(agent|someone|something|it|some|money|crypto))?", s)
    if verb and verb.group(1) in asks:
        action, missing = asks[verb.group(1)]
        if verb.group(1) == "pay" and verb.group(2) == "agent":
            action, missing = "pay", ["to", "amount", "token_in"]
        raise needs({"action": action}, missing, text)


def amount_fields(amount: dict[str, str], side: str | None, **more: str) -> dict[str, object]:
    out: dict[str, object] = dict(more)
    if "amount" in amount:
        out["amount"] = amount["amount"]
        if side:
            out["amount_side"] = side
    else:
        out["fraction"] = amount["fraction"]
    return out


def ask_token_in(found: dict[str, object], text: str) -> None:
    """A buy with an amount and no token to pay with: ask for it."""
    partial = {k: v for k, v in found.items() if v is not None and k != "token_in"}
    raise needs(partial, ["token_in"], text)


# ---- questions --------------------------------------------------------------------------------
def needs(partial: dict[str, object], missing: list[str], text: str) -> NeedsClarification:
    question = question_for(partial, missing)
    return NeedsClarification(
        f"{question} (from {text!r})", missing=missing, partial=partial, question=question
    )


def question_for(partial: dict[str, object], missing: list[str]) -> str:
    """One question naming what is missing, built from what is known."""
    action, tin, tout = partial.get("action"), partial.get("token_in"), partial.get("token_out")
    amount = partial.get("amount")
    share = partial.get("fraction")
    pct = format((Decimal(str(share)) * 100).normalize(), "f") if share else ""
    what = f"{amount} {tin}" if amount and tin else (f"{pct}% of your {tin}" if share else "")
    other = "WETH" if tin == "USDC" else "USDC"
    to = partial.get("to")
    if missing == ["amount"] and action == "swap":
        return (
            f"How much {tin} do you want to swap for {tout}? (an amount like '100 {tin}', "
            f"or a share like 'half my {tin}')"
        )
    if missing == ["token_out"]:
        return f"What do you want to get for {what or 'it'}? (a token, e.g. {other})"
    if missing == ["token_in"] and action == "swap" and partial.get("amount_side") == "out":
        return f"Which token do you want to pay with for {amount} {tout}? (e.g. USDC)"
    if missing == ["token_in"]:
        dest = f" to {to}" if to else ""
        return f"{amount} of which token{dest}? (e.g. '{amount} USDC')"
    if missing == ["to"]:
        return f"Who should receive {what or 'it'}? (a wallet name or a 0x address)"
    if missing == ["amount"]:
        return f"How much {tin or ''} should go to {to}? (e.g. '10 {tin or 'USDC'}')".replace(
            "  ", " "
        )
    if action == "pay":
        return f"How much, in which token, should {to} be paid? (e.g. '2 USDC')"
    if action == "hire":
        return (
            "What should the agent do, and for at most how much? (e.g. 'translate text for 1 USDC')"
        )
    if action == "send" and to:
        return f"How much, of which token, should go to {to}? (e.g. '10 USDC')"
    return f"Say the whole {action} with {', '.join(missing)} (e.g. '{_example(str(action))}')"


def _example(action: str) -> str:
    return {
        "swap": "swap 100 USDC for WETH",
        "send": "send 10 USDC to bob",
        "hire": "hire an agent to translate text for 1 USDC",
    }.get(action, "swap 100 USDC for WETH")
