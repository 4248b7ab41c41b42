"""Chat requests and completions: what a language model is asked and what it answered (pure data).

``ChatRequest.from_openai(body)`` reads an OpenAI ``/v1/chat/completions`` body and refuses
what this layer cannot honour exactly, with a typed error, before any work:

- ``BadMessages``: ``messages`` is not a non-empty list of ``{"role": "system" | "user" |
  "assistant", "content": text}`` (text parts are joined), or is too long in characters;
- ``MaxTokensOutOfRange``: ``max_tokens`` (or ``max_completion_tokens``) not in 1..limit;
- ``BadSamplingParameter``: a sampling parameter out of its range, an unsupported option
  (``n`` > 1, tools, logit bias, penalties), or a ``response_format`` that is not ``text``,
  ``json_object`` or ``json_schema`` with an object schema.

Every sampling parameter is explicit in ``Sampling`` (the runtime's own defaults never apply):
real-valued ones are held in millionths (``temperature_e6`` ...), so that what runs, what a
receipt signs and what a validator re-runs are the same numbers exactly. A request without a
seed gets a random one, recorded like the rest.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from agentbazaar.models.errors import BadMessages, BadSamplingParameter, MaxTokensOutOfRange

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")
FinishReason = Literal["stop", "length", "cancelled"]
MAX_MESSAGES = 64
MAX_PROMPT_CHARS = 32_000
DEFAULT_MAX_TOKENS = 256
MAX_SEED = 2**32 - 2  # 2**32 - 1 is the runtime's "random seed"
_E6 = 1_000_000
# accepted and ignored: they change nothing in the output
_INERT = frozenset({"model", "stream", "stream_options", "user", "metadata", "store"})
_NEUTRAL = {"n": 1, "presence_penalty": 0, "frequency_penalty": 0, "logprobs": False}


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def to_json(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Sampling:
    """Every sampling parameter, explicit. Reals are millionths (exact in receipts)."""

    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature_e6: int = 0  # 0: greedy (argmax), the top-k/p/min-p filters do not matter
    top_k: int = 40  # 0: off
    top_p_e6: int = _E6  # 1.0: off
    min_p_e6: int = 0  # 0.0: off
    seed: int = 0

    @property
    def temperature(self) -> float:
        return self.temperature_e6 / _E6

    @property
    def top_p(self) -> float:
        return self.top_p_e6 / _E6

    @property
    def min_p(self) -> float:
        return self.min_p_e6 / _E6

    def to_json(self) -> dict[str, int]:
        return {
            "max_tokens": self.max_tokens,
            "temperature_e6": self.temperature_e6,
            "top_k": self.top_k,
            "top_p_e6": self.top_p_e6,
            "min_p_e6": self.min_p_e6,
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, data: object) -> Sampling:
        if not isinstance(data, dict) or set(data) != set(cls().to_json()):
            raise BadSamplingParameter(f"sampling must have exactly {sorted(cls().to_json())}")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
            raise BadSamplingParameter("sampling values are integers")
        return cls(**data).checked()

    def checked(self, max_tokens_limit: int = 1 << 20) -> Sampling:
        """Self, or ``BadSamplingParameter`` / ``MaxTokensOutOfRange`` naming the bad value."""
        if not 1 <= self.max_tokens <= max_tokens_limit:
            raise MaxTokensOutOfRange(
                f"max_tokens must be between 1 and {max_tokens_limit}, not {self.max_tokens}",
                max_tokens=self.max_tokens,
                limit=max_tokens_limit,
            )
        for name, value, low, high in (
            ("temperature", self.temperature_e6, 0, 2 * _E6),
            ("top_k", self.top_k, 0, 1000),
            ("top_p", self.top_p_e6, 1, _E6),
            ("min_p", self.min_p_e6, 0, _E6 - 1),
            ("seed", self.seed, 0, MAX_SEED),
        ):
            if not low <= value <= high:
                raise BadSamplingParameter(f"{name} is out of range", parameter=name)
        return self


@dataclass(frozen=True)
class ChatRequest:
    """Messages, an optional JSON schema the answer must follow, and the sampling."""

    messages: tuple[Message, ...]
    sampling: Sampling = field(default_factory=Sampling)
    response_format: dict[str, Any] | None = None  # {"type": "json_object"|"json_schema", ...}

    def __post_init__(self) -> None:
        check_messages([m.to_json() for m in self.messages])
        self.sampling.checked()
        if self.response_format is not None:
            _response_format(self.response_format)

    @classmethod
    def chat(
        cls,
        messages: list[dict[str, Any]],
        *,
        schema: dict[str, Any] | None = None,
        **sampling: Any,
    ) -> ChatRequest:
        """A request from plain Python: ``ChatRequest.chat(msgs, schema=S, max_tokens=64,
        temperature=0, seed=1)`` (reals as floats, rounded to millionths)."""
        body: dict[str, Any] = {"messages": messages, **sampling}
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema},
            }
        return cls.from_openai(body)

    @classmethod
    def from_openai(cls, body: object, *, max_tokens_limit: int = 1 << 20) -> ChatRequest:
        if not isinstance(body, dict):
            raise BadMessages("a chat completion request is a JSON object with messages")
        _refuse_unsupported(body)
        messages = tuple(Message(**m) for m in check_messages(body.get("messages")))
        sampling = _sampling(body).checked(max_tokens_limit)
        fmt = body.get("response_format")
        fmt = _response_format(fmt) if fmt is not None else None
        return cls(messages, sampling, None if fmt == {"type": "text"} else fmt)

    def with_max_tokens(self, max_tokens: int) -> ChatRequest:
        return replace(self, sampling=replace(self.sampling, max_tokens=max_tokens))

    def prompt_json(self) -> dict[str, Any]:
        """What the prompt is (the receipt's prompt hash covers it): messages and format."""
        return {
            "messages": [m.to_json() for m in self.messages],
            "response_format": self.response_format,
        }


@dataclass(frozen=True)
class Completion:
    """What the model produced: the text, the ids of the tokens generated (the end-of-turn
    token included when the model produced it), and the counts a price is computed from."""

    text: str
    token_ids: tuple[int, ...]
    prompt_tokens: int
    finish_reason: FinishReason
    prompt_ms: float = 0.0
    generation_ms: float = 0.0

    @property
    def completion_tokens(self) -> int:
        return len(self.token_ids)


def check_messages(messages: object) -> list[dict[str, Any]]:
    """Normalised messages (``role``, ``content`` text) or ``BadMessages``."""
    if not isinstance(messages, list | tuple) or not messages:
        raise BadMessages("messages must be a non-empty list of {role, content} objects")
    if len(messages) > MAX_MESSAGES:
        raise BadMessages(f"{len(messages)} messages; at most {MAX_MESSAGES}")
    out, total = [], 0
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) - {"role", "content", "name"}:
            raise BadMessages(f"message {index} must be an object with role and content")
        role, content = message.get("role"), _text(message.get("content"), index)
        if role not in ROLES:
            raise BadMessages(f"message {index} has role {role!r}; one of {', '.join(ROLES)}")
        total += len(content)
        out.append({"role": role, "content": content})
    if total > MAX_PROMPT_CHARS:
        raise BadMessages(f"the messages hold {total} characters; at most {MAX_PROMPT_CHARS}")
    if all(m["role"] == "system" for m in out):
        raise BadMessages("messages need at least one user or assistant message")
    return out


