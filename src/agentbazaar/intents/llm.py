"""Optional LLM parser: any OpenAI-compatible chat endpoint (llama.cpp server, vLLM, Ollama's
``/v1``), constrained to the Intent JSON schema, validated exactly like the built-in parser's.

The request is a ``POST {url}/chat/completions`` with ``response_format`` of type
``json_schema`` (the schema below, ``strict``), temperature 0. The model answers either
``{"intent": {...}, "refusal": null}`` or ``{"intent": null, "refusal": "why"}``. Whatever comes
back goes through ``Intent.model_validate`` (the same checks as ``parse_intent``'s output); a
transport error, a non-JSON answer or an invalid intent is an ``IntentParseError``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import ValidationError

from agentbazaar.intents._errors import IntentParseError
from agentbazaar.intents.model import Intent

SYSTEM_PROMPT = (
    "You turn one request about crypto wallets into JSON. Actions: swap (token_in, token_out, "
    "amount with amount_side 'in' for the amount sold or 'out' for the amount bought, or a "
    "fraction of the balance like '0.5'), send (amount, token_in, to: address or wallet name), "
    "pay (an agent: to is 'agent:<id>'), hire (to is 'skill:<words>', max_price budget in "
    "token_in), buy_data (to is 'dataset:<name>'), balance (optional token_in). Amounts are "
    "decimal strings without separators. Slippage in basis points (0.5% = 50). Never guess: if "
    "anything is unclear, answer with intent null and a short refusal."
)
TIMEOUT_SECONDS = 30.0


def response_schema() -> dict[str, Any]:
    """The JSON schema the endpoint must follow: an Intent or a refusal."""
    intent = Intent.model_json_schema()
    return {
        "type": "object",
        "properties": {
            "intent": {"anyOf": [intent, {"type": "null"}]},
            "refusal": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["intent", "refusal"],
        "additionalProperties": False,
    }


def request_body(sentence: str, model: str) -> dict[str, Any]:
    return {
        "model": model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": sentence},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "intent", "strict": True, "schema": response_schema()},
        },
    }


def parse_with_llm(
    sentence: str, *, url: str, model: str, client: httpx.Client | None = None
) -> Intent:
    """Ask the endpoint at ``url`` (its ``/v1`` base) to parse ``sentence``; validate the answer."""
    if not sentence.strip():
        raise IntentParseError("empty request: say what to do, e.g. 'swap 100 USDC for WETH'")
    endpoint = url.rstrip("/") + "/chat/completions"
    try:
        if client is None:
            with httpx.Client(timeout=TIMEOUT_SECONDS) as own:
                response = own.post(endpoint, json=request_body(sentence, model))
        else:
            response = client.post(endpoint, json=request_body(sentence, model))
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
        answer = json.loads(content)
    except httpx.HTTPError as exc:
        raise IntentParseError(f"the LLM endpoint {endpoint} failed: {exc}", url=endpoint) from exc
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise IntentParseError(
            f"the LLM endpoint {endpoint} did not answer with an intent as JSON", url=endpoint
        ) from exc
    return _validate(answer, sentence)


def _validate(answer: Any, sentence: str) -> Intent:
    if not isinstance(answer, dict):
        raise IntentParseError("the LLM answer is not a JSON object", text=sentence)
    if answer.get("intent") is None:
        reason = answer.get("refusal") or "no reason given"
        raise IntentParseError(f"could not understand {sentence!r}: {reason}", text=sentence)
    try:
        return Intent.model_validate(answer["intent"])
    except ValidationError as exc:
        reason = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise IntentParseError(
            f"the LLM's intent for {sentence!r} is invalid: {reason}", text=sentence
        ) from exc
