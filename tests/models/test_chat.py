"""Chat requests are validated before any work: typed errors, every sampling value explicit."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentbazaar.errors import InputError
from agentbazaar.models.chat import MAX_PROMPT_CHARS, ChatRequest, Sampling
from agentbazaar.models.errors import BadMessages, BadSamplingParameter, MaxTokensOutOfRange

USER = [{"role": "user", "content": "hello"}]


def test_an_openai_body_becomes_explicit_sampling_in_millionths() -> None:
    request = ChatRequest.from_openai(
        {"model": "x", "messages": USER, "max_tokens": 9, "temperature": 0.7, "top_p": 0.9,
         "seed": 5, "response_format": {"type": "json_schema",
                                        "json_schema": {"name": "a", "schema": {"type": "object"}}}}
    )  # fmt: skip
    assert request.sampling == Sampling(
        max_tokens=9, temperature_e6=700_000, top_k=40, top_p_e6=900_000, min_p_e6=0, seed=5
    )
    assert request.sampling.temperature == 0.7
    assert request.prompt_json()["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert Sampling.from_json(request.sampling.to_json()) == request.sampling


def test_a_request_without_a_seed_gets_one_and_text_format_is_no_format() -> None:
    a = ChatRequest.from_openai({"messages": USER, "response_format": {"type": "text"}})
    assert 0 <= a.sampling.seed < 2**32 - 1 and a.response_format is None


@pytest.mark.parametrize(
    "messages",
    [None, [], "hi", [{"role": "tool", "content": "x"}], [{"role": "user"}],
     [{"role": "user", "content": 5}], [{"role": "user", "content": [{"type": "image_url"}]}],
     [{"role": "system", "content": "only a system prompt"}],
     [{"role": "user", "content": "x" * (MAX_PROMPT_CHARS + 1)}],
     [{"role": "user", "content": "a\x00b"}], [{"role": "user", "content": "x", "extra": 1}]],
)  # fmt: skip
def test_malformed_messages_are_refused(messages: Any) -> None:
    with pytest.raises(BadMessages):
        ChatRequest.from_openai({"messages": messages})


@pytest.mark.parametrize("max_tokens", [0, -1, 5000, "10", True, 1.5])
def test_max_tokens_out_of_range_is_refused(max_tokens: Any) -> None:
    with pytest.raises(MaxTokensOutOfRange):
        ChatRequest.from_openai({"messages": USER, "max_tokens": max_tokens}, max_tokens_limit=4096)


@pytest.mark.parametrize(
    "extra",
    [{"temperature": -0.1}, {"temperature": 2.5}, {"top_p": 0}, {"min_p": 1.0}, {"seed": -1},
     {"seed": 2**32 - 1}, {"top_k": 5000}, {"n": 2}, {"tools": []}, {"logit_bias": {}},
     {"presence_penalty": 0.5}, {"temperature": float("nan")},
     {"response_format": {"type": "json_schema"}}, {"response_format": {"type": "xml"}}],
)  # fmt: skip
def test_unsupported_or_out_of_range_sampling_is_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(BadSamplingParameter):
        ChatRequest.from_openai({"messages": USER, **extra})


@given(
    st.recursive(
        st.none() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
        max_leaves=8,
    )
)
def test_any_json_body_is_a_request_or_a_typed_refusal(body: Any) -> None:  # fmt: skip
    try:
        ChatRequest.from_openai(body)
    except InputError:
        pass
