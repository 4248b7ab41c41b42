"""Pure tests of agentbazaar.dex: exact maths, path enumeration, and split optimality vs brute force."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from agentbazaar.dex import (
    DexInputError,
    NoRouteError,
    Path,
    Pool,
    amount_out,
    best_path,
    enumerate_paths,
    path_output,
    quote_routes,
    route_best_execution,
)
from agentbazaar.dex.router import (
    DEFAULT_GAS_BASE,
    DEFAULT_GAS_PER_HOP,
    DEFAULT_GAS_PER_ROUTE,
    GasModel,
)

DEFAULT_GAS = (DEFAULT_GAS_BASE, DEFAULT_GAS_PER_ROUTE, DEFAULT_GAS_PER_HOP)


def v2_amount_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """The contract's formula, written as in AmmRouter.vy."""
    with_fee = amount_in * 997
    return with_fee * reserve_out // (reserve_in * 1000 + with_fee)


@given(st.integers(1, 10**30), st.integers(1, 10**30), st.integers(1, 10**30))
@settings(max_examples=100, deadline=None)
def test_amount_out_is_the_contract_formula(amount_in: int, r_in: int, r_out: int) -> None:
    pool = Pool("p", "A", "B", r_in, r_out)
    assert amount_out(pool, "A", amount_in) == v2_amount_out(amount_in, r_in, r_out)
    assert amount_out(pool, "B", amount_in) == v2_amount_out(amount_in, r_out, r_in)


def test_amount_out_rejects_foreign_token_and_negative() -> None:
    pool = Pool("p", "A", "B", 10, 10)
    with pytest.raises(DexInputError):
        amount_out(pool, "C", 1)
    with pytest.raises(DexInputError):
        amount_out(pool, "A", -1)
    with pytest.raises(DexInputError):
        Pool("q", "A", "A", 1, 1)


def test_best_path_prefers_two_hops_when_direct_pool_is_thin() -> None:
    pools = [
        Pool("direct", "A", "B", 10**6, 10**6),
        Pool("ac", "A", "C", 10**12, 10**12),
        Pool("cb", "C", "B", 10**12, 10**12),
    ]
    quote = best_path(pools, "A", "B", 10**6)
    assert quote.routes[0].path.addresses == ("ac", "cb")
    first = v2_amount_out(10**6, 10**12, 10**12)
    assert quote.amount_out == v2_amount_out(first, 10**12, 10**12)
    assert quote.routes[0].hop_amounts == (first, quote.amount_out)


def test_no_route_and_bad_input() -> None:
    pools = [Pool("ab", "A", "B", 10**6, 10**6)]
    with pytest.raises(NoRouteError):
        best_path(pools, "A", "C", 100)
    with pytest.raises(NoRouteError):
        route_best_execution(pools, "A", "B", 1, gas_price_wei=0)  # output floors to 0
    with pytest.raises(DexInputError):
        route_best_execution(pools, "A", "A", 100, gas_price_wei=0)
    with pytest.raises(DexInputError):
        route_best_execution(pools, "A", "B", 0, gas_price_wei=0)


def test_shared_pool_routes_are_simulated_sequentially() -> None:
    ab = Pool("ab", "A", "B", 10**9, 10**9)
    path = Path((ab,), ("A", "B"))
    quote = quote_routes([(path, 10**8), (path, 10**8)])
    first = v2_amount_out(10**8, 10**9, 10**9)
    second = v2_amount_out(10**8, 10**9 + 10**8, 10**9 - first)
    assert [r.amount_out for r in quote.routes] == [first, second]
    assert quote.amount_out == first + second


def test_gas_model_prices_in_output_units() -> None:
    # 100_000 gas at 1 gwei = 1e14 wei; output token worth 1e15 wei per whole token, 6 decimals
    gas = GasModel(10**9, 100_000, 0, 0, 10**15, 6)
    assert gas.cost(1, 1) == 10**14 * 10**6 // 10**15
    native = GasModel(3, 10, 0, 0, None, 6)
    assert native.cost(1, 1) == 30  # one base unit of the native wrapper is one wei


def test_gas_makes_the_router_drop_a_marginal_route() -> None:
    pools = [Pool("p1", "A", "B", 10**12, 10**12), Pool("p2", "A", "B", 10**9, 10**9)]
    free = route_best_execution(pools, "A", "B", 10**9, gas_price_wei=0)
    assert len(free.routes) == 2
    costly = route_best_execution(pools, "A", "B", 10**9, gas_price_wei=10**4)
    assert len(costly.routes) == 1 and costly.routes[0].path.addresses == ("p1",)
    gas = GasModel(10**4, *DEFAULT_GAS, None, 18)
    assert costly.net_amount_out > free.amount_out - gas.cost(2, 2)


