"""The pieces of the English grammar the deterministic parser is built from: normalisation of a
sentence, the patterns of amounts, shares, tokens and recipients, and the constraints that are
cut out of a sentence before its shape is matched (slippage, deadline, price limit, the token
paid with).

Everything here is certain or it does not match: a constraint that mentions slippage but cannot
be read is refused (never dropped), and what is left after cutting must match a shape of
``parser`` completely.
"""

from __future__ import annotations

import re
from decimal import Decimal

from agentbazaar.intents.errors import IntentRefused
from agentbazaar.intents.numbers import words_to_digits

ALIASES = {
    "dollar": "USDC",
    "dollars": "USDC",
    "usd": "USDC",
    "bucks": "USDC",
    "buck": "USDC",
    "ether": "ETH",
    "eth": "ETH",
    "bitcoin": "WBTC",
    "bitcoins": "WBTC",
    "btc": "WBTC",
    "tether": "USDT",
    "usdc": "USDC",
}
_STOP = (
    "for|to|into|with|of|my|all|half|worth|and|the|from|using|a|an|some|agent|per|each|at|"
    "in|on|by|me|it|then|or|but|dataset|data|balance|balances|more|less|than|most|least|"
    "paying|pay|buy|sell|get|swap|send|your|our|his|her|their|this|that|these|those|what|"
    "do|i|is|are|have|you|we|they"
)
SYM = rf"(?:(?!(?:{_STOP})\b)[a-z][a-z0-9]{{0,10}})"
NUM = r"(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)k?(?![\d,.]*\d)"
ADDR = r"@a\d+"
NAME = rf"(?:(?!(?:{_STOP})\b)[a-z][a-z0-9_.-]{{0,63}})"
AGENT = (
    r"(?:the\s+)?agent\s*(?:#|no\.?\s*|number\s+|id\s+|named\s+|called\s+)?"
    r"(?P<agent>\d+|[a-z][\w.-]*)"
)
FRACTIONS = {
    "all": "1",
    "half": "0.5",
    "a quarter": "0.25",
    "one quarter": "0.25",
    "a half": "0.5",
    "one half": "0.5",
    "three quarters": "0.75",
    "a tenth": "0.1",
    "one tenth": "0.1",
    "a fifth": "0.2",
    "one fifth": "0.2",
    "the whole": "1",
    "100%": "1",
}
_CURRENCY = r"(?:\$|us\$|usd\s?)"


def amount(p: str) -> str:
    """An amount with its token: '100 usdc', '100usdc', '$20', '20 dollars', '20$'."""
    return (
        rf"(?:{_CURRENCY}(?P<{p}_usd>{NUM})|(?P<{p}_usd2>{NUM})\s?\$"
        rf"|(?P<{p}_n>{NUM})\s*(?:units? of\s+)?(?P<{p}_t>{SYM}))"
    )


def share(p: str) -> str:
    """A share of a balance: 'all my usdc', 'half of my usdc', '25% of my usdc', 'my usdc'
    is not a share (no amount: the parser asks)."""
    words = "|".join(re.escape(w) for w in FRACTIONS)
    return (
        rf"(?:(?P<{p}_fw>{words})|(?P<{p}_pct>{NUM})\s*(?:%|percent|per cent|pct))\s+(?:of\s+)?"
        rf"(?:(?:my|our|the)\s+)?(?:(?:entire|whole|current|remaining)\s+)?(?P<{p}_ft>{SYM})"
        rf"(?:\s+(?:balance|holdings|stack|bag|position))?"
        rf"|(?:all|everything) (?:of\s+)?(?:the\s+)?(?P<{p}_ft2>{SYM}) (?:i have|i hold|i own)"
        rf"|(?:my|the) (?:entire|whole) (?P<{p}_ft3>{SYM})(?: balance| holdings| stack| bag)?"
        rf"|half (?:of\s+)?(?:my|the)\s+(?P<{p}_fth>{SYM})(?: balance| holdings)?"
    )


def amount_or_share(p: str) -> str:
    return rf"(?:{amount(p)}|{share(p)})"


def number(raw: str) -> str:
    """'1,000.50' -> '1000.5', '2.5k' -> '2500' (canonical decimal text, exact)."""
    thousand = raw.endswith("k")
    value = Decimal(raw.rstrip("k").replace(",", ""))
    return format((value * 1000 if thousand else value).normalize(), "f")


def token(raw: str) -> str:
    return ALIASES.get(raw, raw.upper())


def read_amount(m: re.Match[str], p: str) -> dict[str, str]:
    """amount+token, or fraction+token, from the groups of ``amount``/``share``."""
    g = m.groupdict()
    usd = g.get(f"{p}_usd") or g.get(f"{p}_usd2")
    if usd:
        return {"amount": number(usd), "token": "USDC"}
    if g.get(f"{p}_n"):
        return {"amount": number(g[f"{p}_n"]), "token": token(g[f"{p}_t"])}
    for key, fraction in ((f"{p}_ft2", "1"), (f"{p}_ft3", "1"), (f"{p}_fth", "0.5")):
        if g.get(key):
            return {"fraction": fraction, "token": token(g[key])}
    if g.get(f"{p}_fw"):
        return {"fraction": FRACTIONS[g[f"{p}_fw"]], "token": token(g[f"{p}_ft"])}
    pct = Decimal(number(g[f"{p}_pct"])) / 100
    return {"fraction": format(pct.normalize(), "f"), "token": token(g[f"{p}_ft"])}


