"""A verified contract in plain words, from a model that may only restate the facts.

``explain`` gathers the facts (the template's own sentences, the recorded parameters, the state
on chain now). ``in_words(doc, model)`` hands exactly those facts to a language model as JSON
and asks for a few plain sentences; the answer is then checked in code (``check``): every
number (digits or number words), every 0x address, every wallet name and every token symbol in
the prose must appear in the facts. Prose that says anything else is not shown: the template's
own sentences are, with a note saying why. The model adds wording, never a fact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from agentbazaar.authoring import _text
from agentbazaar.authoring.params import Kind, Param
from agentbazaar.errors import InputError, ModelError

MAX_PROSE_TOKENS = 200
INSTRUCTIONS = (
    "You explain a deployed smart contract to someone who does not read code, in two to four "
    "plain sentences. Use only the facts in the JSON you are given. Copy every number, amount, "
    "date, name and address exactly as the facts write it. Add no other number, name, date or "
    "promise, and leave out anything you are unsure of."
)
_SCHEMA = {
    "type": "object",
    "properties": {"explanation": {"type": "string", "maxLength": 900}},
    "required": ["explanation"],
    "additionalProperties": False,
}
_UNITS = (("year", 31_536_000), ("month", 2_592_000), ("week", 604_800), ("day", 86_400),
          ("hour", 3_600), ("minute", 60))  # fmt: skip


def parameters_in_words(
    params: Iterable[Param], values: Mapping[str, Any], name: Callable[[str], str],
    amount: Callable[[int], str],
) -> dict[str, str]:  # fmt: skip
    """Each parameter as a person reads it: names beside addresses, amounts in tokens,
    durations in days or months beside seconds, times as UTC dates beside unix seconds."""
    out: dict[str, str] = {}
    for p in params:
        v = values.get(p.name)
        if v is None or v == []:
            continue
        out[p.name] = _in_words(p, v, name, amount)
    return out


def _in_words(p: Param, v: Any, name: Callable[[str], str], amount: Callable[[int], str]) -> str:
    if p.kind == Kind.ADDRESS:
        return _who(str(v), name)
    if p.kind == Kind.ADDRESSES:
        return ", ".join(_who(str(a), name) for a in v)
    if p.kind == Kind.AMOUNT:
        return amount(int(v))
    if p.kind == Kind.DURATION:
        return f"{_span(int(v))} ({int(v)} seconds)"
    if p.kind == Kind.TIMESTAMP:
        when = datetime.fromtimestamp(int(v), UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"{when} (unix time {int(v)})"
    if p.kind == Kind.BPS:
        return f"{Decimal(int(v)) / 100}%"
    return ", ".join(map(str, v)) if isinstance(v, list) else str(v)


def _who(address: str, name: Callable[[str], str]) -> str:
    called = name(address)
    return address if called == address else f"{called} ({address})"


def _span(seconds: int) -> str:
    for unit, size in _UNITS:
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


# ---- the model's prose, checked -----------------------------------------------------------------
def in_words(doc: Mapping[str, Any], model: Any, *, names: Iterable[str] = ()) -> dict[str, Any]:
    """``{"text", "source": "model" | "template", "note"}``: the model's prose when every
    number, address, name and symbol in it is in the facts, else the template's sentences."""
    template_text = " ".join(doc["facts"])
    if model is None:
        return {"text": template_text, "source": "template", "note": None}
    facts = facts_for_model(doc)
    try:
        prose = ask(model, facts)
    except (ModelError, InputError) as exc:
        note = f"the model could not help ({exc.message}): the template's own words"
        return {"text": template_text, "source": "template", "note": note}
    problems = check(prose, json.dumps(facts, ensure_ascii=False), names)
    if problems:
        note = ("the model's text was not shown: " + "; ".join(problems)
                + ". These are the template's own words")  # fmt: skip
        return {"text": template_text, "source": "template", "note": note, "refused": prose}
    return {"text": prose, "source": "model", "note": None, "model": str(model.model_id)}


def facts_for_model(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "contract": doc["title"],
        "address": doc["address"],
        "parameters": doc.get("parameters_in_words") or doc["params"],
        "facts": list(doc["facts"]),
        "rules that always hold": list(doc["invariants"]),
    }


def ask(model: Any, facts: Mapping[str, Any]) -> str:
    """The model's explanation of ``facts`` (JSON-schema constrained, greedy)."""
    from agentbazaar.models import ChatRequest

    request = ChatRequest.chat(
        [{"role": "system", "content": INSTRUCTIONS},
         {"role": "user", "content": json.dumps(facts, ensure_ascii=False)}],
        schema=_SCHEMA, max_tokens=MAX_PROSE_TOKENS, temperature=0, seed=0,
    )  # fmt: skip
    completion = model.complete(request)
    try:
        text = json.loads(completion.text)["explanation"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError("the model's explanation was cut off or is not JSON") from exc
    return " ".join(str(text).split())


def check(prose: str, facts: str, names: Iterable[str] = ()) -> list[str]:
    """What ``prose`` says that ``facts`` does not: numbers, addresses, names, symbols."""
    if not prose:
        return ["it is empty"]
    problems: list[str] = []
    known = _numbers(facts)
    extra = sorted({format(n, "f") for n in _numbers(prose) if n not in known}, key=len)
    if extra:
        problems.append(f"numbers not in the facts: {', '.join(extra)}")
    lowered = facts.lower()
    addresses = {a for a in re.findall(r"0x[0-9a-fA-F]+", prose) if a.lower() not in lowered}
    if addresses:
        problems.append(f"addresses not in the facts: {', '.join(sorted(addresses))}")
    words = set(re.findall(r"[a-z0-9][\w-]*", prose.lower()))
    said = set(re.findall(r"[a-z0-9][\w-]*", lowered))
    strangers = {n.lower() for n in names} & (words - said)
    strangers |= {s.lower() for s in re.findall(r"\b[A-Z]{2,6}\b", prose) if s.lower() not in said}
    if strangers:
        problems.append(f"names or symbols not in the facts: {', '.join(sorted(strangers))}")
    return problems


def _numbers(text: str) -> set[Decimal]:
    out: set[Decimal] = set()
    for m in re.finditer(r"(?<![\w.])\d[\d,]*(?:\.\d+)?", _text.words_to_digits(text)):
        try:
            out.add(Decimal(m.group(0).rstrip(",").replace(",", "")).normalize())
        except InvalidOperation:
            continue
    return out
