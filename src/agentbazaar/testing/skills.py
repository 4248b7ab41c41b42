"""Dishonest providers for tests and demos: work that lies, receipts that tell the truth.

``dishonest_embedding_skill(model, price, "perturbed")`` adds noise of 5% of each vector's norm
(cosine to the truth ~0.999); ``"stale"`` answers every input with the vectors of an earlier,
unrelated one. The receipt is signed over what was delivered, so only re-doing the work (the
validator) catches it.

Today the modes are implemented inside ``agents.skills.EmbeddingSkill`` (``mode=``); this is the
kit's entry point for them, and where they move when the embedding model leaves ``agents``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from agentbazaar.agents.skills import EmbeddingSkill
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
