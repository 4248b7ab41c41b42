"""The deterministic parser (the fast path): a sentence in, an ``Intent`` out, a question, or a
clear refusal. No network, no model, milliseconds.

It answers only when it is certain. The sentence is screened (``guard``: injections, rule
changes, sweeps, control characters), Chinese is rewritten into the English grammar (``zh``),
number words become digits (``numbers``), addresses are set aside so their case survives, the
constraints are cut out (slippage, deadline, price limit, the token paid with: ``_grammar``), and
what is left must match one of the shapes below completely. Then:

- a complete shape: the ``Intent`` (the same validation as any parser's output);
- a shape with a value missing ("swap USDC for WETH", "send 10 to bob"): ``NeedsClarification``
  with the question, what is missing and the partial intent (``clarify``);
- a shape whose values are impossible (zero, two equal tokens, 200% slippage): ``IntentRefused``;
- nothing matched: ``IntentParseError`` with a hint. Only this case may go on to a language
  model (``agentbazaar.intents.understand``).

Shapes (amounts: "100", "1,000.50", ".5", "2.5k", "$20", "20 dollars", "twenty", "two cents";
shares: "all my X", "half my X", "25% of my X", "a quarter of my X"):
- swap: swap|trade|exchange|convert|change|turn|flip|sell|dump|... <amount|share> for|to|into <T>;
  swap <T> for <amount> <T>; buy|get <amount> <T> with|using|for <T>; buy <T> with <amount>;
  buy $20 of|worth of <T>; spend <amount> on <T>; use <amount> to buy <T>; "I need 2 WETH,
  paying with USDC"; swap $20 of USDC for WETH
- send: send|transfer|give|wire|pay|move <amount|share> to <address|wallet>; send <wallet> <amount>
- pay: pay agent 7 2 USDC; pay 2 USDC to agent 7; send 2 USDC to agent #7
- hire: hire|engage|book|find an agent to <skill> [for at most <amount>]
- buy_data: buy|purchase|get|download [the] dataset <name> [for at most <amount>]
- balance: balance | my balance | what's my USDC balance | how much WETH do I have | ...
Constraints: "with at most 0.5% slippage", "50 bps", "0.75 percent tolerance", "capped at 1%",
"within 10 minutes", "at most 3,100 USDC per WETH", "paying with USDC".
"""

from __future__ import annotations

import re
from decimal import InvalidOperation

from pydantic import ValidationError

from agentbazaar.intents import _grammar as g
from agentbazaar.intents import clarify, guard, zh
from agentbazaar.intents.errors import IntentParseError, IntentRefused
from agentbazaar.intents.model import Intent

ALIASES = g.ALIASES
SWAP_VERBS = (
    r"(?:swap|trade|exchange|convert|change|turn|flip|switch|rotate|dump|offload|unload|"
    r"liquidate|cash out|cash|sell|move|put|sell off|get rid of|rebalance)"
)
BUY_VERBS = r"(?:buy|get|acquire|purchase|grab|pick up|obtain|order|score|snag|buy up)(?: me| us)?"
SEND_VERBS = r"(?:send|transfer|give|wire|pay|move|forward|remit|sent|shoot|push|hand)"
OUT_WORDS = r"(?:for|to|into|in to|to get|and get|in exchange for|for some|over to|in)"
PAY_WORDS = (
    r"(?:with|using|for|paying with|paying in|paid in|paid with|from|in exchange for|via|by)"
)
_ALL_VERBS = (
    "swap",
    "trade",
    "exchange",
    "convert",
    "sell",
    "buy",
    "send",
    "transfer",
    "give",
    "pay",
    "hire",
    "purchase",
    "balance",
)
Found = dict[str, object]


def parse_intent(text: str) -> Intent:
    """Parse one sentence (English or Chinese) into an ``Intent``; or raise
    ``NeedsClarification`` (a value is missing), ``IntentRefused`` (refused on purpose) or
    ``IntentParseError`` (not understood: see the module doc)."""
    cleaned = guard.screen(text)
    if g.CONDITIONAL.search(cleaned.lower()):
        raise IntentRefused(
            f"{cleaned!r} is a standing order (a condition or a schedule), not something to do "
            "now: nothing was done (hold it with `bazaar orders add`)",
            text=text,
            reason="standing_order",
        )
    return parse_clause(cleaned, text)


def parse_clause(cleaned: str, text: str) -> Intent:
    """The grammar on a screened sentence (standing orders call this on their action)."""
    english = zh.to_english(cleaned) if zh.has_chinese(cleaned) else cleaned
    if english is None:
        raise IntentParseError(f"could not understand {text!r}", text=text)
    s, addresses = g.normalise(english)
    fields: dict[str, object] = {}
    s = g.cut_constraints(s, fields, text)
    for parse in (_balance, _pay, _send, _data, _hire, _swap):
        found = parse(s)
        if found is not None:
            found = _apply_pay_with(found, fields, s, text)
            return build(found, addresses, text)
    clarify.raise_if_partial(s, fields, addresses, text)
    raise IntentParseError(_why_not(s, text), text=text)


