"""Best-execution routing: time to route over 10, 50 and 200 pools, and execution quality against
the best single pool and the best single path, in the same run.

Run: .venv/bin/python benchmarks/routing.py [--trials 5] [--seed 7]
Prints one JSON line per figure. Pool graphs are synthetic but shaped like a real AMM: a handful
of tokens with reference prices, several pools per pair with different depths and prices a little
off each other (up to 1%), and the traded pair always has direct pools. For each graph size and
each trade size (0.1%, 1% and 5% of the deepest direct pool's input reserve):
- route_ms: ``route_best_execution`` (splits over up to 4 paths, up to 3 hops, net of gas at
  1 gwei) vs ``best_path`` (one multi-hop path, the reference), median over the trials;
- gain_bps: output of our route (net of its gas) vs the best single pool and vs the best single
  path (each net of its own gas), in basis points of the reference's output.
All amounts are exact integers; only the final ratios are printed as decimals.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from agentbazaar.dex import Pool, Quote, best_path, route_best_execution
from agentbazaar.dex.router import (
    DEFAULT_GAS_BASE,
    DEFAULT_GAS_PER_HOP,
    DEFAULT_GAS_PER_ROUTE,
)

GAS_PRICE_WEI = 10**9
SIZES = ((10, 5), (50, 10), (200, 20))  # (pools, tokens)
TRADE_FRACTIONS = (Decimal("0.001"), Decimal("0.01"), Decimal("0.05"))


def make_pools(n_pools: int, n_tokens: int, rng: random.Random) -> list[Pool]:
    """Tokens T0..Tk (T0 is the output, priced 1 wei per unit), direct T1/T0 pools included."""
    price = {
        f"T{i}": Decimal(rng.randint(1, 4000)) / Decimal(rng.randint(1, 40))
        for i in range(n_tokens)
    }
    price["T0"] = Decimal(1)
    pairs = [(f"T{i}", f"T{j}") for i in range(n_tokens) for j in range(i + 1, n_tokens)]
    chosen = [("T0", "T1")] * max(2, n_pools // 10)
    while len(chosen) < n_pools:
        chosen.append(rng.choice(pairs))
    pools = []
    for k, (a, b) in enumerate(chosen):
        depth = Decimal(10) ** rng.randint(20, 24)  # value in output-token units
        skew = 1 + Decimal(rng.randint(-100, 100)) / 10_000
        r_a = int(depth / price[a])
        r_b = int(depth / price[b] * skew)
        pools.append(Pool(f"0x{k:040x}", a, b, r_a, r_b))
    return pools


def gas_cost(routes: int, hops: int) -> int:
    return (
        DEFAULT_GAS_BASE + DEFAULT_GAS_PER_ROUTE * routes + DEFAULT_GAS_PER_HOP * hops
    ) * GAS_PRICE_WEI


def net(quote: Quote) -> int:
    return quote.amount_out - gas_cost(len(quote.routes), sum(r.path.hops for r in quote.routes))


def best_single_pool(pools: list[Pool], amount: int) -> Quote:
    direct = [p for p in pools if {p.token0, p.token1} == {"T0", "T1"}]
    return max((best_path([p], "T1", "T0", amount, max_hops=1) for p in direct), key=net)


def timed(fn: Callable[[], Quote], trials: int) -> tuple[float, Quote]:
    times, result = [], None
    for _ in range(trials):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    assert result is not None
    return statistics.median(times), result


def bps(ours: int, reference: int) -> str:
    return str(round(Decimal(ours - reference) * 10_000 / Decimal(reference), 2))


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for n_pools, n_tokens in SIZES:
        pools = make_pools(n_pools, n_tokens, rng)
        deepest = max(
            p.reserve1 if p.token1 == "T1" else p.reserve0
            for p in pools
            if {p.token0, p.token1} == {"T0", "T1"}
        )
        for fraction in TRADE_FRACTIONS:
            amount = int(deepest * fraction)
            ours_ms, ours = timed(
                lambda a=amount, p=pools: route_best_execution(
                    p, "T1", "T0", a, gas_price_wei=GAS_PRICE_WEI
                ),
                args.trials,
            )
            path_ms, path = timed(
                lambda a=amount, p=pools: best_path(p, "T1", "T0", a), args.trials
            )
            single = best_single_pool(pools, amount)
            common = {
                "pools": n_pools,
                "tokens": n_tokens,
                "trade_fraction_of_depth": str(fraction),
            }
            emit(
                name="route_ms",
                **common,
                value=round(ours_ms, 2),
                unit="ms",
                reference="best_path",
                reference_value=round(path_ms, 2),
                ratio=round(ours_ms / path_ms, 2),
            )
            emit(
                name="gain_vs_best_single_pool",
                **common,
                value=bps(net(ours), net(single)),
                unit="bps",
                routes=len(ours.routes),
            )
            emit(
                name="gain_vs_best_single_path",
                **common,
                value=bps(net(ours), net(path)),
                unit="bps",
                routes=len(ours.routes),
            )


if __name__ == "__main__":
    main()
