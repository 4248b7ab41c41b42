"""The built-in English parser: a sentence in, an ``Intent`` out, or a clear refusal.

Deterministic (no network, no model). The sentence is normalised (case, punctuation, polite
filler, arrows), addresses are set aside so their case survives, the constraints are cut out
(slippage, deadline, price limit), and what is left must match one of a small set of shapes
completely: anything left over is refused with the reason instead of being guessed at.

Shapes (amounts: "100", "1,000.50", ".5", "2.5k", "$20", "20 dollars"; fractions: "all my X",
"half my X", "25% of my X", "a quarter of my X"):
- swap:     swap|trade|exchange|convert|change|turn <amount|fraction> <T> for|to|into <T>
            swap <T> for <amount> <T>     sell <amount|fraction> <T> for <T>
            buy <amount> <T> with|using|for <T>     buy <T> with <amount> <T>
            buy $20 of|worth of <T>        get <amount> <T> with <T>
- send:     send|transfer|give|wire|pay <amount|fraction> <T> to <address|wallet>
            send|give|pay <wallet> <amount> <T>
- pay:      pay agent 7 2 USDC     pay 2 USDC to agent 7     send 2 USDC to agent #7
- hire:     hire|engage|book|commission [an agent|someone] to <skill> [for at most <amount> <T>]
            find me an agent to|that can|who can <skill> [...]
- buy_data: buy|purchase|get|download [the] dataset <name> [for at most <amount> <T>]
            buy the <name> dataset [...]
- balance:  balance | my balance | what's my USDC balance | how much WETH do I have | ...
Constraints: "with at most 0.5% slippage", "slippage 30 bps", "1% max slippage", "within 10
minutes", "at most 3,100 USDC per WETH".
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError

from agentbazaar.intents._errors import IntentParseError
from agentbazaar.intents.model import Intent

ALIASES = {
    "dollar": "USDC",
    "dollars": "USDC",
    "usd": "USDC",
    "bucks": "USDC",
    "ether": "ETH",
    "bitcoin": "WBTC",
    "tether": "USDT",
}
_STOP = (
    "for|to|into|with|of|my|all|half|worth|and|the|from|using|a|an|some|agent|per|each|at|"
    "in|on|by|me|it|then|or|but|dataset|data|balance|balances"
)
SYM = rf"(?:(?!(?:{_STOP})\b)[a-z][a-z0-9]{{0,10}})"
NUM = r"(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)k?(?![\d,.]*\d)"
ADDR = r"@a\d+"
NAME = rf"(?:(?!(?:{_STOP})\b)[a-z][a-z0-9_.-]{{0,63}})"
AGENT = r"(?:the\s+)?agent\s*(?:#|no\.?\s*|number\s+|id\s+|named\s+|called\s+)?(?P<agent>\d+|[a-z][\w.-]*)"
FRACTIONS = {"all": "1", "half": "0.5", "a quarter": "0.25", "a half": "0.5", "everything": "1"}
SWAP_VERBS = r"(?:swap|trade|exchange|convert|change|turn)"
SEND_VERBS = r"(?:send|transfer|give|wire|pay)"
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


def _amt(p: str) -> str:
    """An amount with its token: '100 usdc', '100usdc', '$20', '20 dollars'."""
    return rf"(?:\$\s?(?P<{p}_usd>{NUM})|(?P<{p}_n>{NUM})\s*(?P<{p}_t>{SYM}))"


def _frac(p: str) -> str:
    """A share of a balance: 'all my usdc', 'half of my usdc', '25% of my usdc'."""
    words = "|".join(re.escape(w) for w in FRACTIONS)
    return (
        rf"(?:(?P<{p}_fw>{words})|(?P<{p}_pct>{NUM})\s*(?:%|percent))\s+(?:of\s+)?"
        rf"(?:my\s+|the\s+)?(?P<{p}_ft>{SYM})"
    )


def _amtx(p: str) -> str:
    return rf"(?:{_amt(p)}|{_frac(p)})"


_SLIPPAGE = [
    re.compile(
        rf"(?:,\s*)?(?:\b(?:with|at|and|using)\s+)?(?:a\s+)?(?:max(?:imum)?\s+|at most\s+|no more than\s+|"
        rf"up to\s+|under\s+|below\s+|less than\s+|<=?\s*)(?P<n>{NUM})\s*(?P<u>%|percent|bps|basis points?)"
        rf"\s*(?:of\s+)?(?:max(?:imum)?\s+)?slippage(?:\s+tolerance)?"
    ),
    re.compile(
        rf"(?:,\s*)?(?:\b(?:with|and|using)\s+)?(?:a\s+)?(?:max(?:imum)?\s+)?slippage(?:\s+tolerance)?\s*"
        rf"(?:of\s+|:\s*|=\s*|<=?\s*)?(?:at most\s+|max(?:imum)?\s+|up to\s+|below\s+|under\s+|"
        rf"no more than\s+|less than\s+)?(?P<n>{NUM})\s*(?P<u>%|percent|bps|basis points?)"
        rf"(?:\s+max(?:imum)?)?"
    ),
    re.compile(
        rf"(?:,\s*)?(?:\b(?:with|at|and|using)\s+)?(?P<n>{NUM})\s*(?P<u>%|percent|bps|basis points?)\s+"
        rf"(?:max(?:imum)?\s+)?slippage(?:\s+tolerance)?(?:\s+max(?:imum)?)?"
    ),
]
_UNIT = r"(?P<u>seconds?|secs?|s|minutes?|mins?|hours?|hrs?|h|days?|d)"
_DEADLINE = re.compile(
    r"(?:,\s*)?\b(?:within|in the next|in|before|deadline(?: of)?|expir(?:es|ing) in|valid for)\s+"
    rf"(?P<n>\d+)\s*{_UNIT}\b"
    rf"|(?:,\s*|\s+and\s+|\s+with\s+)(?:an?\s+)?(?P<n2>\d+)[\s-]?{_UNIT.replace('<u>', '<u2>')}"
    r"\s+deadline\b"
)
_PRICE = re.compile(
    rf"(?:,\s*)?\b(?:at a price of\s+|if the price is\s+|price\s+|paying\s+)?(?:at most|no more than|"
    rf"max(?:imum)?|below|under|up to)\s+(?P<n>{NUM})\s*(?P<t>{SYM})?\s*(?:per|/|for each|each|an?)\s*"
    rf"(?P<t2>{SYM})\b"
)
_BUDGET = (
    rf"(?:\s*,?\s*(?:for|paying|with a budget of|on a budget of|budget(?: of)?|at|costing|"
    rf"max(?:imum)?(?: price)?(?: of)?|price(?: limit)?(?: of)?)?\s*(?:at most|up to|no more than|"
    rf"max(?:imum)?|under|less than|not more than|below)?\s*{_amt('b')})?"
)
_FILLER_START = re.compile(
    r"^(?:(?:please|pls|kindly|hey|ok|okay|now|just|can you|could you|would you|i want to|"
    r"i'd like to|i would like to|i wanna|let's|lets|go ahead and|i need to|help me)[\s,]+)+"
)
_FILLER_END = re.compile(r"(?:[\s,]+(?:please|pls|thanks|thank you|for me|now|right now))+$")


def parse_intent(text: str) -> Intent:
    """Parse one English sentence into an ``Intent``; raise ``IntentParseError`` with the reason."""
    if not isinstance(text, str) or not text.strip():
        raise IntentParseError("empty request: say what to do, e.g. 'swap 100 USDC for WETH'")
    if len(text) > 500:
        raise IntentParseError("request too long: one action in at most 500 characters")
    s, addresses = _normalise(text)
    fields: dict[str, object] = {}
    s = _cut_constraints(s, fields, text)
    for parse in (_balance, _pay, _send, _data, _hire, _swap):
        found = parse(s)
        if found is not None:
            found.update(fields)
            return _build(found, addresses, text)
    raise IntentParseError(_why_not(s, text), text=text)


# ---- normalisation and constraints --------------------------------------------------------------
def _normalise(text: str) -> tuple[str, list[str]]:
    addresses: list[str] = []

    def keep(m: re.Match[str]) -> str:
        addresses.append(m.group(0))
        return f"@a{len(addresses) - 1}"

    s = re.sub(r"0x[0-9a-fA-F]{40}\b", keep, text.strip())
    s = s.lower().replace("\u2192", " to ").replace("->", " to ").replace("=>", " to ")
    s = s.replace("\u2019", "'").replace("what's", "what is")
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"[.!?]+$", "", s).strip()
    s = _FILLER_START.sub("", s)
    s = _FILLER_END.sub("", s)
    return s.strip(" ,"), addresses


def _cut_constraints(s: str, fields: dict[str, object], text: str) -> str:
    for pattern in _SLIPPAGE:
        m = pattern.search(s)
        if m:
            fields["max_slippage_bps"] = _bps(m.group("n"), m.group("u"), text)
            s = (s[: m.start()] + s[m.end() :]).strip(" ,")
            break
    if "slippage" in s:
        raise IntentParseError(
            "could not read the slippage limit: write it like 'with at most 0.5% slippage'",
            text=text,
        )
    m = _DEADLINE.search(s)
    if m:
        number, unit = (
            (m.group("n"), m.group("u")) if m.group("n") else (m.group("n2"), m.group("u2"))
        )
        fields["deadline_seconds"] = int(number) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit[0]]
        s = (s[: m.start()] + s[m.end() :]).strip(" ,")
    m = _PRICE.search(s)
    if m:
        fields["max_price"] = _number(m.group("n"))
        s = (s[: m.start()] + s[m.end() :]).strip(" ,")
    return re.sub(r"\s+", " ", s)


def _bps(number: str, unit: str, text: str) -> int:
    value = Decimal(_number(number))
    bps = value if unit.startswith(("bps", "basis")) else value * 100
    if bps != bps.to_integral_value():
        raise IntentParseError("slippage must be a whole number of basis points", text=text)
    if bps > 10_000:
        raise IntentParseError("slippage cannot exceed 100%", text=text)
    return int(bps)


def _number(raw: str) -> str:
    thousand = raw.endswith("k")
    value = Decimal(raw.rstrip("k").replace(",", ""))
    return format((value * 1000 if thousand else value).normalize(), "f")


def _token(raw: str) -> str:
    return ALIASES.get(raw, raw.upper())


# ---- shapes -----------------------------------------------------------------------------------
Found = dict[str, object]


def _full(pattern: str, s: str) -> re.Match[str] | None:
    return re.fullmatch(pattern, s)


def _read_amount(m: re.Match[str], p: str) -> dict[str, str]:
    """amount+token, or fraction+token, from the groups of ``_amt``/``_frac``/``_amtx``."""
    g = m.groupdict()
    if g.get(f"{p}_usd"):
        return {"amount": _number(g[f"{p}_usd"]), "token": "USDC"}
    if g.get(f"{p}_n"):
        return {"amount": _number(g[f"{p}_n"]), "token": _token(g[f"{p}_t"])}
    if g.get(f"{p}_fw"):
        return {"fraction": FRACTIONS[g[f"{p}_fw"]], "token": _token(g[f"{p}_ft"])}
    pct = Decimal(_number(g[f"{p}_pct"])) / 100
    return {"fraction": format(pct.normalize(), "f"), "token": _token(g[f"{p}_ft"])}


def _balance(s: str) -> Found | None:
    patterns = (
        rf"(?:check|show|show me|get|tell me|display|what is|what are|view)?\s*(?:my|the)?\s*"
        rf"(?:(?P<t>{SYM})\s+)?(?:wallet\s+)?balances?(?:\s+(?:of|in|for)\s+(?:my\s+)?(?P<t2>{SYM}))?",
        rf"how much (?P<t>{SYM}) (?:do i have|have i got|do i own|is in my wallet|is left)",
        rf"how much (?:do i have|money do i have|is in my wallet)(?: in (?P<t2>{SYM}))?",
        r"what is in my wallet|show (?:me )?my wallet|(?:check|show|list) (?:my )?(?:funds|holdings)",
    )
    for pattern in patterns:
        m = _full(pattern, s)
        if m:
            g = m.groupdict()
            token = g.get("t") or g.get("t2")
            if token in ("wallet", "token", "tokens", "account", "current"):
                token = None
            return {"action": "balance", "token_in": _token(token) if token else None}
    return None


def _pay(s: str) -> Found | None:
    for pattern in (
        rf"(?:pay|tip) {AGENT}\s+{_amt('a')}",
        rf"(?:pay|send|transfer|give|tip) {_amt('a')} to {AGENT}",
        rf"(?:pay|tip|give) {_amt('a')} to {AGENT}",
    ):
        m = _full(pattern, s)
        if m:
            amount = _read_amount(m, "a")
            return {
                "action": "pay",
                "amount": amount["amount"],
                "token_in": amount["token"],
                "to": f"agent:{m.group('agent')}",
            }
    return None


def _send(s: str) -> Found | None:
    recipient = rf"(?P<to>{ADDR}|{NAME})"
    for pattern in (
        rf"{SEND_VERBS} {_amtx('a')} (?:to|over to) {recipient}",
        rf"(?:send|give|pay|transfer) {recipient} {_amtx('a')}",
    ):
        m = _full(pattern, s)
        if m:
            amount = _read_amount(m, "a")
            return {
                "action": "send",
                "amount": amount.get("amount"),
                "fraction": amount.get("fraction"),
                "token_in": amount["token"],
                "to": m.group("to"),
            }
    return None


def _data(s: str) -> Found | None:
    name = r"(?P<name>[a-z0-9][\w.-]{0,63})"
    verbs = r"(?:buy|purchase|get|download|acquire|order)(?: me)?"
    for pattern in (
        rf"{verbs} (?:the |a )?(?:dataset|data set|data)(?: called| named)? {name}{_BUDGET}",
        rf"{verbs} (?:the |a )?{name} (?:dataset|data set|data){_BUDGET}",
    ):
        m = _full(pattern, s)
        if m:
            return {"action": "buy_data", "to": f"dataset:{m.group('name')}", **_budget(m)}
    return None


def _hire(s: str) -> Found | None:
    lead = (
        r"(?:hire|engage|book|commission|find(?: me)?|get(?: me)?)\s+"
        r"(?:an? |some |the )?(?:ai )?(?:agent|assistant|bot|someone|somebody)\s+"
        r"(?:to|for|that can|who can|which can|able to|that will|who will)\s+"
    )
    m = _full(rf"{lead}(?P<skill>[a-z][a-z0-9 ,'-]*?){_BUDGET}", s)
    if m is None:
        m = _full(
            rf"(?:hire|engage|book|commission) (?:an? |the )?(?P<skill>[a-z][a-z0-9 -]*?){_BUDGET}",
            s,
        )
    if m is None:
        return None
    skill = re.sub(r"^(?:to|for|an?|the)\s+", "", m.group("skill").strip(" ,"))
    if not skill:
        return None
    return {"action": "hire", "to": f"skill:{skill}", **_budget(m)}


def _budget(m: re.Match[str]) -> Found:
    if not (m.group("b_usd") or m.group("b_n")):
        return {}
    amount = _read_amount(m, "b")
    return {"max_price": amount["amount"], "token_in": amount["token"]}


def _swap(s: str) -> Found | None:
    out_words = r"(?:for|to|into|in to|to get|and get|in exchange for)"
    pay_words = r"(?:with|using|for|paying with|paying in|from|in exchange for)"
    shapes: list[tuple[str, str]] = [
        (rf"{SWAP_VERBS} {_amtx('a')} {out_words} (?:some )?(?P<out>{SYM})", "in"),
        (rf"sell {_amtx('a')}(?: {out_words} (?:some )?(?P<out>{SYM}))", "in"),
        (rf"{SWAP_VERBS} (?P<tin>{SYM}) {out_words} {_amt('a')}", "out"),
        (rf"(?:buy|get|acquire|purchase)(?: me)? {_amt('a')} {pay_words} (?P<tin>{SYM})", "out"),
        (rf"(?:buy|get|purchase)(?: me)? (?:some )?(?P<out>{SYM}) {pay_words} {_amtx('a')}", "in"),
        (
            rf"(?:(?:buy|get|purchase)(?: me)? )?{_amt('a')} (?:worth )?of (?P<out>{SYM})"
            rf"(?: {pay_words} (?P<tin>{SYM}))?",
            "in",
        ),
    ]
    for pattern, side in shapes:
        m = _full(pattern, s)
        if m is None:
            continue
        amount = _read_amount(m, "a")
        g = m.groupdict()
        if side == "out":
            token_in, token_out = _token(g["tin"]), amount["token"]
        else:
            token_in, token_out = amount["token"], _token(g["out"])
            if g.get("tin"):
                if (
                    amount.get("amount")
                    and g.get("a_usd") is None
                    and amount["token"] != _token(g["tin"])
                ):
                    return None
                token_in = _token(g["tin"])
        return {
            "action": "swap",
            "amount": amount.get("amount"),
            "fraction": amount.get("fraction"),
            "amount_side": side if amount.get("amount") else None,
            "token_in": token_in,
            "token_out": token_out,
        }
    return None


# ---- results and refusals -----------------------------------------------------------------------
def _build(found: Found, addresses: list[str], text: str) -> Intent:
    to = found.get("to")
    if isinstance(to, str) and re.fullmatch(ADDR, to):
        found["to"] = addresses[int(to[2:])]
    found = {k: v for k, v in found.items() if v is not None}
    try:
        return Intent.model_validate(found)
    except ValidationError as exc:
        reason = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise IntentParseError(f"could not understand {text!r}: {reason}", text=text) from exc
    except InvalidOperation as exc:  # pragma: no cover - NUM guards this
        raise IntentParseError(f"bad number in {text!r}", text=text) from exc


def _why_not(s: str, text: str) -> str:
    words = s.split()
    verb = next((w for w in words if w in _ALL_VERBS), None)
    if re.search(r"(?:^|\s)-\s?\d", s):
        return f"could not understand {text!r}: amounts must be positive"
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
