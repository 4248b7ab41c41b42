"""The deterministic parser over the phrasing corpus (tests/data/intents.jsonl), the stable JSON
keys, the shared validation, and robustness on arbitrary text."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agentbazaar.errors import IntentError
from agentbazaar.intents import STABLE_KEYS, Intent, IntentParseError, parse_intent

CORPUS = Path(__file__).resolve().parents[1] / "data" / "intents.jsonl"
ROWS: list[dict[str, Any]] = [json.loads(line) for line in CORPUS.read_text().splitlines()]


def test_corpus_is_large_and_covers_every_action_and_refusals() -> None:
    assert len(ROWS) >= 300
    actions = {row["expect"]["action"] for row in ROWS if "expect" in row}
    assert actions == {"swap", "send", "pay", "hire", "buy_data", "balance"}
    assert sum("refuse" in row for row in ROWS) >= 30


@pytest.mark.parametrize("row", ROWS, ids=[f"{i}" for i in range(len(ROWS))])
def test_corpus_phrasing(row: dict[str, Any]) -> None:
    if "refuse" in row:
        with pytest.raises(IntentParseError) as info:
            parse_intent(row["text"])
        assert row["refuse"] in str(info.value)
        assert isinstance(info.value, IntentError)
        return
    intent = parse_intent(row["text"])
    assert intent.model_dump(exclude_none=True) == row["expect"]


def test_stable_json_has_exactly_the_documented_keys() -> None:
    intent = parse_intent("buy 0.5 WETH with USDC with at most 0.5% slippage")
    stable = intent.stable()
    assert tuple(stable) == STABLE_KEYS
    assert stable == {
        "action": "swap",
        "amount": "0.5",
        "amount_side": "out",
        "token_in": "USDC",
        "token_out": "WETH",
        "to": None,
        "max_slippage_bps": 50,
        "max_price": None,
    }
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


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_any_text_gives_an_intent_or_a_clear_refusal(text: str) -> None:
    try:
        intent = parse_intent(text)
    except IntentParseError as exc:
        assert str(exc)
        return
    assert intent.action in {"swap", "send", "pay", "hire", "buy_data", "balance"}
