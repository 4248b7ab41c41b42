"""Contracts the payments layer adds to the local suite: the x402 ``BatchSettler``."""

from __future__ import annotations

from agentbazaar.suite import ContractSpec, register_contract

register_contract(
    ContractSpec(
        "BatchSettler",
        "BatchSettler",
        lambda ctx: (),
        lambda ctx: {"kind": "x402-batch-settler"},
        local_only=False,
    )
)
