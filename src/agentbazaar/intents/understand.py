"""The front door: a sentence to an ``Intent`` through two parsers and one validation.

    understood = understand("could you flip twenty bucks into weth", extractor=local_model())
    understood.intent, understood.parser      # Intent(...), "rules" or "model"

1. ``guard.screen``: length cap, control characters, scripts, injections, rule changes and
   sweeps are refused in code, before anything reads the sentence; a condition or a schedule is
   a standing order, refused (never executed now).
2. The deterministic parser (``parser.parse_clause``, milliseconds) answers what it is certain
   of: an ``Intent``, a question (``NeedsClarification``) or a refusal (``IntentRefused``).
3. Only a sentence it could not read goes to the ``extractor`` (a language model constrained to
   ``prompt.SCHEMA`` with the fixed few-shot prompt). Its answer is held to the sentence
   (``check_grounded``): every value must be written there (a token or its name, the number, the
   share, the recipient, the percentage...), a value that is not is dropped, and a required value
   that is missing or was dropped is asked for, never guessed.
4. Both results pass ``Intent`` validation and ``check_context`` (tokens known on this chain,
   recipients that are wallets here), the same for both parsers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from agentbazaar.errors import NeedsClarification, UnknownTokenError
from agentbazaar.intents import _grammar as g
from agentbazaar.intents import clarify, guard, prompt, zh
from agentbazaar.intents.errors import IntentParseError, IntentRefused
from agentbazaar.intents.model import Intent
from agentbazaar.intents.numbers import chinese_to_digits, words_to_digits
from agentbazaar.intents.parser import parse_clause

Parser = Literal["rules", "model"]
REQUIRED: dict[str, tuple[str, ...]] = {
    "swap": ("token_in", "token_out", "amount"),
    "send": ("amount", "token_in", "to"),
    "pay": ("amount", "token_in", "to"),
    "hire": ("to",),
    "buy_data": ("to",),
    "balance": (),
}


class Extractor(Protocol):
    """A language model behind one function: the sentence, the JSON schema its answer must
    follow, the few-shot examples and the instructions -> the parsed JSON answer."""

    name: str

    def __call__(
        self,
        sentence: str,
        schema: Mapping[str, Any],
        examples: Sequence[prompt.Example],
        instructions: str,
    ) -> Any: ...


@dataclass(frozen=True)
class Context:
    """What the checks compare an intent with: the tokens known on this chain (symbols) and the
    wallet names of this data directory; None skips that check (parsing without a chain)."""

    tokens: frozenset[str] | None = None
    wallets: frozenset[str] | None = None

    @classmethod
    def of(cls, tokens: Iterable[str] | None, wallets: Iterable[str] | None) -> Context:
        return cls(
            None if tokens is None else frozenset(t.upper() for t in tokens),
            None if wallets is None else frozenset(wallets),
        )


@dataclass(frozen=True)
class Understood:
    intent: Intent
    parser: Parser
    dropped: tuple[str, ...] = ()  # fields of a model's answer not found in the sentence

    def to_dict(self) -> dict[str, Any]:
        return {**self.intent.stable(), "parser": self.parser}


def understand(
    sentence: str,
    *,
    extractor: Extractor | None = None,
    context: Context | None = None,
    fast_path: bool = True,
) -> Understood:
    """The ``Intent`` of ``sentence`` (see the module doc); raises ``NeedsClarification``,
    ``IntentRefused``, ``IntentParseError`` or ``UnknownTokenError``. ``fast_path=False`` sends
    every sentence the guard lets through to the ``extractor`` (to measure the model path)."""
    cleaned = guard.screen(sentence)
    if g.CONDITIONAL.search(cleaned.lower()):
        raise IntentRefused(
            f"{cleaned!r} is a standing order (a condition or a schedule), not something to do "
            "now: nothing was done (hold it with `bazaar orders add`)",
            reason="standing_order",
        )
    if not fast_path and extractor is not None:
        understood = _ask_model(cleaned, extractor)
        _check(understood, context)
        return understood
    try:
        understood = Understood(parse_clause(cleaned, sentence), "rules")
    except NeedsClarification as exc:
        exc.fields["parser"] = "rules"
        raise
    except IntentRefused:
        raise
    except IntentParseError:
        if extractor is None:
            raise
        understood = _ask_model(cleaned, extractor)
    _check(understood, context)
    return understood


def _check(understood: Understood, context: Context | None) -> None:
    try:
        check_context(understood.intent, context or Context())
    except NeedsClarification as exc:
        exc.fields["parser"] = understood.parser
        raise


def _ask_model(cleaned: str, extractor: Extractor) -> Understood:
    answer = extractor(cleaned, prompt.SCHEMA, prompt.EXAMPLES, prompt.INSTRUCTIONS)
    if not isinstance(answer, dict) or answer.get("action") not in REQUIRED:
        raise IntentParseError(
            f"could not understand {cleaned!r}: say one of swap, send, pay, hire, buy a dataset "
            "or check a balance, e.g. 'swap 100 USDC for WETH'",
            parser="model",
        )
    kept, dropped = check_grounded(answer, cleaned)
    missing = _missing(kept)
    if missing:
        exc = clarify.needs(kept, missing, cleaned)
        exc.fields["parser"] = "model"
        raise exc
    try:
        intent = Intent.model_validate(kept)
    except ValidationError as exc:
        reason = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise IntentRefused(
            f"could not understand {cleaned!r}: {reason}", reason="invalid", parser="model"
        ) from exc
    return Understood(intent, "model", tuple(dropped))


def _missing(fields: dict[str, Any]) -> list[str]:
    missing = [f for f in REQUIRED[fields["action"]] if fields.get(f) is None]
    if "amount" in missing and fields.get("fraction") is not None:
        missing.remove("amount")
    if fields.get("amount") is not None and fields["action"] == "swap":
        if fields.get("amount_side") is None:
            missing.append("amount_side")
    return missing


# ---- grounding --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evidence:
    """What a sentence says, read deterministically: the numbers, the tokens named, the shares,
    and which token each number is written with ("2 weth" -> 2: WETH)."""

    text: str
    numbers: frozenset[Decimal]
    tokens: frozenset[str]
    shares: frozenset[Decimal]
    units_of: dict[Decimal, str]


def evidence(cleaned: str) -> Evidence:
    s = cleaned
    if zh.has_chinese(s):
        s = "".join(zh._T2S.get(c, c) for c in s)
        s = chinese_to_digits(s)
        for pattern, symbol in zh._TOKENS:
            s = re.sub(pattern, symbol, s)
    s = words_to_digits(s.lower())
    s = re.sub(r"\bwrapped (?:ether|eth)\b", "weth", s)
    s = re.sub(r"\bwrapped (?:bitcoin|btc)\b", "wbtc", s)
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)
    s = re.sub(r"(\d+(?:\.\d+)?)k\b", lambda m: str(Decimal(m.group(1)) * 1000), s)
    numbers = frozenset(Decimal(n) for n in re.findall(r"\d+(?:\.\d+)?|\.\d+", s))
    words = set(re.findall(r"[a-z][a-z0-9]{0,10}", s))
    tokens = {w.upper() for w in words} | {g.ALIASES[w] for w in words if w in g.ALIASES}
    if "$" in s:
        tokens.add("USDC")
    units_of: dict[Decimal, str] = {}
    amount = r"(\$\s?)?(\d+(?:\.\d+)?)\s*(?:个|枚|x\s)?\s*(?:(?:more|extra|additional|of)\s+)?"
    for m in re.finditer(amount + r"([a-z][a-z0-9]{0,10})?", s):
        unit = "USDC" if m.group(1) else (g.token(m.group(3)) if m.group(3) else None)
        if unit:
            units_of.setdefault(Decimal(m.group(2)), unit)
    return Evidence(s, numbers, frozenset(tokens), _shares(s, numbers), units_of)


def _shares(s: str, numbers: frozenset[Decimal]) -> frozenset[Decimal]:
    found = set()
    for pattern, value in (
        (r"\ball\b|\bentire\b|\bwhole\b|\beverything\b|全部|所有|全", "1"),
        (r"\bhalf\b|一半|半", "0.5"),
        (r"\bquarter\b", "0.25"),
        (r"\bthree quarters\b", "0.75"),
        (r"\btenth\b", "0.1"),
        (r"\bfifth\b", "0.2"),
    ):
        if re.search(pattern, s):
            found.add(Decimal(value))
    for n in re.findall(r"(\d+(?:\.\d+)?)\s*(?:%|percent|per cent|pct)", s):
        found.add(Decimal(n) / 100)
    for n in re.findall(r"(\d+(?:\.\d+)?)\s*成", s):
        found.add(Decimal(n) / 10)
    return frozenset(found)


def check_grounded(answer: Mapping[str, Any], cleaned: str) -> tuple[dict[str, Any], list[str]]:
    """The fields of a model's ``answer`` that ``cleaned`` supports, and the names of those it
    does not (dropped: a required one is then asked for)."""
    ev = evidence(cleaned)
    kept: dict[str, Any] = {"action": answer["action"]}
    dropped: list[str] = []
    for field, value in answer.items():
        if field == "action" or value is None:
            continue
        if field not in prompt.SCHEMA["properties"]:
            dropped.append(field)
        elif _supported(field, value, ev, cleaned):
            kept[field] = value
        else:
            dropped.append(field)
    _side_from_text(kept, ev)
    return kept, dropped


def _supported(field: str, value: Any, ev: Evidence, cleaned: str) -> bool:
    try:
        if field in ("token_in", "token_out"):
            return str(value).upper() in ev.tokens or str(value).lower() in cleaned.lower()
        if field in ("amount", "max_price"):
            return Decimal(str(value)) in ev.numbers
        if field == "fraction":
            return Decimal(str(value)) in ev.shares
        if field == "max_slippage_bps":
            bps = Decimal(int(value))
            return bps in ev.numbers or bps / 100 in ev.numbers
        if field == "deadline_seconds":
            seconds = int(value)
            return any(Decimal(seconds) / u in ev.numbers for u in (1, 60, 3600, 86400))
        if field == "to":
            return _recipient_in(str(value), ev, cleaned)
        return field == "amount_side"
    except (InvalidOperation, ValueError, TypeError):
        return False


def _recipient_in(to: str, ev: Evidence, cleaned: str) -> bool:
    kind, _, rest = to.partition(":") if re.match(r"^(agent|skill|dataset):", to) else ("", "", to)
    lowered = cleaned.lower()
    if kind == "skill":
        words = re.findall(r"[a-z0-9]+|[\u3400-\u9fff]+", rest.lower())
        return bool(words) and all(w in lowered for w in words)
    if not rest.strip():
        return False
    if rest.lower().startswith("0x"):
        return rest.lower() in lowered
    return re.search(rf"(?<![\w.-]){re.escape(rest.lower())}(?![\w-])", ev.text) is not None


def _side_from_text(kept: dict[str, Any], ev: Evidence) -> None:
    """The side of a swap amount is what the sentence writes next to the number: '2 WETH' with
    WETH bought is an output amount, whatever the model said."""
    if kept["action"] != "swap" or kept.get("amount") is None:
        return
    unit = ev.units_of.get(Decimal(str(kept["amount"])))
    if unit is not None and unit == kept.get("token_in"):
        kept["amount_side"] = "in"
    elif unit is not None and unit == kept.get("token_out"):
        kept["amount_side"] = "out"


# ---- the same checks for both parsers ---------------------------------------------------------
def check_context(intent: Intent, context: Context) -> None:
    """Tokens known here, recipients that are wallets here (or addresses, or agents)."""
    if context.tokens is not None:
        for symbol in (intent.token_in, intent.token_out):
            if symbol and not symbol.startswith("0x") and symbol not in context.tokens:
                known = ", ".join(sorted(context.tokens))
                raise UnknownTokenError(
                    f"unknown token {symbol!r}; known tokens: {known}", token=symbol
                )
    to = intent.to
    if intent.action != "send" or to is None or to.startswith("0x") or context.wallets is None:
        return
    if to in context.wallets:
        return
    partial = {k: v for k, v in intent.model_dump().items() if v is not None and k != "to"}
    wallets = ", ".join(sorted(context.wallets)) or "none yet"
    if context.tokens is not None and to.upper() in context.tokens:
        question = (
            f"{to!r} is a token, not a wallet: to swap into {to.upper()} say 'swap ... for "
            f"{to.upper()}'; otherwise, who should receive it? (a wallet name or a 0x address)"
        )
    else:
        question = (
            f"There is no wallet named {to!r} here (wallets: {wallets}): who should receive it? "
            "(a wallet name or a 0x address)"
        )
    raise NeedsClarification(question, missing=["to"], partial=partial, question=question)