# ---- shapes -------------------------------------------------------------------------------------
def _full(pattern: str, s: str) -> re.Match[str] | None:
    return re.fullmatch(pattern, s)


def _balance(s: str) -> Found | None:
    sym = g.SYM
    patterns = (
        rf"(?:check|show|show me|get|tell me|display|what is|what are|view|see|give me|list)?\s*"
        rf"(?:my|the|our)?\s*(?:current\s+)?(?:(?P<t>{sym})\s+)?(?:wallet\s+|token\s+|account\s+)?"
        rf"balances?(?:\s+(?:of|in|for)\s+(?:my\s+)?(?P<t2>{sym}))?(?:\s+please)?",
        rf"how (?:much|many) (?P<t>{sym}) (?:do i have|have i got|do i own|do i hold|is in my "
        rf"wallet|is left|have i|i have|i've got|are in my wallet|do we have|is there)",
        rf"how much (?:do i have|money do i have|is in my wallet|have i got)(?: in (?P<t2>{sym}))?",
        r"what(?: is| do i have)? in my wallet|what do i (?:have|own|hold)|show (?:me )?my wallet"
        r"|(?:check|show|list|view) (?:my )?(?:funds|holdings|tokens|assets)|my (?:funds|holdings)",
        rf"do i have (?:any |enough )?(?P<t>{sym})",
    )
    for pattern in patterns:
        m = _full(pattern, s)
        if m:
            gd = m.groupdict()
            tok = gd.get("t") or gd.get("t2")
            if tok in (
                "wallet",
                "token",
                "tokens",
                "account",
                "current",
                "total",
                "my",
                "money",
                "cash",
                "funds",
                "crypto",
                "stuff",
                "coins",
                "assets",
            ):
                tok = None
            return {"action": "balance", "token_in": g.token(tok) if tok else None}
    return None


def _pay(s: str) -> Found | None:
    agent = g.AGENT
    amt = g.amount("a")
    for pattern in (
        rf"(?:pay|tip) {agent}\s+{amt}",
        rf"(?:pay|send|transfer|give|tip|wire) {amt} to {agent}",
        rf"(?:pay|tip|give) {amt} to {agent}",
        rf"(?:pay|tip) {amt} (?:to )?{agent}",
    ):
        m = _full(pattern, s)
        if m:
            amount = g.read_amount(m, "a")
            return {
                "action": "pay",
                "amount": amount["amount"],
                "token_in": amount["token"],
                "to": f"agent:{m.group('agent')}",
            }
    return None


def _send(s: str) -> Found | None:
    recipient = rf"(?P<to>{g.ADDR}|{g.NAME})"
    s = re.sub(r" from (?:my (?:wallet|account)|me)(?= |$)", "", s)
    amt = g.amount_or_share("a")
    for pattern in (
        rf"{SEND_VERBS} {amt} (?:to|over to|across to|on to|onto|along to|off to) {recipient}",
        rf"(?:send|give|pay|transfer|wire|hand|forward) {recipient} {amt}",
        rf"(?:send|transfer|wire|pay|give|move) (?:to|over to) {recipient},? {amt}",
    ):
        m = _full(pattern, s)
        if m and not (m.group("to") in ("agent", "someone") or _is_token_word(m.group("to"))):
            amount = g.read_amount(m, "a")
            return {
                "action": "send",
                "amount": amount.get("amount"),
                "fraction": amount.get("fraction"),
                "token_in": amount["token"],
                "to": m.group("to"),
            }
    return None


def _is_token_word(word: str) -> bool:
    """A send 'to usdc' is not a send: a word that names a token is never a recipient here."""
    return word in g.ALIASES or word.upper() in ("WETH", "USDT", "DAI", "WBTC", "ETH", "USDC")


def _data(s: str) -> Found | None:
    name = r"(?P<name>[a-z0-9][\w.-]{0,63})"
    verbs = r"(?:buy|purchase|get|download|acquire|order|fetch|grab|license|pay for)(?: me| us)?"
    for pattern in (
        rf"{verbs} (?:the |a |that )?(?:dataset|data set|data)(?: called| named)? {name}{_BUDGET}",
        rf"{verbs} (?:the |a )?{name} (?:dataset|data set|data){_BUDGET}",
        rf"{verbs} (?:access to )?(?:the )?{name} (?:dataset|data set){_BUDGET}",
    ):
        m = _full(pattern, s)
        if m:
            return {"action": "buy_data", "to": f"dataset:{m.group('name')}", **_budget(m)}
    return None


