"""The fixed prompt of the model path: instructions, few-shot examples and the JSON schema the
answer is constrained to. Fixed, so that the runtime caches its prefix (only the sentence is read
per request) and so that accuracy can be measured on sentences the prompt never saw
(``EXAMPLES`` are kept out of the measured share of the corpus, see ``benchmarks/intents.py``).

The model only extracts fields. Whether to refuse is decided in code before it runs
(``guard``) and after (``understand.check_grounded``: every value must be in the sentence; a
missing one is asked for); the model has no refusal to give.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

INSTRUCTIONS = """You read one request about a crypto wallet (English or Chinese) and write JSON.
action: swap | send | pay | hire | buy_data | balance | unclear
- swap: token_in is sold, token_out is bought. Either amount with amount_side ("in": the amount \
of token_in to sell; "out": the amount of token_out to buy), or fraction of the token_in balance \
("0.5" for half, "1" for all, "0.25" for 25%).
- send: amount (or fraction) of token_in, to = a wallet name or a 0x address, copied exactly.
- pay: an agent; to = "agent:<id or name>".
- hire: to = "skill:<the task in the user's words>"; a budget is max_price in token_in.
- buy_data: to = "dataset:<name>"; a budget is max_price in token_in.
- balance: token_in if one token is named.
max_slippage_bps: slippage in basis points (1% = 100, 0.5% = 50). deadline_seconds: time limit.
max_price: the most token_in to pay per one token_out.
Amounts are plain decimals ("1500", "0.25"); tokens are upper-case symbols; $, dollars, bucks, \
美元 mean USDC; ether means ETH.
Write only what the request says. Leave out any value it does not give; never invent one."""

Example = tuple[str, dict[str, Any]]
EXAMPLES: tuple[Example, ...] = (
    (
        "swap 100 USDC for WETH",
        {
            "action": "swap",
            "amount": "100",
            "amount_side": "in",
            "token_in": "USDC",
            "token_out": "WETH",
        },
    ),
    (
        "could you grab me 2 WETH? I'll settle in DAI, keep slippage at 1% or under",
        {
            "action": "swap",
            "amount": "2",
            "amount_side": "out",
            "token_in": "DAI",
            "token_out": "WETH",
            "max_slippage_bps": 100,
        },
    ),
    (
        "dump a quarter of my WBTC into USDT before 15 minutes are up",
        {
            "action": "swap",
            "fraction": "0.25",
            "token_in": "WBTC",
            "token_out": "USDT",
            "deadline_seconds": 900,
        },
    ),
    (
        "把一百个USDC转给bob",
        {"action": "send", "amount": "100", "token_in": "USDC", "to": "bob"},
    ),
    (
        "用我三成的USDC换点WETH",
        {"action": "swap", "fraction": "0.3", "token_in": "USDC", "token_out": "WETH"},
    ),
    (
        "tip agent 12 three bucks for the great answer",
        {"action": "pay", "amount": "3", "token_in": "USDC", "to": "agent:12"},
    ),
    (
        "I need someone to summarise a pdf, budget 4 USDC",
        {"action": "hire", "to": "skill:summarise a pdf", "max_price": "4", "token_in": "USDC"},
    ),
    (
        "grab the weather-2024 data for no more than 2 DAI",
        {"action": "buy_data", "to": "dataset:weather-2024", "max_price": "2", "token_in": "DAI"},
    ),
    (
        "trade some USDC for WETH",
        {"action": "swap", "token_in": "USDC", "token_out": "WETH"},
    ),
    (
        "how many DAI are sitting in my account",
        {"action": "balance", "token_in": "DAI"},
    ),
    (
        "what's the weather like",
        {"action": "unclear"},
    ),
)

_DECIMAL = {"type": "string", "pattern": "^[0-9]{1,18}(\\.[0-9]{1,18})?$"}
_SYMBOL = {"type": "string", "pattern": "^([A-Z][A-Z0-9]{0,10}|0x[0-9a-fA-F]{40})$"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"enum": ["swap", "send", "pay", "hire", "buy_data", "balance", "unclear"]},
        "amount": _DECIMAL,
        "amount_side": {"enum": ["in", "out"]},
        "fraction": _DECIMAL,
        "token_in": _SYMBOL,
        "token_out": _SYMBOL,
        "to": {"type": "string", "maxLength": 80},
        "max_slippage_bps": {"type": "integer", "minimum": 0, "maximum": 10000},
        "max_price": _DECIMAL,
        "deadline_seconds": {"type": "integer", "minimum": 1, "maximum": 604800},
    },
    "required": ["action"],
    "additionalProperties": False,
}


def messages(
    sentence: str,
    examples: Sequence[Example] = EXAMPLES,
    instructions: str = INSTRUCTIONS,
) -> list[dict[str, str]]:
    """The chat: instructions, each example as a user turn and its answer, then the sentence."""
    chat = [{"role": "system", "content": instructions}]
    for text, answer in examples:
        chat.append({"role": "user", "content": text})
        chat.append({"role": "assistant", "content": compact(answer)})
    chat.append({"role": "user", "content": sentence})
    return chat


def compact(answer: dict[str, Any]) -> str:
    """JSON as the model writes it (no spaces: fewer tokens to generate)."""
    order = list(SCHEMA["properties"])
    ordered = {k: answer[k] for k in order if k in answer}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)
