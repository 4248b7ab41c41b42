"""Sentence -> template + exact parameters: deterministic extraction first, a model behind it.

``choose`` picks the template whose parser recognises the sentence (no guessing: a sentence no
parser recognises is refused with ``NoTemplate`` naming the closest templates). The template's
parser reads what it can; a ``Filler`` (e.g. a language model constrained to the template's JSON
schema) may supply the values the parser did not find. Whatever the source, ``params.resolve``
and the template's ``validate`` check the values the same way, so a model's answer is held to
exactly the rules of the deterministic one; what is still missing or ambiguous raises
``NeedsClarification`` naming it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from agentbazaar.authoring.params import ResolveContext, resolve
from agentbazaar.authoring.template import Template
from agentbazaar.authoring.templates import TEMPLATES
from agentbazaar.errors import BadParameters, NoTemplate


class Filler(Protocol):
    """Fills a template's schema from a sentence: ``(sentence, template name, JSON schema) ->
    raw values`` (values as written, see ``params``). A model plugs in here."""

    def __call__(
        self, sentence: str, template: str, schema: Mapping[str, Any]
    ) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Filled:
    template: Template
    raw: dict[str, Any]  # as written (the parser's, then the filler's for what it lacked)
    params: dict[str, Any]  # exact values
    sources: dict[str, str]  # parameter -> "sentence" | "filler" | "default"


def choose(sentence: str) -> tuple[Template, dict[str, Any]]:
    """The template whose parser recognises ``sentence``, with what it read."""
    text = _clean(sentence)
    for template in TEMPLATES.values():
        raw = template.parse(text)
        if raw is not None:
            return template, raw
    closest = closest_templates(text)
    raise NoTemplate(
        f"no contract template covers {sentence.strip()!r}; the closest are "
        f"{', '.join(closest)} (see `bazaar contract templates`); free-form code is never "
        "deployed",
        closest=closest,
    )


def closest_templates(sentence: str, n: int = 3) -> list[str]:
    """Templates ranked by shared keywords, then by likeness to their examples."""
    words = set(re.findall(r"[a-z0-9-]+", sentence.lower()))

    def score(t: Template) -> tuple[int, float]:
        hits = sum(1 for k in t.keywords if set(k.split()) <= words)
        like = max(difflib.SequenceMatcher(None, sentence.lower(), e).ratio() for e in t.examples)
        return hits, like

    ranked = sorted(TEMPLATES.values(), key=score, reverse=True)
    return [t.name for t in ranked[:n]]


def fill(
    sentence: str,
    ctx: ResolveContext,
    *,
    filler: Filler | None = None,
    template: str | None = None,
) -> Filled:
    """Choose (or take ``template``), read, fill what is missing, resolve and validate."""
    if template is not None:
        if template not in TEMPLATES:
            raise NoTemplate(f"no template {template!r}", closest=closest_templates(template))
        chosen, raw = TEMPLATES[template], TEMPLATES[template].parse(_clean(sentence)) or {}
    else:
        chosen, raw = choose(sentence)
    sources = {k: "sentence" for k in raw}
    missing = [p.name for p in chosen.params if p.name not in raw]
    if filler is not None and missing:
        answer = filler(sentence, chosen.name, chosen.schema())
        for name in missing:
            value = answer.get(name) if isinstance(answer, Mapping) else None
            if value not in (None, "", []):
                raw[name], sources[name] = value, "filler"
    params = resolve(chosen.params, raw, ctx, template=chosen.name)
    for p in chosen.params:
        sources.setdefault(p.name, "default")
    chosen.validate(params, ctx.now)
    return Filled(chosen, raw, params, sources)


def _clean(sentence: str) -> str:
    text = " ".join(sentence.split())
    if not text:
        raise BadParameters("say what the contract should do, e.g. " + _example())
    if len(text) > 500:
        raise BadParameters("a sentence of at most 500 characters, please")
    return text


def _example() -> str:
    return repr(next(iter(TEMPLATES.values())).examples[0])