_BUDGET = (
    rf"(?:\s*,?\s*(?:for|paying|with a budget of|on a budget of|budget(?: of| is)?|at|costing|"
    rf"max(?:imum)?(?: price)?(?: of)?|price(?: limit)?(?: of)?|spending|and spend|to spend|"
    rf"willing to pay|i can pay|i'll pay|that costs?)?\s*(?:at most|up to|no more than|"
    rf"max(?:imum)?|under|less than|not more than|below|a max of|a maximum of)?\s*"
    rf"{g.amount('b')}(?:\s+(?:max(?:imum)?|tops|at most|or less))?)?"
)


_SKILL = r"[a-z\u4e00-\u9fff][a-z0-9\u4e00-\u9fff ,'-]*?"


def _hire(s: str) -> Found | None:
    lead = (
        r"(?:hire|engage|book|commission|find(?: me)?|get(?: me)?|i need|i want|need|"
        r"looking for|i'm looking for|i am looking for|recruit|employ|bring in)\s+"
        r"(?:an? |some |the )?(?:ai )?(?:agent|assistant|bot|someone|somebody|worker|helper)\s+"
        r"(?:to|for|that can|who can|which can|able to|that will|who will|that could|"
        r"who could|capable of)\s+"
    )
    m = _full(rf"{lead}(?P<skill>{_SKILL}){_BUDGET}", s)
    if m is None:
        m = _full(
            rf"(?:hire|engage|book|commission) (?:an? |the )?(?P<skill>[a-z][a-z0-9 -]*?){_BUDGET}",
            s,
        )
    if m is None:
        return None
    skill = re.sub(r"^(?:to|for|an?|the)\s+", "", m.group("skill").strip(" ,"))
    if not skill or skill in ("agent", "someone", "somebody", "assistant", "bot"):
        return None
    return {"action": "hire", "to": f"skill:{skill}", **_budget(m)}


def _budget(m: re.Match[str]) -> Found:
    if not (m.group("b_usd") or m.group("b_usd2") or m.group("b_n")):
        return {}
    amount = g.read_amount(m, "b")
    return {"max_price": amount["amount"], "token_in": amount["token"]}


def _swap_shapes() -> list[tuple[str, str]]:
    amtx, amt, sym = g.amount_or_share("a"), g.amount("a"), g.SYM
    usd = rf"(?:\$\s?|us\$|usd\s?)(?P<usd>{g.NUM})(?:'s)?"
    return [
        (rf"{SWAP_VERBS} (?:my )?{amtx} {OUT_WORDS} (?:some |more )?(?P<out>{sym})", "in"),
        (rf"{SWAP_VERBS} (?:my |some |all of my )?(?P<tin>{sym}) {OUT_WORDS} {amt}", "out"),
        (rf"{BUY_VERBS} (?:me )?{amt} {PAY_WORDS} (?:my |some )?(?P<tin>{sym})", "out"),
        (rf"{BUY_VERBS} (?:some |more )?(?P<out>{sym}) {PAY_WORDS} (?:my )?{amtx}", "in"),
        (rf"{SWAP_VERBS} {usd} (?:worth )?of (?P<t1>{sym}) {OUT_WORDS} (?P<t2>{sym})", "usd"),
        (
            rf"(?:{BUY_VERBS} )?{amt} (?:worth )?of (?P<out>{sym})"
            rf"(?: {PAY_WORDS} (?P<tin>{sym}))?",
            "in",
        ),
        (rf"spend (?:my )?{amtx} (?:on|buying|to buy|for|in|to get|getting) (?P<out>{sym})", "in"),
        (
            rf"use (?:my )?{amtx} (?:to buy|to get|to purchase|for|on|to acquire|buying|"
            rf"to grab|and buy|and get) (?:some |more )?(?P<out>{sym})",
            "in",
        ),
        (rf"{BUY_VERBS} (?:me )?{amt}", "out-pay"),
    ]


def _swap(s: str) -> Found | None:
    for pattern, side in _swap_shapes():
        m = _full(pattern, s)
        if m is None:
            continue
        if side == "usd":
            return _usd_of(m)
        amount = g.read_amount(m, "a")
        gd = m.groupdict()
        if side in ("out", "out-pay"):
            token_in, token_out = (g.token(gd["tin"]) if gd.get("tin") else None), amount["token"]
            side = "out"
        else:
            token_in, token_out = amount["token"], g.token(gd["out"])
            if gd.get("tin"):
                dollars = gd.get("a_usd") or gd.get("a_usd2")
                if amount["token"] != g.token(gd["tin"]) and not dollars:
                    continue
                if dollars and g.token(gd["tin"]) != "USDC":
                    continue  # "$20 of WETH with DAI": dollars of another token, not certain
                token_in = g.token(gd["tin"])
        return {
            "action": "swap",
            "amount": amount.get("amount"),
            "fraction": amount.get("fraction"),
            "amount_side": side if amount.get("amount") else None,
            "token_in": token_in,
            "token_out": token_out,
        }
    return None


