"""Chain layer: one ``Chain`` over web3.py (embedded py-evm, local anvil, any JSON-RPC).

``chain_errors`` is the boundary where web3 / RPC errors become ours: every layer that talks to
a contract through web3 directly wraps the call in ``with chain_errors("what it was doing"):``.
``to_address`` is ``agentbazaar.primitives.parse_address`` (the one address parser).
"""

from agentbazaar.chain._errors import chain_errors
from agentbazaar.chain.chain import CallOutcome, Chain
from agentbazaar.chain.nonces import NonceManager
from agentbazaar.primitives import parse_address as to_address

__all__ = ["CallOutcome", "Chain", "NonceManager", "chain_errors", "to_address"]
