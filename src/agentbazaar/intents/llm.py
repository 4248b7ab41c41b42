"""Language models behind the ``Extractor`` seam of ``understand``: a sentence, the JSON schema
its answer must follow, the few-shot examples and the instructions -> the JSON answer.

- ``LocalModel``: the model layer's language model on this CPU (``agentbazaar.models``:
  Qwen2.5-Coder GGUF on xllamacpp), temperature 0, output constrained to the schema, the fixed
  prompt's prefix cached by the runtime so that each request reads only the sentence.
- ``Endpoint``: any OpenAI-compatible ``/v1/chat/completions`` (llama.cpp server, vLLM,
  Ollama's ``/v1``) with ``response_format`` ``json_schema``.

Either answer is only a proposal: ``understand`` holds it to the sentence and validates it like
the deterministic parser's. A transport error or an answer that is not JSON is an
``IntentParseError``; nothing is guessed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from agentbazaar.intents.errors import IntentParseError
from agentbazaar.intents.model import Intent
from agentbazaar.intents.prompt import EXAMPLES, INSTRUCTIONS, SCHEMA, Example, messages
from agentbazaar.intents.understand import Context, Understood, understand

TIMEOUT_SECONDS = 60.0
MAX_ANSWER_TOKENS = 96


def _json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise IntentParseError(f"{source} did not answer with JSON", parser="model") from exc


class LocalModel:
    """The local language model (``agentbazaar.models``), loaded once per process; ``model``:
    a ``LanguageModel`` the caller already holds (its size is then the model's own)."""

    def __init__(
        self, size: str = "1.5b", *, threads: int | None = None, model: Any = None
    ) -> None:
        from agentbazaar.models import QWEN_CODER_0_5B, QWEN_CODER_1_5B

        spec = {"0.5b": QWEN_CODER_0_5B, "1.5b": QWEN_CODER_1_5B}.get(size.lower())
        if spec is None:
            raise IntentParseError(f"unknown model size {size!r}: 0.5b or 1.5b")
        self.spec, self.threads, self.held = spec, threads, model
        self.name = f"local:{spec.model_id if model is None else model.model_id}"

    def load(self) -> None:
        """Load the weights and read the fixed prompt once (the runtime caches its prefix)."""
        self("ok", SCHEMA, EXAMPLES, INSTRUCTIONS)

    def _model(self) -> Any:
        from agentbazaar.models import LanguageModel, shared_language_model

        if self.held is not None:
            return self.held
        if self.threads is None:
            return shared_language_model(self.spec)
        return _by_threads(self.spec, self.threads, LanguageModel)

    def __call__(
        self,
        sentence: str,
        schema: Mapping[str, Any],
        examples: Sequence[Example],
        instructions: str,
    ) -> Any:
        from agentbazaar.models import ChatRequest

        request = ChatRequest.chat(
            messages(sentence, examples, instructions),
            schema=dict(schema),
            max_tokens=MAX_ANSWER_TOKENS,
            temperature=0,
            seed=0,
        )
        answer = self._model().complete(request, cache_prompt=True)
        return _json(answer.text, self.name)


_BY_THREADS: dict[tuple[str, int], Any] = {}


def _by_threads(spec: Any, threads: int, factory: Any) -> Any:
    key = (spec.model_id, threads)
    if key not in _BY_THREADS:
        _BY_THREADS[key] = factory(spec, threads=threads)
    return _BY_THREADS[key]


class Endpoint:
    """An OpenAI-compatible chat endpoint at ``url`` (its ``/v1`` base)."""

    def __init__(self, url: str, model: str = "default", client: httpx.Client | None = None):
        self.url = url.rstrip("/") + "/chat/completions"
        self.model = model
        self.client = client
        self.name = f"endpoint:{url}"

    def body(
        self,
        sentence: str,
        schema: Mapping[str, Any],
        examples: Sequence[Example],
        instructions: str,
    ) -> dict[str, Any]:
        return {
            "model": self.model,
            "temperature": 0,
            "max_tokens": MAX_ANSWER_TOKENS,
            "messages": messages(sentence, examples, instructions),
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "intent", "strict": True, "schema": dict(schema)},
            },
        }

    def __call__(
        self,
        sentence: str,
        schema: Mapping[str, Any],
        examples: Sequence[Example],
        instructions: str,
    ) -> Any:
        body = self.body(sentence, schema, examples, instructions)
        try:
            if self.client is None:
                with httpx.Client(timeout=TIMEOUT_SECONDS) as own:
                    response = own.post(self.url, json=body)
            else:
                response = self.client.post(self.url, json=body)
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
        except httpx.HTTPError as exc:
            raise IntentParseError(
                f"the LLM endpoint {self.url} failed: {exc}", url=self.url
            ) from exc
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise IntentParseError(
                f"the LLM endpoint {self.url} did not answer with a chat completion", url=self.url
            ) from exc
        return _json(content if isinstance(content, str) else "", f"the LLM endpoint {self.url}")


def parse_with_llm(
    sentence: str,
    *,
    url: str,
    model: str,
    client: httpx.Client | None = None,
    context: Context | None = None,
) -> Intent:
    """``understand`` with an OpenAI-compatible endpoint as the model path."""
    understood: Understood = understand(
        sentence, extractor=Endpoint(url, model, client), context=context
    )
    return understood.intent
