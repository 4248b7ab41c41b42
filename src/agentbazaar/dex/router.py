"""Best execution over constant-product pools: single best path and gas-aware split routing.

Pure: takes pool snapshots (``Iterable[Pool]``), never reads a chain.

Gas model (all in the *output token's* base units, so it can be netted against output):
    gas_units = gas_base + gas_per_route * routes + gas_per_hop * hops_over_all_routes
    gas_cost_out = ceil(gas_units * gas_price_wei * 10**out_token_decimals / out_token_price_in_wei)
where ``out_token_price_in_wei`` is the value in wei of ONE WHOLE output token
(10**out_token_decimals base units). ``None`` means the output token is the wrapped native coin
(price 10**18 wei, 18 decimals), so one base unit costs one wei. The optimiser maximises
``amount_out - gas_cost_out``.

Invariants:
- a quote's routes are pool-disjoint, so their outputs do not interact; the quote is still built
  by sequential simulation (``simulate_routes``) in the order ``AmmRouter.swapSplit`` executes;
- amounts are exact integers; ``sum(route.amount_in) == amount_in``;
- every route in a quote has a non-zero input and pays out > 0 at every hop.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from decimal import Decimal
from fractions import Fraction

from agentbazaar.dex._math import path_output, path_shape, simulate_routes
from agentbazaar.dex._paths import enumerate_paths
from agentbazaar.dex._split import (
    GasCost,
    integer_split,
    refine_split,
    relaxed_split,
    relaxed_value,
)
from agentbazaar.dex.errors import DexInputError, NoRouteError
from agentbazaar.dex.types import Path, Pool, Quote, RouteQuote

# Fitted to gasUsed of AmmRouter.vy swaps on py-evm (seeded pools, warm token balances): one
# route of 1/2/3 hops 92k/136k/179k (109k with cold storage); 2/3/4 routes of 2/3/5 hops in all
# 135k/180k/266k. So about 49k + 43k per hop, and a route costs little beyond its hops.
DEFAULT_GAS_BASE = 50_000
DEFAULT_GAS_PER_ROUTE = 5_000
DEFAULT_GAS_PER_HOP = 45_000
WEI_PER_NATIVE = 10**18
_REFINED_SUBSETS = 4


def best_path(
    pools: Iterable[Pool], token_in: str, token_out: str, amount_in: int, max_hops: int = 3
) -> Quote:
    """The single path with the largest exact output for ``amount_in`` (gas ignored)."""
    _check_amount(amount_in)
    paths = enumerate_paths(pools, token_in, token_out, max_hops)
    best: tuple[int, Path] | None = None
    for path in paths:
        out = path_output(path, amount_in)
        if out is not None and (best is None or out > best[0]):
            best = (out, path)
    if best is None:
        raise NoRouteError(
            f"no path from {token_in} to {token_out} pays out for {amount_in}",
            token_in=token_in,
            token_out=token_out,
        )
    return quote_routes([(best[1], amount_in)])


def route_best_execution(
    pools: Iterable[Pool],
    token_in: str,
    token_out: str,
    amount_in: int,
    *,
    gas_price_wei: int,
    gas_per_hop: int = DEFAULT_GAS_PER_HOP,
    gas_base: int = DEFAULT_GAS_BASE,
    gas_per_route: int = DEFAULT_GAS_PER_ROUTE,
    out_token_price_in_wei: int | None = None,
    out_token_decimals: int = 18,
    max_hops: int = 3,
    max_splits: int = 4,
    max_candidates: int = 10,
) -> Quote:
    """Best split of ``amount_in`` over up to ``max_splits`` pool-disjoint paths, net of gas."""
    _check_amount(amount_in)
    if not 1 <= max_splits <= 4:
        raise DexInputError("max_splits must be between 1 and 4 (AmmRouter.vy MAX_ROUTES)")
    gas = GasModel(
        gas_price_wei,
        gas_base,
        gas_per_route,
        gas_per_hop,
        out_token_price_in_wei,
        out_token_decimals,
    )
    paths = enumerate_paths(pools, token_in, token_out, max_hops)
    candidates = _candidates(paths, amount_in, max_candidates)
    if not candidates:
        raise NoRouteError(
            f"no path from {token_in} to {token_out} pays out for {amount_in}",
            token_in=token_in,
            token_out=token_out,
        )
    subsets = _promising_subsets(candidates, amount_in, max_splits, gas.cost)
    best: tuple[int, list[tuple[Path, int]]] | None = None
    for subset in subsets:
        alloc = integer_split(relaxed_split(subset, amount_in), amount_in)
        alloc, value = refine_split(subset, alloc, gas.cost)
        if value is not None and (best is None or value > best[0]):
            best = (value, [(p, x) for p, x in zip(subset, alloc, strict=True) if x > 0])
    if best is None:
        raise NoRouteError(f"no split from {token_in} to {token_out} pays out for {amount_in}")
    chosen = sorted(best[1], key=lambda item: -item[1])
    return quote_routes(chosen, gas)


class GasModel:
    """Gas units of a plan and their price in output-token base units (rounded up)."""

    def __init__(
        self,
        gas_price_wei: int,
        gas_base: int,
        gas_per_route: int,
        gas_per_hop: int,
        out_token_price_in_wei: int | None,
        out_token_decimals: int,
    ) -> None:
        if min(gas_price_wei, gas_base, gas_per_route, gas_per_hop, out_token_decimals) < 0:
            raise DexInputError("gas parameters and decimals must not be negative")
        if out_token_price_in_wei is not None and out_token_price_in_wei <= 0:
            raise DexInputError("out_token_price_in_wei must be positive")
        self.gas_price_wei = gas_price_wei
        self.gas_base, self.gas_per_route, self.gas_per_hop = gas_base, gas_per_route, gas_per_hop
        self.price_wei = (
            WEI_PER_NATIVE if out_token_price_in_wei is None else out_token_price_in_wei
        )
        self.unit = 10**18 if out_token_price_in_wei is None else 10**out_token_decimals

    def units(self, routes: int, hops: int) -> int:
        return self.gas_base + self.gas_per_route * routes + self.gas_per_hop * hops

    def cost_out(self, gas_units: int) -> int:
        wei = gas_units * self.gas_price_wei * self.unit
        return -(-wei // self.price_wei)

    def cost(self, routes: int, hops: int) -> int:
        """Cost in output-token base units of a plan with ``routes`` routes and ``hops`` hops."""
        return self.cost_out(self.units(routes, hops))


def quote_routes(
    paths_and_amounts: Sequence[tuple[Path, int]], gas: GasModel | None = None
) -> Quote:
    """Exact quote of executing the routes in order (as ``AmmRouter.swapSplit`` does)."""
    if not paths_and_amounts:
        raise DexInputError("a quote needs at least one route")
    first = paths_and_amounts[0][0]
    token_in, token_out = first.tokens[0], first.tokens[-1]
    for path, _ in paths_and_amounts:
        if path.tokens[0] != token_in or path.tokens[-1] != token_out:
            raise DexInputError("all routes must go from the same token to the same token")
    simulated = simulate_routes(paths_and_amounts)
    routes = tuple(
        RouteQuote(path=original, amount_in=amount, amount_out=amounts[-1], hop_amounts=amounts)
        for (original, amount), (_, amounts) in zip(paths_and_amounts, simulated, strict=True)
    )
    hops = sum(route.path.hops for route in routes)
    gas_units = gas.units(len(routes), hops) if gas else 0
    return Quote(
        token_in=token_in,
        token_out=token_out,
        amount_in=sum(route.amount_in for route in routes),
        amount_out=sum(route.amount_out for route in routes),
        routes=routes,
        gas_estimate=gas_units,
        gas_cost_out=gas.cost_out(gas_units) if gas else 0,
    )


def _check_amount(amount_in: int) -> None:
    if isinstance(amount_in, bool) or not isinstance(amount_in, int) or amount_in <= 0:
        raise DexInputError(
            f"amount_in must be a positive integer of base units, got {amount_in!r}"
        )


def _candidates(paths: Sequence[Path], amount_in: int, limit: int) -> list[Path]:
    """The ``limit`` best paths for the whole amount, plus the best by marginal rate at zero."""
    scored = [(path_output(path, amount_in), path) for path in paths]
    valid = [(out, path) for out, path in scored if out is not None]
    by_output = [path for _, path in sorted(valid, key=lambda item: -item[0])][:limit]
    by_rate = sorted(paths, key=lambda p: -Fraction(*path_shape(p)[:2]))[: max(1, limit // 2)]
    chosen = list(by_output)
    for path in by_rate:
        if path not in chosen and path_output(path, 1 + amount_in // 1000) is not None:
            chosen.append(path)
    return chosen


def _promising_subsets(
    candidates: Sequence[Path], amount_in: int, max_splits: int, gas_cost: GasCost
) -> list[tuple[Path, ...]]:
    """Pool-disjoint subsets ranked by their relaxed (real-valued) net output; the best few."""
    ranked: dict[frozenset[int], tuple[Decimal, tuple[Path, ...]]] = {}
    for size in range(1, max_splits + 1):
        for subset in itertools.combinations(range(len(candidates)), size):
            paths = tuple(candidates[i] for i in subset)
            if not _pool_disjoint(paths):
                continue
            split = relaxed_split(paths, amount_in)
            used = frozenset(i for i, x in zip(subset, split, strict=True) if x > 0)
            if used in ranked:
                continue
            used_paths = tuple(candidates[i] for i in sorted(used))
            ranked[used] = (relaxed_value(paths, split, gas_cost), used_paths)
    order = sorted(ranked.values(), key=lambda item: item[0], reverse=True)
    return [paths for _, paths in order[:_REFINED_SUBSETS]]


def _pool_disjoint(paths: Sequence[Path]) -> bool:
    addresses = [address for path in paths for address in path.addresses]
    return len(addresses) == len(set(addresses))
