"""Sentence -> template + exact parameters: deterministic extraction first, a model behind it.

``choose`` picks the template whose parser recognises the sentence (no guessing: a sentence no
parser recognises is refused with ``NoTemplate`` naming the closest templates). The template's
parser reads what it can. A ``Filler`` (e.g. ``ModelFiller``: a language model constrained to
the template's JSON schema) is asked only when a required value is missing, or, when it is also
a ``Chooser``, to choose the template when no parser recognised the sentence.

Every sentence is screened first (``guard``: instructions to the reader are refused before
anything reads them). A filler's answer is then held to the sentence (``grounding``: each value
must be written in it; what is not is dropped, and a required value dropped is asked for), and,
whatever the source, ``params.resolve`` and the template's ``validate`` check the values the
same way. When a filler took part, a wallet name or a number of the sentence that no parameter
took is asked about too (a misplaced value, or a sentence the template does not cover). A
filler that cannot run (no model installed) leaves the deterministic answer, and the error says
why the model did not help.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from agentbazaar.authoring import grounding
from agentbazaar.authoring.guard import screen
from agentbazaar.authoring.params import ResolveContext, resolve
from agentbazaar.authoring.template import Template
from agentbazaar.authoring.templates import TEMPLATES
from agentbazaar.errors import (
    BadParameters,
    BazaarError,
    InputError,
    ModelError,
    NeedsClarification,
    NoTemplate,
)

T = TypeVar("T")


class Filler(Protocol):
    """Fills a template's schema from a sentence: ``(sentence, template name, JSON schema) ->
    raw values`` (values as written, see ``params``). A model plugs in here."""

    def __call__(
        self, sentence: str, template: str, schema: Mapping[str, Any]
    ) -> Mapping[str, Any]: ...


class Chooser(Protocol):
    """Chooses a template for a sentence no parser recognised: a template name, or None."""

    def choose(self, sentence: str) -> str | None: ...


@dataclass(frozen=True)
class Filled:
    template: Template
    raw: dict[str, Any]  # as written (the parser's, then the filler's for what it lacked)
    params: dict[str, Any]  # exact values
    sources: dict[str, str]  # parameter -> "sentence" | "model" (a filler) | "default"
    chosen_by: str = "sentence"  # who chose the template: "sentence" (its parser) or "model"
    sentence: str = ""  # as screened: what the parsers and the filler read


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
    """Screen, choose (or take ``template``), read, fill what is missing, resolve, validate."""
    text = _clean(sentence)
    chosen, raw, chosen_by = _choose(text, filler, template)
    sources = {k: "sentence" for k in raw}
    source = str(getattr(filler, "source", "filler"))
    required = [p.name for p in chosen.params if p.required and p.default is None]
    dropped: dict[str, str] = {}
    asked, note = False, None
    if filler is not None and (chosen_by != "sentence" or _missing(raw, required)):
        answer, note = _ask(lambda: filler(text, chosen.name, chosen.schema()))
        asked = answer is not None
        held = grounding.check(text, chosen.params, answer or {})
        for name, value in held.kept.items():
            if name not in raw:
                raw[name], sources[name] = value, source
        dropped = {k: why for k, why in held.dropped.items() if k not in raw}
    try:
        params = resolve(chosen.params, raw, ctx, template=chosen.name)
    except NeedsClarification as exc:
        raise _explained(exc, dropped, note, _partial(chosen, raw)) from exc
    for p in chosen.params:
        sources.setdefault(p.name, "default")
    chosen.validate(params, ctx.now)
    if asked or chosen_by != "sentence":
        _all_used(text, chosen, raw, ctx)
    return Filled(chosen, raw, params, sources, chosen_by, text)


def _choose(
    text: str, filler: Filler | None, template: str | None
) -> tuple[Template, dict[str, Any], str]:
    """(template, what its parser read, who chose it: "sentence" or "model")."""
    if template is not None:
        if template not in TEMPLATES:
            raise NoTemplate(f"no template {template!r}", closest=closest_templates(template))
        return TEMPLATES[template], TEMPLATES[template].parse(text) or {}, "sentence"
    try:
        chosen, raw = choose(text)
        return chosen, raw, "sentence"
    except NoTemplate as refusal:
        chooser: Callable[[str], str | None] | None = getattr(filler, "choose", None)
        if chooser is None:
            raise
        name, note = _ask(lambda: chooser(text))
        if note is not None:
            raise NoTemplate(f"{refusal.message} ({note})", closest=refusal.closest) from refusal
        if name is None or name not in TEMPLATES:
            raise NoTemplate(
                f"{refusal.message}; the model found no template either", closest=refusal.closest
            ) from refusal
        return TEMPLATES[name], TEMPLATES[name].parse(text) or {}, "model"


def _ask(question: Callable[[], T]) -> tuple[T | None, str | None]:
    """The filler's answer, or why it could not give one (the model is missing or failed)."""
    try:
        return question(), None
    except InputError as exc:  # the model refused the request itself (too long, ...)
        return None, f"the model could not read it: {exc.message}"
    except ModelError as exc:
        return None, f"the model could not help: {exc.message}"


def _missing(raw: Mapping[str, Any], names: list[str]) -> bool:
    return any(raw.get(n) in (None, "", []) for n in names)


def _partial(chosen: Template, raw: Mapping[str, Any]) -> dict[str, Any]:
    """What was understood before the question: the template and the values as written."""
    return {"template": chosen.name, "params": dict(raw)}


def _explained(
    exc: NeedsClarification, dropped: Mapping[str, str], note: str | None, partial: dict[str, Any]
) -> NeedsClarification:
    """The question, with what the model offered and why it was not taken."""
    extra = [f"{k}: {dropped[k]}" for k in exc.missing if k in dropped]
    message = exc.message
    if extra:
        message += f" (not taken from the model: {'; '.join(extra)})"
    if note:
        message += f" ({note})"
    return NeedsClarification(message, missing=exc.missing, partial=partial)


def _all_used(text: str, chosen: Template, raw: Mapping[str, Any], ctx: ResolveContext) -> None:
    """A wallet name or a number of the sentence that no parameter took is asked about."""

    def is_wallet(word: str) -> bool:
        try:
            ctx.names(word)
        except BazaarError:
            return False
        return True

    numbers, names = grounding.unused(text, raw.values(), is_wallet)
    if names:
        roles = [p.name for p in chosen.params if p.kind.value.startswith("address")]
        raise NeedsClarification(
            f"{chosen.name}: the sentence names {', '.join(names)}, but no parameter took "
            f"{'it' if len(names) == 1 else 'them'}: say who is what ({', '.join(roles)})",
            missing=roles,
            partial=_partial(chosen, raw),
        )
    if numbers:
        idle = [p.name for p in chosen.params if p.name not in raw]
        said = ", ".join(format(n, "f") for n in numbers)
        raise NeedsClarification(
            f"{chosen.name}: the sentence says {said}, which no parameter took; say what it is"
            + (f" (not given: {', '.join(idle)})" if idle else "")
            + "; or, if this template does not fit, see `bazaar contract templates`",
            missing=idle,
            partial=_partial(chosen, raw),
        )


def _clean(sentence: str) -> str:
    text = " ".join(sentence.split())
    if not text:
        raise BadParameters("say what the contract should do, e.g. " + _example())
    if len(text) > 500:
        raise BadParameters("a sentence of at most 500 characters, please")
    return screen(text)


def _example() -> str:
    return repr(next(iter(TEMPLATES.values())).examples[0])
