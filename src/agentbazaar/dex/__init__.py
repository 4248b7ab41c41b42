"""agentbazaar.dex: constant-product AMM maths and best-execution routing (pure Python).

Pools are snapshots (``Pool``); quotes are exact integers equal to what ``AmmRouter.vy`` pays
when executed against pools holding those reserves. The routing maths here is pure; reading the
reserves from a chain (one ``AmmFactory.poolStates`` call), simulating and encoding swaps is
``agentbazaar.dex.onchain.Amm``; the local pool set is ``agentbazaar.dex.deployment``.
"""

from agentbazaar.dex._math import amount_out, path_output, simulate_routes
from agentbazaar.dex._paths import enumerate_paths
from agentbazaar.dex.errors import DexInputError, NoRouteError
from agentbazaar.dex.router import (
    DEFAULT_GAS_BASE,
    DEFAULT_GAS_PER_HOP,
    DEFAULT_GAS_PER_ROUTE,
    GasModel,
    best_path,
    quote_routes,
    route_best_execution,
)
from agentbazaar.dex.types import Path, Pool, Quote, RouteQuote

__all__ = [
    "DEFAULT_GAS_BASE",
    "DEFAULT_GAS_PER_HOP",
    "DEFAULT_GAS_PER_ROUTE",
    "DexInputError",
    "GasModel",
    "NoRouteError",
    "Path",
    "Pool",
    "Quote",
    "RouteQuote",
    "amount_out",
    "best_path",
    "enumerate_paths",
    "path_output",
    "quote_routes",
    "route_best_execution",
    "simulate_routes",
]