def _usd_of(m: re.Match[str]) -> Found | None:
    """'swap $20 of USDC for WETH' (20 USDC in) or 'sell $20 of WETH for USDC' (20 USDC out)."""
    t1, t2, value = g.token(m.group("t1")), g.token(m.group("t2")), g.number(m.group("usd"))
    if t1 == "USDC":
        side = "in"
    elif t2 == "USDC":
        side = "out"
    else:
        return None  # dollars of a token that is not the dollar: not certain
    return {"action": "swap", "amount": value, "amount_side": side, "token_in": t1, "token_out": t2}


def _apply_pay_with(found: Found, fields: dict[str, object], s: str, text: str) -> Found:
    """Merge the constraints; the token paid with completes a buy ("get 2 WETH, pay in USDC")."""
    pay_with = fields.pop("pay_with", None)
    price_tokens = fields.pop("price_tokens", None)
    found.update(fields)
    if pay_with is not None:
        if found["action"] == "swap" and found.get("token_in") in (None, pay_with):
            found["token_in"] = pay_with
        elif found["action"] in ("hire", "buy_data") and found.get("token_in") in (None, pay_with):
            found["token_in"] = pay_with
        else:
            raise IntentParseError(f"could not understand {text!r}: two tokens to pay with")
    if found["action"] == "swap" and found.get("token_in") is None:
        clarify.ask_token_in(found, text)
    if price_tokens is not None and found["action"] == "swap":
        _check_price_tokens(found, price_tokens, text)
    return found


def _check_price_tokens(found: Found, tokens: object, text: str) -> None:
    """'at most 3,100 USDC per WETH' must be token_in per token_out, as the Intent says."""
    quote, base = tokens if isinstance(tokens, tuple) else (None, None)
    want = (found.get("token_in"), found.get("token_out"))
    if (quote is not None and g.token(quote) != want[0]) or (base and g.token(base) != want[1]):
        raise IntentParseError(
            f"could not understand {text!r}: a price limit is written as "
            f"'at most <price> {want[0]} per {want[1]}'",
            text=text,
        )


# ---- results and refusals -----------------------------------------------------------------------
def build(found: Found, addresses: list[str], text: str) -> Intent:
    """The ``Intent`` of a complete shape; impossible values are an ``IntentRefused``."""
    to = found.get("to")
    if isinstance(to, str) and re.fullmatch(g.ADDR, to):
        found["to"] = addresses[int(to[2:])]
    found = {k: v for k, v in found.items() if v is not None}
    try:
        return Intent.model_validate(found)
    except ValidationError as exc:
        reason = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise IntentRefused(
            f"could not understand {text!r}: {reason}", text=text, reason="invalid"
        ) from exc
    except InvalidOperation as exc:  # pragma: no cover - NUM guards this
        raise IntentRefused(f"bad number in {text!r}", text=text, reason="invalid") from exc


def _why_not(s: str, text: str) -> str:
    words = s.split()
    verb = next((w for w in words if w in _ALL_VERBS), None)
    if re.search(r"(?:^|\s)-\s?\d", s):
        raise IntentRefused(
            f"could not understand {text!r}: amounts must be positive", reason="invalid"
        )
    if re.search(r"\b(?:and|then)\b", s) and sum(w in _ALL_VERBS for w in words) > 1:
        return f"could not understand {text!r}: one action at a time, please"
    if re.search(r"\d,\d{1,2}(?!\d)|\d,\d{4,}", s):
        return f"could not understand {text!r}: bad thousands separator (write 1,000 or 1000.5)"
    hints = {
        "swap": "swap <amount> <token> for <token>",
        "trade": "trade <amount> <token> for <token>",
        "exchange": "exchange <amount> <token> for <token>",
        "convert": "convert <amount> <token> to <token>",
        "sell": "sell <amount> <token> for <token>",
        "buy": "buy <amount> <token> with <token>, or buy the dataset <name>",
        "send": "send <amount> <token> to <address or wallet>",
        "transfer": "transfer <amount> <token> to <address or wallet>",
        "give": "give <amount> <token> to <address or wallet>",
        "pay": "pay agent <id> <amount> <token>, or pay <amount> <token> to <wallet>",
        "hire": "hire an agent to <skill> for at most <amount> <token>",
        "purchase": "purchase the dataset <name> for at most <amount> <token>",
        "balance": "what is my <token> balance",
    }
    if verb is not None:
        return f"could not understand {text!r}: expected '{hints[verb]}'"
    return (
        f"could not understand {text!r}: say one of swap, send, pay, hire, buy a dataset or "
        "check a balance, e.g. 'swap 100 USDC for WETH'"
    )
