"""Chain layer: one ``Chain`` over web3.py (embedded py-evm, local anvil, any JSON-RPC)."""

from agentbazaar.chain.chain import CallOutcome, Chain, to_address
from agentbazaar.chain.nonces import NonceManager

__all__ = ["CallOutcome", "Chain", "NonceManager", "to_address"]
