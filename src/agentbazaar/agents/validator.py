"""The validator agent: re-runs sampled sales and posts its verdict on the ValidationRegistry.

Providers ask for validation on-chain (``validationRequest`` naming this validator, request hash
= the receipt id, request URI = the provider's evidence URL). The validator reads its requests
from the registry, samples each with probability ``sample_rate`` (seeded, so runs are
repeatable), fetches the evidence, and checks, in order:

1. the evidence's receipt has the request hash as its id, is signed by the provider agent's
   on-chain wallet, and its input and output hashes match the evidence's texts and vectors;
2. the model id and weights hash are the validator's own model's;
3. re-running the model on the texts gives the vectors within the tolerance of
   ``agents.comparison`` (cosine >= 0.9999 per row, max abs diff <= 1e-4).

It answers ``validationResponse(requestHash, 100 or 0, responseURI, responseHash, "embedding")``
where the response URI is a ``data:`` JSON document with the measured numbers and the reason.
Missing or inconsistent evidence scores 0: a provider that cannot show its work fails.

Generation sales (a ``GenerationReceipt``; the evidence holds the prompt and the token ids) are
checked the same way, with the tag ``"generation"``: the receipt is consistent with the evidence
(prompt hash, token hash, output count, metered price); its model and weights are one the
validator runs and its runtime is the validator's; then the prompt is generated again under the
receipt's settings (sampling, context size, batch sizes; one slot, empty prompt cache) and the
token ids must be identical (``validation.compare_tokens``). A cancelled stream is compared with
a re-run of as many tokens. A substituted model, a truncated answer or an overstated token count
all score 0.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass
from typing import Any

import httpx
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from agentbazaar.agents.comparison import FAIL, Comparison, compare_embeddings, should_sample
from agentbazaar.agents.errors import BadReceipt
from agentbazaar.agents.protocol import VALIDATION_TAG, event
from agentbazaar.agents.receipts import (
    GenerationReceipt,
    SignedReceipt,
    check_generation,
    input_hash,
    matrix_from_json,
    output_hash,
    recover_signer,
)
from agentbazaar.agents.rerun import GENERATION_TAG, Rerunner
from agentbazaar.agents.runtime import Agent
from agentbazaar.agents.store import StoredVerdict
from agentbazaar.errors import BazaarError, InputError
from agentbazaar.identity.cards import to_data_uri
from agentbazaar.models.embedding import EmbeddingModel, check_texts


@dataclass(frozen=True)
class Verdict:
    request_hash: str
    provider_agent_id: int
    score: int
    reason: str
    max_abs_diff: float
    min_cosine: float
    tx_hash: str | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Validator:
    """Validation work of an ``Agent`` (its wallet answers on-chain)."""

    def __init__(
        self,
        agent: Agent,
        model: EmbeddingModel | None,
        *,
        sample_rate: float = 1.0,
        seed: int = 8004,
        language: Rerunner | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise InputError("sample_rate is between 0 and 1")
        self.agent = agent
        self.model = model
        self.language = language
        self.sample_rate = sample_rate
        self.rng = random.Random(seed)
        self.seen: set[str] = set()
        self.skipped: list[str] = []
        self.verdicts: list[Verdict] = []
        self.http = httpx.Client(timeout=30.0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def pending(self) -> list[str]:
        reg = self.agent.network.registries.validation
        hashes = ["0x" + bytes(h).hex() for h in reg.validator_requests(self.agent.address)]
        return [h for h in hashes if h not in self.seen]

    def process_pending(self) -> list[Verdict]:
        """Handle every request not seen yet; returns the verdicts posted now."""
        with self._lock:
            out = []
            for request_hash in self.pending():
                self.seen.add(request_hash)
                if self._answered(request_hash):
                    continue  # answered before (e.g. by this validator before a restart)
                if not should_sample(self.sample_rate, self.rng):
                    self.skipped.append(request_hash)
                    continue
                out.append(self.validate(request_hash))
            return out

    def _answered(self, request_hash: str) -> bool:
        status = self.agent.network.registries.validation.status(request_hash)
        return status.tag in (VALIDATION_TAG, GENERATION_TAG)

    def validate(self, request_hash: str) -> Verdict:
        reg = self.agent.network.registries.validation
        agent_id = reg.status(request_hash).agent_id
        comparison, details, tag = self._judge(request_hash, agent_id)
        doc = json.dumps(
            {"requestHash": request_hash, "agentId": agent_id, **details,
             "score": comparison.score, "reason": comparison.reason,
             "maxAbsDiff": _finite(comparison.max_abs_diff), "minCosine": comparison.min_cosine},
            sort_keys=True, separators=(",", ":"),
        ).encode()  # fmt: skip
        fn = reg.contract.functions.validationResponse(
            HexBytes(request_hash), comparison.score, to_data_uri(doc), keccak(doc), tag
        )
        receipt = self.agent.network.gas.transact(self.agent.chain, self.agent.signer, fn)
        tx = HexBytes(receipt["transactionHash"]).to_0x_hex()
        verdict = Verdict(
            request_hash, agent_id, comparison.score, comparison.reason,
            comparison.max_abs_diff, comparison.min_cosine, tx,
        )  # fmt: skip
        self.verdicts.append(verdict)
        event(self.agent.name, "verdict", **verdict.to_json())
        self.agent.receipts.add_verdict(
            StoredVerdict(
                request_hash, self.agent.address, agent_id, verdict.score,
                _finite(verdict.max_abs_diff), verdict.min_cosine, request_hash, tx,
            )
        )  # fmt: skip
        return verdict

    def _judge(self, request_hash: str, agent_id: int) -> tuple[Comparison, dict[str, Any], str]:
        try:
            evidence = self._fetch(self._request_uri(request_hash))
            signed = SignedReceipt.from_json(evidence.get("receipt"))
        except BazaarError as exc:
            return (
                Comparison(FAIL, float("inf"), -1.0, f"evidence rejected: {exc}"),
                {},
                "embedding",
            )
        if isinstance(signed.receipt, GenerationReceipt):
            comparison, details = self._judge_generation(signed, evidence, request_hash, agent_id)
            return comparison, details, GENERATION_TAG
        try:
            if self.model is None:
                raise BadReceipt("this validator does not run the embedding model")
            texts = check_texts(evidence.get("texts"))
            claimed = matrix_from_json(evidence.get("embeddings"))
            self._consistent(signed, request_hash, agent_id, texts, claimed)
        except BazaarError as exc:
            return (
                Comparison(FAIL, float("inf"), -1.0, f"evidence rejected: {exc}"),
                {},
                VALIDATION_TAG,
            )
        rerun = self.model.embed(texts).vectors
        details = {"receiptId": signed.id, "texts": len(texts)}
        return compare_embeddings(claimed, rerun), details, VALIDATION_TAG

    def _judge_generation(
        self, signed: SignedReceipt, evidence: dict[str, Any], request_hash: str, agent_id: int
    ) -> tuple[Comparison, dict[str, Any]]:
        try:
            if self.language is None:
                raise BadReceipt("this validator does not run language models")
            wallet = self.agent.network.registries.identity.get_agent_wallet(agent_id)
            if wallet is None or signed.id.lower() != request_hash.lower():
                raise BadReceipt("the evidence's receipt is not the one named by the request")
            if signed.receipt.provider_agent_id != agent_id:
                raise BadReceipt("the receipt names another agent")
            tokens = evidence.get("token_ids")
            if not isinstance(tokens, list):
                raise BadReceipt("the evidence has no token ids")
            prompt = evidence.get("prompt")
            if not isinstance(prompt, dict):
                raise BadReceipt("the evidence has no prompt")
            receipt = check_generation(signed, signer=wallet, prompt=prompt, token_ids=tokens)
            comparison = self.language.rerun(receipt, prompt, tokens)
        except BazaarError as exc:
            return Comparison(FAIL, float("inf"), -1.0, f"evidence rejected: {exc}"), {}
        return comparison, {"receiptId": signed.id, "outputTokens": len(tokens)}

    def _consistent(
        self,
        signed: SignedReceipt,
        request_hash: str,
        agent_id: int,
        texts: list[str],
        claimed: Any,
    ) -> None:
        assert self.model is not None
        wallet = self.agent.network.registries.identity.get_agent_wallet(agent_id)
        check_evidence(
            signed, request_hash=request_hash, agent_id=agent_id, wallet=wallet, texts=texts,
            claimed=claimed, model_id=self.model.model_id, weights_hash=self.model.weights_hash,
        )  # fmt: skip

    def _request_uri(self, request_hash: str) -> str:
        contract = self.agent.network.registries.validation.contract
        logs = contract.events.ValidationRequest().get_logs(
            from_block=0, argument_filters={"requestHash": HexBytes(request_hash)}
        )
        if not logs:
            raise BadReceipt("no ValidationRequest event for this request")
        return str(logs[-1]["args"]["requestURI"])

    def _fetch(self, uri: str) -> dict[str, Any]:
        if not uri.startswith(("http://127.0.0.1", "http://localhost", "https://")):
            raise BadReceipt(f"evidence URI {uri[:80]!r} is not fetchable")
        try:
            resp = self.http.get(uri)
        except httpx.HTTPError as exc:
            raise BadReceipt(f"evidence unavailable: {exc}") from exc
        if resp.status_code != 200:
            raise BadReceipt(f"evidence unavailable: HTTP {resp.status_code}")
        try:
            data = resp.json()
        except ValueError as exc:
            raise BadReceipt("evidence is not JSON") from exc
        if not isinstance(data, dict):
            raise BadReceipt("evidence is not a JSON object")
        return data

    # ---- background loop ------------------------------------------------------------------
    def run_in_background(self, interval: float = 0.5) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.process_pending()
                except BazaarError:
                    continue

        self._thread = threading.Thread(target=loop, name="validator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.http.close()


def check_evidence(
    signed: SignedReceipt,
    *,
    request_hash: str,
    agent_id: int,
    wallet: str | None,
    texts: list[str],
    claimed: Any,
    model_id: str,
    weights_hash: str,
) -> None:
    """The evidence is the sale the request names, signed by the agent's wallet, for this
    model: raises ``BadReceipt`` otherwise (pure: no chain, no model)."""
    r = signed.receipt
    if signed.id.lower() != request_hash.lower():
        raise BadReceipt("the evidence's receipt is not the one named by the request")
    if wallet is None or recover_signer(signed).lower() != wallet.lower():
        raise BadReceipt("the receipt is not signed by the agent's wallet")
    if r.provider_agent_id != agent_id:
        raise BadReceipt("the receipt names another agent")
    if r.input_hash.lower() != input_hash(texts) or r.output_hash.lower() != output_hash(claimed):
        raise BadReceipt("the evidence does not match the receipt's hashes")
    if r.model_id != model_id or r.weights_hash.lower() != weights_hash.lower():
        raise BadReceipt("the receipt names another model or other weights")


def _finite(value: float) -> float:
    return value if value != float("inf") else 1e308
