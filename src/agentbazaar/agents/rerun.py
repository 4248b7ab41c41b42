"""Re-running a receipted completion: the language-model half of the validator.

``Rerunner(models)`` knows the language models this validator can run (by model id). For a
``GenerationReceipt`` it refuses what it cannot reproduce (another model id, other weights,
another runtime version, more than one slot, settings outside sane bounds), then generates the
prompt again with the receipt's sampling on a model instance with the receipt's context size
and batch sizes (instances are kept per configuration; the same weights file is shared by the
operating system's page cache) and compares the token ids exactly
(``validation.compare_tokens``). A cancelled stream is re-run for as many tokens as delivered.
The thread count is the validator's own: it does not change the tokens (measured).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from agentbazaar.agents.comparison import FAIL, PASS, Comparison, compare_tokens
from agentbazaar.agents.errors import BadReceipt
from agentbazaar.agents.receipts import GenerationReceipt
from agentbazaar.errors import BazaarError
from agentbazaar.models.chat import ChatRequest, Message, Sampling, check_messages
from agentbazaar.models.language import LanguageModel

GENERATION_TAG = "generation"
MAX_CONTEXT = 32_768
BATCH_SIZES = range(16, 4097)


class Rerunner:
    """Re-runs completions on the validator's own language models (see the module doc)."""

    def __init__(self, models: Mapping[str, LanguageModel]) -> None:
        self.models = dict(models)
        self._variants: dict[tuple[str, int, int, int], LanguageModel] = {}
        self._lock = threading.Lock()

    def rerun(self, receipt: GenerationReceipt, prompt: Any, tokens: list[int]) -> Comparison:
        model = self._model_for(receipt)
        request = _request(receipt, prompt)
        if receipt.finish_reason == "cancelled" and not tokens:  # stopped before any token
            return _prompt_check(receipt, model.count_prompt_tokens(request)) or Comparison(
                PASS, 0.0, 1.0, "no tokens delivered; the prompt count is right"
            )
        if receipt.finish_reason == "cancelled":
            request = request.with_max_tokens(len(tokens))
        redo = model.complete(request)
        wrong_prompt = _prompt_check(receipt, redo.prompt_tokens)
        if wrong_prompt is not None:
            return wrong_prompt
        expected_finish = (
            "cancelled" if receipt.finish_reason == "cancelled" else redo.finish_reason
        )
        return compare_tokens(
            tokens,
            list(redo.token_ids),
            claimed_finish=receipt.finish_reason,
            rerun_finish=expected_finish,
        )

    def _model_for(self, receipt: GenerationReceipt) -> LanguageModel:
        base = self.models.get(receipt.model_id)
        if base is None or base.weights_hash.lower() != receipt.weights_hash.lower():
            raise BadReceipt(f"no model {receipt.model_id} with these weights to re-run")
        if receipt.runtime != base.runtime:
            raise BadReceipt(f"runtime {receipt.runtime!r} cannot be reproduced by {base.runtime}")
        s = receipt.settings
        if s["slots"] != 1:
            raise BadReceipt("a completion decoded beside others (slots > 1) is not reproducible")
        if not (1 <= s["context_size"] <= MAX_CONTEXT and s["batch_size"] in BATCH_SIZES):
            raise BadReceipt("the receipt's runtime settings are out of range")
        if s["ubatch_size"] != s["batch_size"]:
            raise BadReceipt("the receipt's batch and micro-batch sizes differ")
        key = (receipt.model_id, s["context_size"], s["batch_size"], s["ubatch_size"])
        config = base.config
        if key[1:] == (config.context_size, config.batch_size, config.ubatch_size):
            return base
        with self._lock:
            variant = self._variants.get(key)
            if variant is None:
                variant = self._variants[key] = LanguageModel(
                    base.spec,
                    threads=config.threads,
                    context_size=s["context_size"],
                    batch_size=s["batch_size"],
                    cache_dir=base.cache_dir,
                )
            return variant

    def close(self) -> None:
        with self._lock:
            for model in self._variants.values():
                model.close()
            self._variants.clear()


def _prompt_check(receipt: GenerationReceipt, prompt_tokens: int) -> Comparison | None:
    if prompt_tokens == receipt.input_tokens:
        return None
    reason = (
        f"input tokens misstated: {receipt.input_tokens} claimed, the prompt has {prompt_tokens}"
    )
    return Comparison(FAIL, 1.0, 0.0, reason)


def _request(receipt: GenerationReceipt, prompt: Any) -> ChatRequest:
    if not isinstance(prompt, dict) or set(prompt) != {"messages", "response_format"}:
        raise BadReceipt("the evidence's prompt is not {messages, response_format}")
    sampling = {k: receipt.settings[k] for k in Sampling().to_json()}
    try:
        messages = tuple(Message(**m) for m in check_messages(prompt["messages"]))
        return ChatRequest(messages, Sampling.from_json(sampling), prompt["response_format"])
    except BazaarError as exc:
        raise BadReceipt(f"the receipted request cannot be re-run: {exc}") from exc
