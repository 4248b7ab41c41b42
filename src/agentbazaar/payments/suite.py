"""The payments layer's contract in the suite: the x402 ``BatchSettler`` (data only;
``agentbazaar.suite`` lists it)."""

from __future__ import annotations

from agentbazaar.chain.deploy import ContractSpec

BATCH_SETTLER = ContractSpec(
    "BatchSettler", "BatchSettler", meta=lambda ctx: {"kind": "x402-batch-settler"}
)
