"""Our Vyper contracts on titanoboa (``pip install 'agentbazaar[dev]'``), for contract tests:
each contract is compiled once per process and deployed as often as a test (or a hypothesis
example) needs.

    usdc = boa_deployer("Stablecoin").deploy(*STABLECOIN_ARGS)
"""

from __future__ import annotations

import functools
from typing import Any

from agentbazaar.chain.compiler import contract_path

# The suite's USDC: name, symbol, EIP-712 name and version (as `bazaar deploy` passes them).
STABLECOIN_ARGS = ("USD Coin", "USDC", "USD Coin", "2")


@functools.cache
def boa_deployer(name: str) -> Any:
    """A titanoboa deployer of ``contracts/<name>.vy`` (compiled on first use)."""
    import boa

    return boa.load_partial(str(contract_path(name)))