# ---- normalisation ----------------------------------------------------------------------------
_FILLER_START = re.compile(
    r"^(?:(?:please|pls|plz|kindly|hey|hi|hello|ok|okay|so|now|just|quickly|can you|could you|"
    r"would you|will you|can i|could i|may i|i want to|i wanna|i'd like to|i would like to|"
    r"i'd love to|let's|lets|let me|go ahead and|i need to|help me|i'm looking to|"
    r"i am looking to|i'm trying to|i am trying to|i have to|i gotta|time to|try to|"
    r"i'll|i will|we want to|we need to|we'd like to|bazaar|agent)[\s,]+)+"
)
_FILLER_END = re.compile(
    r"(?:[\s,]+(?:please|pls|plz|thanks|thank you|thx|ty|for me|now|right now|asap|"
    r"right away|immediately|today|if you can|if possible|cheers|kthx))+$"
)
_WANT = re.compile(
    r"^(?:i(?: need| want| would like|'d like)|i'm after|i am after|give me|gimme|"
    r"i'd love|i would love)(?: to (?:get|buy|have|acquire|purchase|own))?\s+"
    r"(?=(?:\$|us\$|\d|\.\d|some\b|more\b))"
)


def normalise(text: str) -> tuple[str, list[str]]:
    """Lower case, one line, addresses set aside (``@a0``...), polite filler off, number
    words as digits. Returns the sentence and the addresses in their original case."""
    addresses: list[str] = []

    def keep(m: re.Match[str]) -> str:
        addresses.append(m.group(0))
        return f" @a{len(addresses) - 1} "

    s = re.sub(r"0x[0-9a-fA-F]{40}(?![0-9a-zA-Z])", keep, text.strip())
    s = s.lower()
    for arrow in ("\u2192", "->", "=>", "\u27a1"):
        s = s.replace(arrow, " to ")
    s = s.replace("\u2019", "'").replace("\u2264", "<=").replace("what's", "what is")
    s = s.replace("\u201c", '"').replace("\u201d", '"')
    s = re.sub(r"(?<=\w)'s\b(?= (?:worth|of))", "", s)
    s = re.sub(r"\bwrapped (?:ether|eth)\b", "weth", s)
    s = re.sub(r"\bwrapped (?:bitcoin|btc)\b", "wbtc", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"[.!?;]+$", "", s).strip()
    s = words_to_digits(s)
    for _ in range(3):
        s = _FILLER_START.sub("", s)
        s = _FILLER_END.sub("", s)
    s = _WANT.sub("buy ", s)
    return re.sub(r"\s+", " ", s).strip(" ,"), addresses


