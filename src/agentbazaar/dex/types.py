"""Plain data of the dex: pools, routes and quotes (frozen dataclasses, integer amounts).

Invariants:
- every amount is an ``int`` in the token's base units; no floats anywhere;
- ``Quote.amount_out == sum(route.amount_out for route in quote.routes)`` and
  ``Quote.amount_in == sum(route.amount_in ...)``;
- a quote's outputs are what the on-chain ``AmmRouter.swapSplit`` pays when executed against
  pools whose reserves equal the ``Pool`` snapshots the quote was built from, routes in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentbazaar.dex.errors import DexInputError

FEE_DENOMINATOR_BPS = 10_000


@dataclass(frozen=True)
class Pool:
    """A snapshot of one constant-product pool. ``fee_bps=30`` is the 0.3% of ``AmmPool.vy``."""

    address: str
    token0: str
    token1: str
    reserve0: int
    reserve1: int
    fee_bps: int = 30

    def __post_init__(self) -> None:
        if self.token0 == self.token1:
            raise DexInputError(f"pool {self.address} has the same token twice")
        if self.reserve0 < 0 or self.reserve1 < 0:
            raise DexInputError(f"pool {self.address} has a negative reserve")
        if not 0 <= self.fee_bps < FEE_DENOMINATOR_BPS:
            raise DexInputError(f"pool {self.address} fee must be in [0, 10000) bps")

    def has(self, token: str) -> bool:
        return token in (self.token0, self.token1)

    def other(self, token: str) -> str:
        """The token received when ``token`` is sent in."""
        if token == self.token0:
            return self.token1
        if token == self.token1:
            return self.token0
        raise DexInputError(f"token {token} is not in pool {self.address}")

    def reserves_for(self, token_in: str) -> tuple[int, int]:
        """(reserve of token_in, reserve of the other token)."""
        if token_in == self.token0:
            return self.reserve0, self.reserve1
        if token_in == self.token1:
            return self.reserve1, self.reserve0
        raise DexInputError(f"token {token_in} is not in pool {self.address}")


@dataclass(frozen=True)
class Path:
    """Pools from ``tokens[0]`` to ``tokens[-1]``; ``tokens[i]`` enters ``pools[i]`` (hops + 1 tokens)."""

    pools: tuple[Pool, ...]
    tokens: tuple[str, ...]

    @property
    def hops(self) -> int:
        return len(self.pools)

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(pool.address for pool in self.pools)


@dataclass(frozen=True)
class RouteQuote:
    """One route of a quote: ``amount_in`` along ``path``; ``hop_amounts[i]`` leaves hop i."""

    path: Path
    amount_in: int
    amount_out: int
    hop_amounts: tuple[int, ...]


@dataclass(frozen=True)
class Quote:
    """A priced swap plan.

    ``gas_estimate`` is in gas units; ``gas_cost_out`` is that gas priced in output-token base
    units (0 when no gas price was given); ``net_amount_out = amount_out - gas_cost_out``.
    """

    token_in: str
    token_out: str
    amount_in: int
    amount_out: int
    routes: tuple[RouteQuote, ...]
    gas_estimate: int = 0
    gas_cost_out: int = 0

    @property
    def net_amount_out(self) -> int:
        return self.amount_out - self.gas_cost_out

    def router_routes(self) -> list[tuple[list[str], int]]:
        """The ``routes`` argument of ``AmmRouter.swapSplit``: (pool addresses, amount_in)."""
        return [(list(route.path.addresses), route.amount_in) for route in self.routes]

    def min_amount_out(self, slippage_bps: int) -> int:
        """The output floor to pass on chain for a tolerance in basis points (rounded down)."""
        if not 0 <= slippage_bps <= FEE_DENOMINATOR_BPS:
            raise DexInputError("slippage must be between 0 and 10000 bps")
        return self.amount_out * (FEE_DENOMINATOR_BPS - slippage_bps) // FEE_DENOMINATOR_BPS
