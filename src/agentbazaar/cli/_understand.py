"""What `bazaar intent` and `bazaar do` share: a sentence to an intent
through the fast path and the language model, and the question when something is missing.

- ``--language-model auto|off|0.5b|1.5b`` (``BAZAAR_LANGUAGE_MODEL``, default ``auto``: the local
  1.5B model when its runtime is installed, loaded only if the fast path cannot read the
  sentence); ``--llm-url URL`` uses an OpenAI-compatible endpoint instead.
- A request with a value missing: on a terminal (and without ``--json``) the question is asked
  and the answer completes the request; with ``--json`` (or without a terminal) the question,
  what is missing and the partial intent are printed as JSON and the exit code is
  ``EXIT_QUESTION`` (3). Nothing is planned or signed before the request is complete.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import TYPE_CHECKING

import typer

from agentbazaar.cli._common import console, emit_json
from agentbazaar.errors import InputError, NeedsClarification

if TYPE_CHECKING:
    from agentbazaar.intents.understand import Context, Extractor, Understood

EXIT_QUESTION = 3
MAX_QUESTIONS = 3

LANGUAGE_MODEL = typer.Option(
    None,
    "--language-model",
    help="the model for sentences the fast path cannot read: auto, off, 0.5b, 1.5b "
    "(default BAZAAR_LANGUAGE_MODEL or auto)",
)
LLM_URL = typer.Option(
    None, "--llm-url", help="an OpenAI-compatible endpoint instead (e.g. http://127.0.0.1:8080/v1)"
)
LLM_NAME = typer.Option(None, "--model", help="model name for --llm-url")


def extractor(choice: str | None, llm_url: str | None, llm_name: str | None) -> Extractor | None:
    """The model path chosen by the options (None: the fast path only)."""
    if llm_url:
        from agentbazaar.intents.llm import Endpoint

        return Endpoint(llm_url, llm_name or "default")
    choice = (choice or os.environ.get("BAZAAR_LANGUAGE_MODEL") or "auto").lower()
    if choice == "off":
        return None
    if choice not in ("auto", "0.5b", "1.5b"):
        raise InputError(f"--language-model must be auto, off, 0.5b or 1.5b, not {choice!r}")
    if choice == "auto" and importlib.util.find_spec("xllamacpp") is None:
        return None
    from agentbazaar.intents.llm import LocalModel

    return LocalModel("1.5b" if choice == "auto" else choice)


def read_sentence(
    sentence: str,
    model: Extractor | None,
    context: Context | None,
    *,
    json_out: bool,
) -> Understood:
    """``understand``, asking the user when a value is missing (see the module doc)."""
    from agentbazaar.intents.understand import understand

    try:
        return understand(sentence, extractor=model, context=context)
    except NeedsClarification as question:
        return _ask(question, context, json_out=json_out)


def _ask(question: NeedsClarification, context: Context | None, *, json_out: bool) -> Understood:
    from agentbazaar.intents.answers import answer
    from agentbazaar.intents.understand import Context, Understood, check_context

    parser = str(question.fields.get("parser", "rules"))
    for _ in range(MAX_QUESTIONS):
        if json_out or not sys.stdin.isatty():
            emit_question(question, json_out=json_out)
            raise typer.Exit(EXIT_QUESTION)
        reply = typer.prompt(question.question)
        try:
            intent = answer(question.partial, question.missing, reply)
            check_context(intent, context or Context())
            return Understood(intent, parser)  # type: ignore[arg-type]
        except NeedsClarification as again:
            question = again
    raise InputError(f"still missing {', '.join(question.missing)}: nothing was done")


def emit_question(question: NeedsClarification, *, json_out: bool) -> None:
    """The question as JSON (``--json``) or as one line for a person."""
    if json_out:
        emit_json(
            {
                "question": question.question,
                "missing": question.missing,
                "partial": question.partial,
                "parser": question.fields.get("parser", "rules"),
            }
        )
    else:
        console.print(f"question: {question.question}", highlight=False, markup=False)
