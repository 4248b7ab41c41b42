"""What the agents layer lends the data layer: the embedding model that scores contributions."""

from __future__ import annotations

from agentbazaar.data.contributions import Embedder


def dataset_embedder() -> Embedder:
    """The MiniLM model contributions are compared with (loaded once per process).

    The one place the data layer's embedder comes from: when the model moves to
    ``agentbazaar.models`` (below the data layer), this import is the line to change and the
    function can move into ``agentbazaar.data``.
    """
    from agentbazaar.agents.embedding import shared_model

    return shared_model()
