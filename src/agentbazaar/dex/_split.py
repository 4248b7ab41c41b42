"""Split an input amount across pool-disjoint paths: water-filling, then exact integer refinement.

Each path's real output is ``a*x / (b + c*x)`` (see ``_math.path_shape``): concave, with marginal
rate ``a*b / (b + c*x)**2``. Maximising the sum of such outputs for a fixed total is solved in
closed form by water-filling: every used path ends at the same marginal rate ``1/t**2``, with
``x_i = (t*sqrt(a_i*b_i) - b_i) / c_i``. That relaxed split (computed with 60-digit Decimals, no
floats) is floored to integers and then refined by hill-climbing on the *exact* integer outputs
(moves of 2^k units between two paths, and moves of a whole route), net of gas.

Invariants: the returned allocation sums to the total exactly; every route with a non-zero
allocation is executable (each hop pays out > 0); values compared are exact integers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal, localcontext
from fractions import Fraction

from agentbazaar.dex._math import path_output, path_shape
from agentbazaar.dex.types import Path

_PRECISION = 60
GasCost = Callable[[int, int], int]  # (routes used, total hops) -> cost in output-token units


def relaxed_split(paths: Sequence[Path], total: int) -> list[Decimal]:
    """Optimal real-valued split of ``total`` across ``paths`` (gas ignored)."""
    shapes = [path_shape(path) for path in paths]
    order = sorted(range(len(paths)), key=lambda i: Fraction(shapes[i][0], shapes[i][1]))
    order.reverse()  # best marginal rate at zero first
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        roots = [(Decimal(a) * Decimal(b)).sqrt() for a, b, _ in shapes]
        numerator, denominator = Decimal(total), Decimal(0)
        level = Decimal(0)
        for rank, i in enumerate(order):
            _, b, c = shapes[i]
            numerator += Decimal(b) / Decimal(c)
            denominator += roots[i] / Decimal(c)
            level = numerator / denominator
            if rank + 1 < len(order):
                j = order[rank + 1]
                if level * roots[j] <= Decimal(shapes[j][1]):
                    break  # the next path's rate at zero is below the water level
        split = [Decimal(0)] * len(paths)
        for i, (_, b, c) in enumerate(shapes):
            split[i] = max(Decimal(0), (level * roots[i] - Decimal(b)) / Decimal(c))
    return split


def relaxed_value(paths: Sequence[Path], split: Sequence[Decimal], gas_cost: GasCost) -> Decimal:
    """Real output of ``split`` minus the gas of the paths it uses."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        value = Decimal(0)
        routes, hops = 0, 0
        for path, x in zip(paths, split, strict=True):
            if x > 0:
                a, b, c = path_shape(path)
                value += Decimal(a) * x / (Decimal(b) + Decimal(c) * x)
                routes, hops = routes + 1, hops + path.hops
        return value - Decimal(gas_cost(routes, hops))


def integer_split(split: Sequence[Decimal], total: int) -> list[int]:
    """Floor a relaxed split; the remainder goes to the largest share."""
    floors = [int(x) for x in split]
    largest = max(range(len(split)), key=lambda i: split[i])
    floors[largest] += total - sum(floors)
    return floors


class _Evaluator:
    """Exact net value of integer allocations, with per-path memoised outputs."""

    def __init__(self, paths: Sequence[Path], gas_cost: GasCost) -> None:
        self.paths = paths
        self.gas_cost = gas_cost
        self._memo: list[dict[int, int | None]] = [{} for _ in paths]

    def output(self, i: int, amount: int) -> int | None:
        memo = self._memo[i]
        if amount not in memo:
            memo[amount] = path_output(self.paths[i], amount)
        return memo[amount]

    def value(self, alloc: Sequence[int]) -> int | None:
        """Sum of outputs minus gas, or None if a used route would revert."""
        total, routes, hops = 0, 0, 0
        for i, amount in enumerate(alloc):
            if amount == 0:
                continue
            out = self.output(i, amount)
            if out is None:
                return None
            total, routes, hops = total + out, routes + 1, hops + self.paths[i].hops
        return total - self.gas_cost(routes, hops)


def refine_split(
    paths: Sequence[Path], alloc: Sequence[int], gas_cost: GasCost
) -> tuple[list[int], int | None]:
    """Hill-climb on exact integer values; return the allocation and its net value."""
    evaluator = _Evaluator(paths, gas_cost)
    current = list(alloc)
    value = evaluator.value(current)
    step = 1 << max(0, max(current).bit_length() - 2)
    while step >= 1:
        improved = True
        while improved:
            improved = False
            for move in _moves(current, step):
                candidate_value = evaluator.value(move)
                if candidate_value is not None and (value is None or candidate_value > value):
                    current, value, improved = move, candidate_value, True
                    break
        step //= 2
    return current, value


def _moves(alloc: list[int], step: int) -> list[list[int]]:
    """Allocations reached by moving ``step`` units, or a whole route, from i to j."""
    moves: list[list[int]] = []
    for i, share in enumerate(alloc):
        if share == 0:
            continue
        for j in range(len(alloc)):
            if i == j:
                continue
            for delta in (share,) if step >= share else (step, share):
                moved = list(alloc)
                moved[i] -= delta
                moved[j] += delta
                moves.append(moved)
    return moves
