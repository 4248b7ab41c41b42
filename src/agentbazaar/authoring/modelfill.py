"""A local language model that chooses among the fixed templates and fills one's schema.

    from agentbazaar.authoring import ModelFiller, fill
    filled = fill("bob gets 1,000 USDC unlocking over a year, nothing for 3 months", ctx,
                  filler=ModelFiller())

One fixed prompt (instructions, the template catalogue with every parameter, one worked example
per template, all derived from the templates themselves), so the runtime caches its prefix and
only the sentence is read per request. The answer is constrained by a JSON schema: an object
``{"template": <one of the templates or "none">, "params": <that template's parameters, each a
string (or a list of strings) as written, left out when the sentence does not say it>}``; when
the template is already known the schema admits only that template's branch. The model never
writes code: it can only name a template and copy values into its slots.

What comes back is not trusted: ``extract.fill`` checks every value against the sentence
(``grounding``), resolves names through the address book and validates the result exactly as it
does the deterministic parser's; the sentence itself was screened (``guard``) before the model
saw it. The model (Qwen2.5-Coder, ``agentbazaar.models``) loads lazily on the first question,
once per process; a missing model raises ``ModelUnavailable`` from that question.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentbazaar.authoring.params import Kind, Param
from agentbazaar.authoring.template import Template
from agentbazaar.authoring.templates import TEMPLATES
from agentbazaar.errors import ModelError

NONE = "none"
MAX_ANSWER_TOKENS = 320
MAX_VALUE_CHARS = 64
INSTRUCTIONS = """You turn one sentence that describes a smart contract into JSON for one of \
the fixed contract templates below. You never write code; you only pick a template and copy \
values from the sentence into its parameters.
Rules:
- Copy each value exactly as the sentence writes it: wallet names (bob), 0x addresses, token \
symbols (USDC), amounts (1,000), durations (12 months, 7 days), percentages (10%).
- Leave out every parameter the sentence does not give. Never invent a name, a number or a \
duration.
- "me", "my" or "I" is the wallet the sentence speaks for: write "me".
- If no template fits the sentence, answer {"template": "none"}.
Templates:"""


@dataclass(frozen=True)
class Answer:
    sentence: str
    template: str | None  # None: the model found no template for the sentence
    params: dict[str, Any]
    seconds: float
    prompt_tokens: int
    completion_tokens: int


class ModelFiller:
    """``Filler`` and ``Chooser`` over a ``models.LanguageModel`` (see the module doc)."""

    source = "model"

    def __init__(
        self,
        model: Any = None,
        *,
        size: str = "1.5b",
        seed: int = 0,
        cache_prompt: bool = True,
    ) -> None:
        self._model = model
        self.size = size
        self.seed = seed
        self.cache_prompt = cache_prompt
        self.answers: list[Answer] = []  # every question asked, in order (for reports)
        self._cache: dict[tuple[str, str | None], Answer] = {}

    @property
    def model(self) -> Any:
        if self._model is None:
            from agentbazaar.models import QWEN_CODER_0_5B, QWEN_CODER_1_5B, shared_language_model

            spec = {"0.5b": QWEN_CODER_0_5B, "1.5b": QWEN_CODER_1_5B}.get(self.size.lower())
            if spec is None:
                raise ModelError(f"no model of size {self.size!r}: 0.5b or 1.5b")
            self._model = shared_language_model(spec)
        return self._model

    @property
    def model_id(self) -> str:
        return str(self.model.model_id)

    # ---- the Chooser and Filler protocols ------------------------------------------------------
    def choose(self, sentence: str) -> str | None:
        """The template the model reads ``sentence`` as, or None ("none")."""
        return self.ask(sentence, None).template

    def __call__(
        self, sentence: str, template: str, schema: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        answer = self.ask(sentence, template)
        return answer.params if answer.template == template else {}

    # ---- asking ---------------------------------------------------------------------------------
    def ask(self, sentence: str, template: str | None) -> Answer:
        """One constrained answer (cached per sentence: choosing also fills)."""
        cached = self._cache.get((sentence, template))
        if cached is not None:
            return cached
        from agentbazaar.models import ChatRequest

        request = ChatRequest.chat(
            messages(sentence),
            schema=answer_schema(template),
            max_tokens=MAX_ANSWER_TOKENS,
            temperature=0,
            seed=self.seed,
        )
        started = time.perf_counter()
        completion = self.model.complete(request, cache_prompt=self.cache_prompt)
        answer = _parse(sentence, completion, template, time.perf_counter() - started)
        self.answers.append(answer)
        self._cache[(sentence, template)] = answer
        if answer.template is not None:
            self._cache[(sentence, answer.template)] = answer
        return answer

    def report(self, sentence: str | None = None) -> list[dict[str, Any]]:
        """The questions asked (about ``sentence`` only, when given): for reports and JSON."""
        return [
            {"model": self.model_id, "template": a.template, "params": a.params,
             "seconds": round(a.seconds, 3), "prompt_tokens": a.prompt_tokens,
             "completion_tokens": a.completion_tokens}
            for a in self.answers if sentence is None or a.sentence == sentence
        ]  # fmt: skip


def _parse(sentence: str, completion: Any, template: str | None, seconds: float) -> Answer:
    text = str(completion.text)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ModelError(f"the model's answer is not JSON (cut at {len(text)} chars)") from exc
    name = data.get("template") if isinstance(data, dict) else None
    params = data.get("params") if isinstance(data, dict) else None
    if name == NONE or name not in TEMPLATES or (template is not None and name != template):
        name, params = None, None
    return Answer(
        sentence,
        None if name is None else str(name),
        dict(params) if isinstance(params, dict) else {},
        seconds,
        int(completion.prompt_tokens),
        int(completion.completion_tokens),
    )


# ---- the fixed prompt ------------------------------------------------------------------------------
def messages(sentence: str) -> list[dict[str, str]]:
    """System prompt, one worked example per template (user, assistant), then the sentence."""
    out = [{"role": "system", "content": system_prompt()}]
    for example, answer in worked_examples():
        out.append({"role": "user", "content": example})
        out.append({"role": "assistant", "content": json.dumps(answer)})
    out.append({"role": "user", "content": sentence})
    return out


def system_prompt() -> str:
    lines = [INSTRUCTIONS]
    for t in TEMPLATES.values():
        params = "; ".join(f"{p.name}: {p.description}" for p in t.params)
        lines.append(f"- {t.name}: {t.summary} Parameters: {params}.")
    return "\n".join(lines)


_NONE_EXAMPLE = "lend 100 USDC to bob at 5% interest"


def worked_examples() -> list[tuple[str, dict[str, Any]]]:
    """Each template's first example, answered with what its own parser reads (so the prompt
    cannot drift from the templates), and one sentence no template covers."""
    out: list[tuple[str, dict[str, Any]]] = []
    for t in TEMPLATES.values():
        sentence = t.examples[0]
        raw = t.parse(sentence) or {}
        out.append((sentence, {"template": t.name, "params": _slots(t, raw)}))
    out.append((_NONE_EXAMPLE, {"template": NONE}))
    return out


def _slots(t: Template, raw: Mapping[str, Any]) -> dict[str, Any]:
    return {p.name: raw[p.name] for p in t.params if raw.get(p.name) not in (None, "", [])}


def answer_schema(template: str | None) -> dict[str, Any]:
    """The answer's JSON schema: a template's branch (or every branch, and "none")."""
    names = [template] if template is not None else list(TEMPLATES)
    branches: list[dict[str, Any]] = [_branch(TEMPLATES[n]) for n in names]
    if template is None:
        branches.append(
            {"type": "object", "properties": {"template": {"const": NONE}},
             "required": ["template"], "additionalProperties": False}
        )  # fmt: skip
    return branches[0] if len(branches) == 1 else {"anyOf": branches}


def _branch(t: Template) -> dict[str, Any]:
    params = {p.name: _slot_schema(p) for p in t.params}
    return {
        "type": "object",
        "properties": {
            "template": {"const": t.name},
            "params": {"type": "object", "properties": params, "additionalProperties": False},
        },
        "required": ["template", "params"],
        "additionalProperties": False,
    }  # fmt: skip


def _slot_schema(p: Param) -> dict[str, Any]:
    text = {"type": "string", "maxLength": MAX_VALUE_CHARS}
    if p.kind in (Kind.ADDRESSES, Kind.SHARES):
        return {"type": "array", "items": text, "maxItems": p.max_length or 16}
    return text
