"""Agents that sell and buy AI work: runtime, embedding provider, receipts, validator, assistant.

    from agentbazaar.agents import Agent, EmbeddingSkill, Network, shared_model

    provider = Agent("embedder", wallet, network, skills=[EmbeddingSkill(shared_model(), 2_000)],
                     validator=validator_address)
    provider.start()                    # HTTP on 127.0.0.1, registered on the identity registry
    buyer.hire("embed", {"texts": [...]}, max_price=10_000)   # discover, pay, verify, review

The models themselves (MiniLM embeddings, the language models) live in ``agentbazaar.models``.
Modules: ``pricing`` (per-token prices in base units), ``generation`` (``GenerationSkill``: a
language model sold per token, OpenAI-compatible route), ``rerun`` (completions re-run for
validation), ``receipts`` (EIP-712 inference receipts, canonical hashes), ``store`` (SQLite
receipts and verdicts), ``validation`` (the re-run tolerance), ``skills``, ``runtime``
(``Agent``; its paid skills sit behind ``payments.server``'s paywall), ``hiring`` (``Buyer``,
paying through ``payments.client``), ``validator``, ``assistant``, ``network`` (local set-up), ``spec``
(TOML agents), ``demo``. Importing this package loads neither torch nor the model.
"""

from agentbazaar.agents.comparison import compare_embeddings
from agentbazaar.agents.errors import BadReceipt
from agentbazaar.agents.generation import GenerationSkill
from agentbazaar.agents.pricing import TokenPrices, price_for_tokens
from agentbazaar.agents.receipts import (
    Expected,
    GenerationReceipt,
    Receipt,
    SignedReceipt,
    sign_receipt,
    verify_receipt,
)
from agentbazaar.agents.runtime import Agent, Network
from agentbazaar.agents.skills import EmbeddingSkill
from agentbazaar.agents.store import ReceiptStore
from agentbazaar.models.embedding import EmbeddingModel, shared_model

__all__ = [
    "Agent",
    "BadReceipt",
    "EmbeddingModel",
    "EmbeddingSkill",
    "Expected",
    "GenerationReceipt",
    "GenerationSkill",
    "Network",
    "Receipt",
    "ReceiptStore",
    "SignedReceipt",
    "TokenPrices",
    "compare_embeddings",
    "price_for_tokens",
    "shared_model",
    "sign_receipt",
    "verify_receipt",
]
