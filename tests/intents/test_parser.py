"""The deterministic parser (the fast path) over the phrasing corpus (tests/data/intents.jsonl
in English, tests/data/intents_zh.jsonl in Simplified and Traditional Chinese): each sentence
gives exactly its expected intent, its question or its refusal; the sentences left to the model
are handed over (never answered wrongly). Numbers written in words or in Chinese numerals are
exact, whatever the number; the stable JSON carries every field."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agentbazaar.errors import IntentError, NeedsClarification
from agentbazaar.intents import (
    STABLE_KEYS,
    Intent,
    IntentParseError,
    IntentRefused,
    parse_intent,
)

DATA = Path(__file__).resolve().parents[1] / "data"
ROWS: list[dict[str, Any]] = [
    json.loads(line)
    for name in ("intents.jsonl", "intents_zh.jsonl")
    for line in (DATA / name).read_text().splitlines()
]


def test_corpus_is_large_and_covers_every_action_questions_refusals_and_chinese() -> None:
    assert len(ROWS) >= 700
    actions = {row["expect"]["action"] for row in ROWS if "expect" in row}
    assert actions == {"swap", "send", "pay", "hire", "buy_data", "balance"}
    assert sum("refuse" in row for row in ROWS) >= 70
    assert sum("ask" in row for row in ROWS) >= 40
    chinese = [row for row in ROWS if any("\u4e00" <= c <= "\u9fff" for c in row["text"])]
    assert len(chinese) >= 120
    traditional = [row for row in chinese if any(c in row["text"] for c in "換轉給發買賣點個萬兩")]
    assert len(traditional) >= 20


@pytest.mark.parametrize("row", ROWS, ids=[f"{i}" for i in range(len(ROWS))])
def test_corpus_phrasing(row: dict[str, Any]) -> None:
    text = row["text"]
    if "refuse" in row:
        with pytest.raises(IntentParseError) as info:
            parse_intent(text)
        assert row["refuse"] in str(info.value)
        assert isinstance(info.value, IntentError)
    elif "ask" in row:
        with pytest.raises(NeedsClarification) as asked:
            parse_intent(text)
        assert asked.value.missing == row["ask"]
        assert asked.value.question and asked.value.partial.get("action")
        assert json.loads(json.dumps(asked.value.to_dict()))["partial"] == asked.value.partial
    elif row.get("fast") is False:
        with pytest.raises(IntentParseError) as handed:
            parse_intent(text)
        assert not isinstance(handed.value, IntentRefused)
    else:
        assert parse_intent(text).model_dump(exclude_none=True) == row["expect"]


def test_stable_json_has_every_field_fraction_and_deadline_included() -> None:
    stable = parse_intent("sell half my WETH for USDC within 10 minutes").stable()
    assert tuple(stable) == STABLE_KEYS
    assert stable == {
        "action": "swap",
        "amount": None,
        "amount_side": None,
        "fraction": "0.5",
        "token_in": "WETH",
        "token_out": "USDC",
        "to": None,
        "max_slippage_bps": None,
        "max_price": None,
        "deadline_seconds": 600,
    }
    assert set(STABLE_KEYS) == set(Intent.model_fields)
    assert json.loads(json.dumps(stable)) == stable


@pytest.mark.parametrize(
    "payload",
    [
        {"action": "swap", "amount": "1", "token_in": "USDC", "token_out": "WETH"},  # no side
        {"action": "swap", "amount": "1", "amount_side": "in", "token_in": "USDC"},
        {"action": "send", "amount": "1", "token_in": "USDC", "to": "agent:7"},
        {"action": "pay", "amount": "1", "token_in": "USDC", "to": "bob"},
        {"action": "swap", "amount": "-1", "amount_side": "in", "token_in": "A", "token_out": "B"},
        {"action": "swap", "amount": 1.5, "amount_side": "in", "token_in": "A", "token_out": "B"},
        {"action": "balance", "amount": "3"},
        {"action": "launch_rocket"},
        {"action": "balance", "surprise": True},
        {"action": "hire", "to": "skill:x", "max_slippage_bps": 20_000},
    ],
)
def test_validation_refuses_inconsistent_intents(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Intent.model_validate(payload)


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**12), places=6))
def test_amounts_with_thousands_separators_are_exact(value: Decimal) -> None:
    whole, _, frac = f"{value:f}".partition(".")
    grouped = f"{int(whole):,}" + (f".{frac}" if frac else "")
    intent = parse_intent(f"swap {grouped} USDC for WETH")
    assert Decimal(intent.amount or "0") == value
    assert intent.amount == format(value.normalize(), "f")


# ---- numbers in words: an independent writer, the parser must read back the same number ----
_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
_ONES += "fifteen sixteen seventeen eighteen nineteen"
ONES = _ONES.split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def english(n: int, *, hyphen: bool, conj: bool) -> str:
    """Numbers as people write them: 'one hundred and twenty-five', 'two thousand three'."""
    if n < 20:
        return ONES[n]
    if n < 100:
        tail = "" if n % 10 == 0 else ("-" if hyphen else " ") + ONES[n % 10]
        return TENS[n // 10] + tail
    for size, word in ((10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            head = english(n // size, hyphen=hyphen, conj=conj) + " " + word
            rest = n % size
            if rest == 0:
                return head
            glue = " and " if conj and rest < 100 else " "
            return head + glue + english(rest, hyphen=hyphen, conj=conj)
    raise AssertionError(n)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 999_999_999), st.booleans(), st.booleans())
@example(100_000, False, False)  # "one hundred thousand": a scale after "hundred"
@example(205_300_000, True, True)
def test_amounts_in_english_words_are_exact(n: int, hyphen: bool, conj: bool) -> None:
    words = english(n, hyphen=hyphen, conj=conj)
    intent = parse_intent(f"swap {words} USDC for WETH")
    assert intent.amount == str(n), words


DIGITS = "零一二三四五六七八九"


def chinese(n: int, *, liang: bool) -> str:
    """Chinese numerals, written the standard way (零 for skipped places, 两 before a scale)."""

    def below_10k(m: int, leading: bool) -> str:
        out, zero = "", False
        for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
            d = m // value % 10
            if d == 0:
                zero = bool(out)
                continue
            if zero:
                out += "零"
                zero = False
            digit = "两" if liang and d == 2 and unit in ("千", "百") else DIGITS[d]
            if unit == "十" and d == 1 and not out and leading:
                digit = ""  # 十五, not 一十五, at the start
            out += digit + unit
        return out

    parts = []
    for value, unit in ((10**8, "亿"), (10**4, "万"), (1, "")):
        chunk = n // value % 10**4 if value < 10**8 else n // value
        if chunk:
            if parts and chunk < 1000:
                parts.append("零")
            parts.append(below_10k(chunk, leading=not parts) + unit)
    return "".join(parts)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 99_999_999), st.booleans())
def test_amounts_in_chinese_numerals_are_exact(n: int, liang: bool) -> None:
    numeral = chinese(n, liang=liang)
    intent = parse_intent(f"把{numeral}个USDC换成WETH")
    assert intent.amount == str(n), numeral


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_any_text_gives_an_intent_a_question_or_a_clear_refusal(text: str) -> None:
    try:
        intent = parse_intent(text)
    except NeedsClarification as exc:
        assert exc.question and exc.missing
        return
    except IntentParseError as exc:
        assert str(exc)
        return
    assert intent.action in {"swap", "send", "pay", "hire", "buy_data", "balance"}
