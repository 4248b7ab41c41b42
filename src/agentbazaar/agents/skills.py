"""Skills an agent sells: a quote (price for this input) and the work itself.

``EmbeddingSkill`` sells text embeddings from the real MiniLM model, priced per 1,000 input
tokens. Every answer carries a receipt signed by the provider (see ``receipts``); the provider
keeps the evidence (texts, output, receipt) and, when it names a validator, asks it on-chain to
check the work (``validationRequest`` with the receipt id as request hash and the evidence URL as
request URI) before answering, so a buyer can see that the sale is open to validation.

Dishonest modes exist so that the validator's catch can be shown rather than assumed:
``perturbed`` adds noise of 5% of the vector's norm to every row (cosine to the truth ~0.999),
``stale`` answers with the vectors of an earlier, unrelated input. In both modes the receipt is
signed honestly over what was actually delivered: the lie is in the work, not in the bookkeeping.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from agentbazaar.agents.pricing import price_for_tokens
from agentbazaar.agents.receipts import (
    GenerationReceipt,
    Receipt,
    SignedReceipt,
    input_hash,
    matrix_to_json,
    output_bytes,
    output_hash,
    sign_receipt,
    tokens_from_bytes,
)
from agentbazaar.errors import InputError
from agentbazaar.models.embedding import EMBEDDING_DIM, EmbeddingModel, Matrix, check_texts

if TYPE_CHECKING:
    from agentbazaar.agents.runtime import Agent

Mode = Literal["honest", "perturbed", "stale"]
MODES: tuple[str, ...] = ("honest", "perturbed", "stale")
QUOTE_TTL_SECONDS = 300
MAX_QUOTES = 10_000


@dataclass(frozen=True)
class Quote:
    id: str
    skill: str
    price: int
    units: int  # what the price counts (tokens for embeddings)
    input_hash: str
    expires: float

    def to_json(self) -> dict[str, Any]:
        return {
            "quote": self.id,
            "skill": self.skill,
            "price": str(self.price),
            "units": self.units,
            "inputHash": self.input_hash,
            "expires": int(self.expires),
        }


@dataclass(frozen=True)
class Payment:
    nonce: str
    payer: str
    amount: int


class Skill(Protocol):
    id: str
    name: str
    description: str
    tags: list[str]
    unit_price: int  # the listed price (for embeddings: per 1,000 tokens)
    unit: str

    def quote(self, payload: Any) -> tuple[int, int, str]:
        """(price, units, input hash) for ``payload``; raises InputError for bad input."""
        ...

    def perform(self, agent: Agent, payload: Any, payment: Payment) -> dict[str, Any]: ...


@dataclass
class QuoteBook:
    """Quotes issued and not yet used; bounded, expiring, thread-safe."""

    _quotes: OrderedDict[str, Quote] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, skill: str, price: int, units: int, in_hash: str) -> Quote:
        quote = Quote(
            "0x" + secrets.token_hex(16),
            skill,
            price,
            units,
            in_hash,
            time.time() + QUOTE_TTL_SECONDS,
        )
        with self._lock:
            self._quotes[quote.id] = quote
            while len(self._quotes) > MAX_QUOTES:
                self._quotes.popitem(last=False)
        return quote

    def get(self, quote_id: str | None, skill: str | None = None) -> Quote | None:
        if not quote_id:
            return None
        with self._lock:
            quote = self._quotes.get(quote_id)
        if quote is None or quote.expires < time.time():
            return None
        if skill is not None and quote.skill != skill:
            return None
        return quote

    def use(self, quote_id: str) -> None:
        with self._lock:
            self._quotes.pop(quote_id, None)


def _texts(payload: Any) -> list[str]:
    if not isinstance(payload, dict) or "texts" not in payload:
        raise InputError('an embedding request is {"texts": ["...", ...]}')
    return check_texts(payload["texts"])


class EmbeddingSkill:
    """Text embeddings, priced per 1,000 input tokens, with signed receipts."""

    id = "embed"
    name = "Text embeddings (all-MiniLM-L6-v2)"
    description = "384-dimensional sentence embeddings with signed, verifiable receipts"
    unit = "1000 tokens"

    def __init__(self, model: EmbeddingModel, price_per_1k: int, *, mode: Mode = "honest") -> None:
        self.tags = ["embeddings", "text", "minilm", "verifiable"]
        if mode not in MODES:
            raise InputError(f"unknown provider mode {mode!r}; one of {', '.join(MODES)}")
        if price_per_1k <= 0:
            raise InputError("the price per 1,000 tokens must be positive")
        self.model = model
        self.unit_price = price_per_1k
        self.mode: Mode = mode
        self._stale: Matrix | None = None
        self._rng = np.random.default_rng()

    def quote(self, payload: Any) -> tuple[int, int, str]:
        texts = _texts(payload)
        tokens = self.model.count_tokens(texts)
        return price_for_tokens(tokens, self.unit_price), tokens, input_hash(texts)

    def input_from_text(self, text: str) -> dict[str, Any]:
        """The input of a task given in words (an A2A text part): embed that text."""
        return {"texts": [text]}

    def _deliver(self, texts: list[str]) -> tuple[Matrix, int]:
        result = self.model.embed(texts)
        vectors = result.vectors
        if self.mode == "perturbed":
            noise = self._rng.standard_normal(vectors.shape).astype(np.float32)
            noise *= 0.05 / np.linalg.norm(noise, axis=1, keepdims=True)
            vectors = (vectors + noise).astype(np.float32)
        elif self.mode == "stale":
            if self._stale is None:
                self._stale = self.model.embed(["an earlier, unrelated request"]).vectors
            vectors = np.repeat(self._stale, len(texts), axis=0).astype(np.float32)
        return np.ascontiguousarray(vectors, dtype=np.float32), result.tokens

    def perform(self, agent: Agent, payload: Any, payment: Payment) -> dict[str, Any]:
        texts = _texts(payload)
        vectors, tokens = self._deliver(texts)
        assert vectors.shape == (len(texts), EMBEDDING_DIM)
        receipt = Receipt(
            provider_agent_id=agent.require_agent_id(),
            provider=agent.address,
            model_id=self.model.model_id,
            weights_hash=self.model.weights_hash,
            input_hash=input_hash(texts),
            output_hash=output_hash(vectors),
            asset=agent.token.address or "",
            price=payment.amount,
            payment_ref=payment.nonce,
            timestamp=int(time.time()),
        )
        signed = sign_receipt(agent.signer, receipt, agent.chain.chain_id)
        agent.receipts.add(signed, role="issued", texts=texts, output=output_bytes(vectors))
        agent.request_validation(signed)
        return {
            "embeddings": matrix_to_json(vectors),
            "tokens": tokens,
            "model": self.model.model_id,
            "receipt": signed.to_json(),
        }


def evidence(signed: SignedReceipt, texts: list[str], vectors: Matrix) -> dict[str, Any]:
    """What a provider serves at its evidence URL for a validator."""
    return {"receipt": signed.to_json(), "texts": texts, "embeddings": matrix_to_json(vectors)}


def generation_evidence(signed: SignedReceipt, prompt: Any, output: bytes) -> dict[str, Any]:
    """The evidence of a completion: the receipt, the prompt and the token ids delivered."""
    return {"receipt": signed.to_json(), "prompt": prompt, "token_ids": tokens_from_bytes(output)}


def validation_tag(signed: SignedReceipt) -> str:
    """The ValidationRegistry tag of a verdict on this kind of sale."""
    return "generation" if isinstance(signed.receipt, GenerationReceipt) else "embedding"
