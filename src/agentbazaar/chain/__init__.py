"""Chain layer: one ``Chain`` over web3.py (embedded py-evm, local anvil, any JSON-RPC).

``chain_errors`` is the boundary where web3 / RPC errors become ours: every layer that talks to
a contract through web3 directly wraps the call in ``with chain_errors("what it was doing"):``.
"""

from agentbazaar.chain._errors import chain_errors
from agentbazaar.chain.chain import CallOutcome, Chain, to_address
from agentbazaar.chain.nonces import NonceManager

__all__ = ["CallOutcome", "Chain", "NonceManager", "chain_errors", "to_address"]