# ---- constraints ------------------------------------------------------------------------------
_PCT = r"(?P<u>%|percent|per cent|pct|bps|bips|basis points?)"
_CAP = (
    r"(?:at most|max(?:imum)?|no more than|not more than|up to|under|below|less than|within|"
    r"capped at|cap(?:ped)? of|a cap of|limit(?:ed)? (?:of|to)|tops|<=?|of|at|:|=|is|"
    r"no greater than|no higher than|not above|not exceeding|maxed at|allow(?:ing)?|"
    r"tolerat(?:e|ing)|accept(?:ing)?|keep(?:ing)? it (?:under|below|to)|with)"
)
_SLIP_WORD = r"(?:slippage|slip|price impact|tolerance)(?:\s+(?:tolerance|limit|cap|allowance|max(?:imum)?))?"
SLIPPAGE = [
    re.compile(
        rf"(?:,\s*)?(?:\b(?:with|at|and|using|allowing|accepting|set|keep|keeping)\s+)?(?:an?\s+)?"
        rf"(?:(?:{_CAP})\s+)*(?P<n>{NUM})\s*{_PCT}\s*(?:of\s+)?(?:max(?:imum)?\s+)?"
        rf"{_SLIP_WORD}(?:\s+(?:max(?:imum)?|at most|tops|or less))?"
    ),
    re.compile(
        rf"(?:,\s*)?(?:\b(?:with|and|using|at|keep|keeping|set|setting)\s+)?(?:an?\s+|the\s+)?"
        rf"(?:max(?:imum)?\s+)?{_SLIP_WORD}\s*(?:(?:{_CAP})\s+|[:=]\s*)*(?P<n>{NUM})\s*{_PCT}"
        rf"(?:\s+(?:max(?:imum)?|at most|tops|or less))?"
    ),
    # a bare limit at the end of a clause: ", 50 bps", "capped at 1%", "0.75 percent tolerance"
    re.compile(
        rf"(?:,\s*(?:(?:with|and|at)\s+)?(?:an?\s+)?(?:(?:{_CAP})\s+)*|\s+(?:(?:with|and)\s+)?"
        rf"(?:an?\s+)?(?:(?:{_CAP})\s+)+)(?P<n>{NUM})\s*{_PCT}"
        rf"(?:\s+(?:max(?:imum)?|cap|tops|at most|limit|or less))?(?=\s*(?:,|$))"
    ),
]
_UNIT = r"(?P<u>seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w)"
DEADLINE = re.compile(
    r"(?:,\s*)?\b(?:within(?: the next)?|in the next|in under|in less than|in|before|"
    r"deadline(?: of| is| in)?|expir(?:es|ing|y)(?: in| after)?|expire (?:in|after)|"
    r"valid for|timeout(?: of| after)?|time ?limit(?: of)?|no later than|ttl(?: of)?|"
    r"at the latest in|or cancel after|cancel(?:led)? after|good for|for the next)\s*:?\s+"
    rf"(?P<n>\d+)\s*{_UNIT}\b(?: from(?: now)?)?"
    rf"|(?:,\s*|\s+and\s+|\s+with\s+)(?:an?\s+)?(?P<n2>\d+)[\s-]?{_UNIT.replace('<u>', '<u2>')}"
    r"\s+(?:deadline|timeout|time limit|expiry|window)\b"
)
PRICE = re.compile(
    r"(?:,\s*)?\b(?:at a price of\s+|if the price is\s+|(?:limit )?price\s+(?:of\s+|is\s+)?|"
    r"paying\s+|(?:and\s+)?(?:don't|do not|never) pay\s+|for\s+)?(?:at most|no more than|"
    r"not more than|max(?:imum)?|below|under|up to|less than|no higher than|<=?)\s+"
    rf"(?P<n>{NUM})\s*(?P<t>{SYM})?\s*(?:per|/|for each|each|an?|for one|for 1)\s*"
    rf"(?P<t2>{SYM})\b"
)
PAY_WITH = re.compile(
    r"(?:,\s*|\s+)(?:and\s+)?(?:(?:i'll |i will |i'd |we'll )?pay(?:ing)?|paid|settl(?:e|ing)|"
    r"funded|fund it|using|use)\s+(?:it\s+)?(?:with|in|from|using|by|via)?\s*"
    rf"(?:my\s+|some\s+)?(?P<t>{SYM})(?:\s+(?:for it|for that))?(?=\s*(?:,|$))"
)
CONDITIONAL = re.compile(
    r"\b(?:if|when|whenever|once|as soon as|every|each (?:day|week|hour|month)|daily|weekly|"
    r"hourly|monthly|until|unless|after the price|(?:drops?|falls?|rises?|goes|climbs?) "
    r"(?:below|above|under|over|to))\b|如果|假如|当.{0,12}时|當.{0,12}時|每天|每周|每週|每小时|"
    r"每小時|每月|一旦|跌破|涨破|漲破|涨到|漲到|跌到|(?<!不)(?:高于|低于|高於|低於)"
)


def cut_constraints(s: str, fields: dict[str, object], text: str) -> str:
    """Cut slippage, deadline, price limit and the paying token out of ``s`` into ``fields``."""
    s = _cut_slippage(s, fields, text)
    m = DEADLINE.search(s)
    if m:
        n, unit = (m.group("n"), m.group("u")) if m.group("n") else (m.group("n2"), m.group("u2"))
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit[0]]
        fields["deadline_seconds"] = int(n) * seconds
        s = _cut(s, m)
    m = PRICE.search(s)
    if m:
        fields["max_price"] = number(m.group("n"))
        fields["price_tokens"] = (m.group("t"), m.group("t2"))
        s = _cut(s, m)
    m = PAY_WITH.search(s)
    if m:
        fields["pay_with"] = token(m.group("t"))
        s = _cut(s, m)
    return re.sub(r"\s+", " ", s).strip(" ,")


def _cut_slippage(s: str, fields: dict[str, object], text: str) -> str:
    for pattern in SLIPPAGE:
        m = pattern.search(s)
        if m and not re.match(r"\s*(?:of|in)\b", s[m.end() :]):
            fields["max_slippage_bps"] = bps(m.group("n"), m.group("u"), text)
            return _cut(s, m)
    if re.search(r"\bslip(?:page)?\b|\bprice impact\b", s):
        raise IntentRefused(
            "could not read the slippage limit: write it like 'with at most 0.5% slippage'",
            text=text,
            reason="invalid",
        )
    return s


def _cut(s: str, m: re.Match[str]) -> str:
    return (s[: m.start()] + " " + s[m.end() :]).strip(" ,")


def bps(n: str, unit: str, text: str) -> int:
    value = Decimal(number(n))
    result = value if unit.startswith(("bp", "bi", "basis")) else value * 100
    if result != result.to_integral_value():
        raise IntentRefused(
            "slippage must be a whole number of basis points", text=text, reason="invalid"
        )
    if result > 10_000:
        raise IntentRefused("slippage cannot exceed 100%", text=text, reason="invalid")
    return int(result)
