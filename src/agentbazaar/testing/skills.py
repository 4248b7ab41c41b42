"""Dishonest providers for tests and demos: work that lies, receipts that tell the truth.

``dishonest_embedding_skill(model, price, "perturbed")`` adds noise of 5% of each vector's norm
(cosine to the truth ~0.999); ``"stale"`` answers every input with the vectors of an earlier,
unrelated one. The receipt is signed over what was delivered, so only re-doing the work (the
validator) catches it.

``UppercaseSkill(price)``: a priced skill without a model, for tests of buying and selling.

Today the modes are implemented inside ``agents.skills.EmbeddingSkill`` (``mode=``); this is the
kit's entry point for them, and where they move when the embedding model leaves ``agents``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from agentbazaar.agents.runtime import Agent
    from agentbazaar.agents.skills import EmbeddingSkill, Payment
    from agentbazaar.models.embedding import EmbeddingModel

DishonestMode = Literal["perturbed", "stale"]
DISHONEST_MODES: tuple[DishonestMode, ...] = ("perturbed", "stale")


def dishonest_embedding_skill(
    model: EmbeddingModel, price_per_1k: int, mode: DishonestMode
) -> EmbeddingSkill:
    """An embedding skill that sells wrong vectors in ``mode`` (see the module docstring)."""
    from agentbazaar.agents.skills import EmbeddingSkill

    if mode not in DISHONEST_MODES:
        raise ValueError(f"unknown dishonest mode {mode!r}; one of {', '.join(DISHONEST_MODES)}")
    return EmbeddingSkill(model, price_per_1k, mode=mode)


class UppercaseSkill:
    """A priced skill that needs no model: ``{"text": "..."}`` answered upper-cased, for a
    fixed ``price`` per task, with a receipt signed by the provider (hashes over the input and
    output texts) and kept as the embedding skill keeps its own. Input ``{"text": "fail"}``
    makes the work fail after payment was verified (for tests of what a failed skill charges).
    """

    id = "upper"
    name = "Upper-case text"
    description = "Upper-cases a text, with a signed receipt"
    unit = "task"

    def __init__(self, price: int) -> None:
        self.unit_price = price
        self.tags = ["text", "test"]

    @staticmethod
    def _text(payload: Any) -> str:
        from agentbazaar.errors import InputError

        if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
            raise InputError('an upper-case request is {"text": "..."}')
        return str(payload["text"])

    def input_from_text(self, text: str) -> dict[str, Any]:
        return {"text": text}

    def quote(self, payload: Any) -> tuple[int, int, str]:
        from agentbazaar.agents.receipts import input_hash

        return self.unit_price, 1, input_hash([self._text(payload)])

    def perform(self, agent: Agent, payload: Any, payment: Payment) -> dict[str, Any]:
        import time

        from agentbazaar.agents.receipts import Receipt, input_hash, sign_receipt
        from agentbazaar.errors import AgentError

        text = self._text(payload)
        if text == "fail":
            raise AgentError("the upper-case skill was asked to fail")
        upper = text.upper()
        receipt = Receipt(
            provider_agent_id=agent.require_agent_id(),
            provider=agent.address,
            model_id="upper",
            weights_hash="0x" + "00" * 32,
            input_hash=input_hash([text]),
            output_hash=input_hash([upper]),
            asset=agent.token.address or "",
            price=payment.amount,
            payment_ref=payment.nonce,
            timestamp=int(time.time()),
        )
        signed = sign_receipt(agent.signer, receipt, agent.chain.chain_id)
        agent.receipts.add(signed, role="issued", texts=[text], output=upper.encode())
        return {"upper": upper, "receipt": signed.to_json()}