def _text(content: object, index: int) -> str:
    if isinstance(content, list):  # OpenAI content parts: text only
        if not all(
            isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
            for p in content
        ):
            raise BadMessages(f"message {index}: only text content parts are supported")
        content = "".join(p["text"] for p in content)
    if not isinstance(content, str):
        raise BadMessages(f"message {index} content must be text")
    if "\x00" in content:
        raise BadMessages(f"message {index} contains a NUL character")
    return content


def _refuse_unsupported(body: dict[str, Any]) -> None:
    known = _INERT | set(_NEUTRAL) | {"messages", "response_format", "seed", "top_k"}
    known |= {"max_tokens", "max_completion_tokens", "temperature", "top_p", "min_p"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise BadSamplingParameter(f"unsupported request fields: {', '.join(unknown)}")
    for name, neutral in _NEUTRAL.items():
        if name in body and body[name] not in (neutral, None):
            raise BadSamplingParameter(f"{name} other than {neutral!r} is not supported")


def _sampling(body: dict[str, Any]) -> Sampling:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    seed = body.get("seed")
    return Sampling(
        max_tokens=DEFAULT_MAX_TOKENS if max_tokens is None else _int(max_tokens, "max_tokens"),
        temperature_e6=_e6(body.get("temperature", 0.0), "temperature"),
        top_k=_int(body.get("top_k", 40), "top_k"),
        top_p_e6=_e6(body.get("top_p", 1.0), "top_p"),
        min_p_e6=_e6(body.get("min_p", 0.0), "min_p"),
        seed=secrets.randbelow(MAX_SEED + 1) if seed is None else _int(seed, "seed"),
    )


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        error = MaxTokensOutOfRange if name == "max_tokens" else BadSamplingParameter
        raise error(f"{name} must be an integer", parameter=name)
    return value


def _e6(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise BadSamplingParameter(f"{name} must be a number", parameter=name)
    if abs(value) > 1e6:
        raise BadSamplingParameter(f"{name} is out of range", parameter=name)
    return round(value * _E6)


def _response_format(fmt: object) -> dict[str, Any]:
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise BadSamplingParameter(
            "response_format must be {type: text | json_object | json_schema}"
        )
    if fmt["type"] == "text":
        return {"type": "text"}
    if fmt["type"] == "json_object":
        schema = fmt.get("schema")
        return {"type": "json_object", **({"schema": _schema(schema)} if schema else {})}
    inner = fmt.get("json_schema")
    if not isinstance(inner, dict) or not isinstance(inner.get("schema"), dict):
        raise BadSamplingParameter("response_format json_schema needs json_schema.schema")
    name = inner.get("name", "answer")
    if not isinstance(name, str) or not name:
        raise BadSamplingParameter("response_format json_schema.name must be text")
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": _schema(inner["schema"])},
    }


def _schema(schema: object) -> dict[str, Any]:
    if not isinstance(schema, dict) or not schema:
        raise BadSamplingParameter("a JSON schema must be a non-empty object")
    return schema
