"""The real 0.5B model: JSON-schema answers, token ids, streaming, reproducibility, bad input.

One model is loaded for the whole session (``small_model``); prompts are short and max_tokens
small so that every test costs a few seconds of generation.
"""

from __future__ import annotations

import json

import pytest

from agentbazaar.models import (
    ChatRequest,
    LanguageModel,
    MaxTokensOutOfRange,
    PromptTooLong,
)

pytestmark = pytest.mark.generation

SCHEMA = {
    "type": "object",
    "properties": {"colour": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["colour", "n"],
    "additionalProperties": False,
}
MESSAGES = [
    {"role": "system", "content": "You answer in JSON."},
    {"role": "user", "content": "Name a colour and a number."},
]


def _request(max_tokens: int = 24, **kw: object) -> ChatRequest:
    return ChatRequest.chat(MESSAGES, schema=SCHEMA, max_tokens=max_tokens, seed=1, **kw)


def test_a_schema_constrained_answer_with_its_token_ids(small_model: LanguageModel) -> None:
    answer = small_model.complete(_request(temperature=0))
    data = json.loads(answer.text)
    assert set(data) == {"colour", "n"} and isinstance(data["n"], int)
    assert answer.finish_reason == "stop"
    assert answer.completion_tokens == len(answer.token_ids) > 3
    assert answer.prompt_tokens == small_model.count_prompt_tokens(_request())


def test_the_same_request_gives_the_same_tokens_streamed_or_not(
    small_model: LanguageModel,
) -> None:
    request = _request(max_tokens=16, temperature=0.8, top_p=0.95)
    whole = small_model.complete(request)
    with small_model.stream(request) as stream:
        pieces = list(stream)
    streamed = stream.completion()
    assert streamed.prompt_tokens == whole.prompt_tokens and streamed.finish_reason == "stop"
    assert streamed.token_ids == whole.token_ids == small_model.complete(request).token_ids
    assert tuple(t for p in pieces for t in p.token_ids) == whole.token_ids
    assert "".join(p.text for p in pieces) == whole.text


def test_closing_a_stream_stops_it_with_the_tokens_delivered(small_model: LanguageModel) -> None:
    stream = small_model.stream(_request(temperature=0))
    taken = []
    for piece in stream:
        taken.extend(piece.token_ids)
        if len(taken) >= 3:
            break
    stream.close()
    done = stream.completion(delivered=len(taken))
    assert done.finish_reason == "cancelled" and list(done.token_ids) == taken
    assert done.prompt_tokens == small_model.count_prompt_tokens(_request())


def test_a_prompt_over_the_window_and_max_tokens_over_the_limit_are_refused(
    small_model: LanguageModel,
) -> None:
    too_long = ChatRequest.chat([{"role": "user", "content": "word " * 6000}], max_tokens=4)
    with pytest.raises(PromptTooLong) as caught:
        small_model.complete(too_long)
    assert caught.value.fields["limit"] == small_model.config.context_size
    with pytest.raises(PromptTooLong):
        small_model.count_prompt_tokens(too_long)
    with pytest.raises(MaxTokensOutOfRange):
        small_model.complete(_request(max_tokens=small_model.max_tokens_limit + 1))