def brute_paths(
    pools: list[Pool], token_in: str, token_out: str, max_hops: int
) -> set[tuple[str, ...]]:
    """Every ordered pool sequence that chains token_in to token_out without revisiting a token."""
    found: set[tuple[str, ...]] = set()
    for hops in range(1, max_hops + 1):
        for seq in itertools.permutations(pools, hops):
            token, seen, ok = token_in, {token_in}, True
            for pool in seq:
                if not pool.has(token):
                    ok = False
                    break
                token = pool.other(token)
                if token in seen and token != token_out:
                    ok = False
                    break
                seen.add(token)
            if ok and token == token_out and all(t != token_out for t in _inner(seq, token_in)):
                found.add(tuple(p.address for p in seq))
    return found


def _inner(seq: tuple[Pool, ...], token_in: str) -> list[str]:
    tokens, token = [], token_in
    for pool in seq[:-1]:
        token = pool.other(token)
        tokens.append(token)
    return tokens


@st.composite
def pool_graphs(draw: st.DrawFn) -> tuple[list[Pool], int, int]:
    n_tokens = draw(st.integers(2, 4))
    tokens = [f"T{i}" for i in range(n_tokens)]
    n_pools = draw(st.integers(2, 6))
    pools = []
    for k in range(n_pools):
        a, b = draw(st.lists(st.sampled_from(tokens), min_size=2, max_size=2, unique=True))
        r0 = draw(st.integers(10**8, 10**12))
        r1 = draw(st.integers(10**8, 10**12))
        pools.append(Pool(f"p{k}", a, b, r0, r1))
    amount = draw(st.integers(10**6, 10**12))
    gas_price = draw(st.sampled_from([0, 0, 1, 10**3, 10**5]))
    return pools, amount, gas_price


def brute_force_best(
    paths: list[Path], total: int, gas: GasModel, max_splits: int
) -> tuple[int, int]:
    """(best net value, its gross output) over pool-disjoint subsets: grid, then local search."""
    best: tuple[int, int] | None = None
    for size in range(1, max_splits + 1):
        for subset in itertools.combinations(paths, size):
            addresses = [a for p in subset for a in p.addresses]
            if len(addresses) != len(set(addresses)):
                continue
            found = _brute_subset(list(subset), total, gas)
            if found is not None and (best is None or found[0] > best[0]):
                best = found
    assert best is not None
    return best


def _net(paths: list[Path], alloc: list[int], gas: GasModel) -> tuple[int, int] | None:
    gross, hops, routes = 0, 0, 0
    for path, x in zip(paths, alloc, strict=True):
        if x:
            out = path_output(path, x)
            if out is None:
                return None
            gross, hops, routes = gross + out, hops + path.hops, routes + 1
    return gross - gas.cost(routes, hops), gross


def _brute_subset(paths: list[Path], total: int, gas: GasModel) -> tuple[int, int] | None:
    grid = {1: 1, 2: 40, 3: 16, 4: 8}[len(paths)]
    best: tuple[tuple[int, int], list[int]] | None = None
    for cut in itertools.combinations(range(grid + len(paths) - 1), len(paths) - 1):
        parts = [b - a - 1 for a, b in itertools.pairwise((-1, *cut, grid + len(paths) - 1))]
        alloc = [total * p // grid for p in parts]
        alloc[0] += total - sum(alloc)
        value = _net(paths, alloc, gas)
        if value is not None and (best is None or value[0] > best[0][0]):
            best = (value, alloc)
    if best is None:
        return None
    value, alloc = best
    step = max(1, total // (2 * grid))
    while step:
        moved = True
        while moved:
            moved = False
            for i, j in itertools.permutations(range(len(paths)), 2):
                if alloc[i] >= step:
                    trial = list(alloc)
                    trial[i] -= step
                    trial[j] += step
                    got = _net(paths, trial, gas)
                    if got is not None and got[0] > value[0]:
                        value, alloc, moved = got, trial, True
        step //= 2
    return value


@given(pool_graphs(), st.integers(1, 3))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
def test_split_is_within_a_basis_point_of_brute_force(
    graph: tuple[list[Pool], int, int], max_hops: int
) -> None:
    pools, amount, gas_price = graph
    paths = enumerate_paths(pools, "T0", "T1", max_hops)
    assert {p.addresses for p in paths} == brute_paths(pools, "T0", "T1", max_hops)
    assume(any(path_output(p, amount) for p in paths))
    gas = GasModel(gas_price, *DEFAULT_GAS, None, 18)
    best_net, best_gross = brute_force_best(paths, amount, gas, max_splits=4)
    assume(best_gross >= 10**5)
    quote = route_best_execution(
        pools, "T0", "T1", amount, gas_price_wei=gas_price, max_hops=max_hops, max_candidates=64
    )
    assert quote.amount_in == amount == sum(r.amount_in for r in quote.routes)
    assert all(r.amount_in > 0 for r in quote.routes)
    used = [a for r in quote.routes for a in r.path.addresses]
    assert len(used) == len(set(used))
    # independent re-computation of every route's output and the quote's gas
    assert quote.amount_out == sum(path_output(r.path, r.amount_in) or 0 for r in quote.routes)
    hops = sum(r.path.hops for r in quote.routes)
    assert quote.gas_cost_out == gas.cost(len(quote.routes), hops)
    assert quote.net_amount_out * 10_000 >= best_net * 10_000 - best_gross
