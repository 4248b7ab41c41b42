"""Exact integer maths of ``AmmPool.vy`` / ``AmmRouter.vy`` and the rational shape of a path.

Invariants:
- ``amount_out`` equals the contracts' integer formula
  ``amountIn*997*reserveOut // (reserveIn*1000 + amountIn*997)`` for ``fee_bps=30``
  (``(10000 - fee_bps) / 10000`` is the same fraction, so the floor is identical);
- a hop is *executable* only if its input and both reserves are > 0 and its output is > 0
  (otherwise the router or the pool reverts); ``path_amounts`` returns None for anything else;
- ``simulate_routes`` applies routes one after another to pool snapshots, exactly as
  ``AmmRouter.swapSplit`` executes them, so routes sharing a pool are priced correctly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from agentbazaar.dex.errors import DexInputError
from agentbazaar.dex.types import FEE_DENOMINATOR_BPS, Path, Pool


def amount_out(pool: Pool, token_in: str, amount_in: int) -> int:
    """Output of an exact-in swap of ``amount_in`` of ``token_in`` through ``pool`` (floored)."""
    if amount_in < 0:
        raise DexInputError("amount_in must not be negative")
    reserve_in, reserve_out = pool.reserves_for(token_in)
    if amount_in == 0 or reserve_in == 0 or reserve_out == 0:
        return 0
    with_fee = amount_in * (FEE_DENOMINATOR_BPS - pool.fee_bps)
    return with_fee * reserve_out // (reserve_in * FEE_DENOMINATOR_BPS + with_fee)


def after_swap(pool: Pool, token_in: str, amount_in: int, out: int) -> Pool:
    """The pool snapshot after receiving ``amount_in`` of ``token_in`` and paying ``out``."""
    if token_in == pool.token0:
        return replace(pool, reserve0=pool.reserve0 + amount_in, reserve1=pool.reserve1 - out)
    return replace(pool, reserve0=pool.reserve0 - out, reserve1=pool.reserve1 + amount_in)


def path_amounts(path: Path, amount_in: int) -> tuple[int, ...] | None:
    """Each hop's output for ``amount_in`` along ``path``, or None if a hop would revert."""
    amounts: list[int] = []
    amount = amount_in
    for pool, token in zip(path.pools, path.tokens, strict=False):
        amount = amount_out(pool, token, amount)
        if amount == 0:
            return None
        amounts.append(amount)
    return tuple(amounts)


def path_output(path: Path, amount_in: int) -> int | None:
    """Final output of ``path`` for ``amount_in``; 0 for no input; None if it would revert."""
    if amount_in == 0:
        return 0
    amounts = path_amounts(path, amount_in)
    return None if amounts is None else amounts[-1]


def simulate_routes(
    paths_and_amounts: Sequence[tuple[Path, int]],
) -> list[tuple[Path, tuple[int, ...]]]:
    """Execute routes in order on snapshots; return each route's path re-bound to the pool
    states it saw, with its hop outputs. Raises DexInputError if a route would revert."""
    state: dict[str, Pool] = {}
    results: list[tuple[Path, tuple[int, ...]]] = []
    for path, amount_in in paths_and_amounts:
        live = Path(tuple(state.get(p.address, p) for p in path.pools), path.tokens)
        amounts = path_amounts(live, amount_in) if amount_in > 0 else None
        if amounts is None:
            raise DexInputError(f"route through {live.addresses} would revert for {amount_in}")
        entering = (amount_in, *amounts[:-1])
        for pool, token, sent, received in zip(
            live.pools, live.tokens, entering, amounts, strict=False
        ):
            state[pool.address] = after_swap(pool, token, sent, received)
        results.append((live, amounts))
    return results


def path_shape(path: Path) -> tuple[int, int, int]:
    """Integers (a, b, c) with ``path output(x) = a*x / (b + c*x)`` before flooring.

    One hop is ``g*Rout*x / (Rin*D + g*x)`` (g = D - fee, D = 10000); composing two such
    linear-fractional maps gives another: (a1*a2, b1*b2, b2*c1 + c2*a1). The real output is
    concave in x and its marginal rate at x is ``a*b / (b + c*x)**2``.
    """
    a, b, c = 1, 1, 0
    for pool, token in zip(path.pools, path.tokens, strict=False):
        reserve_in, reserve_out = pool.reserves_for(token)
        gamma = FEE_DENOMINATOR_BPS - pool.fee_bps
        a2, b2, c2 = gamma * reserve_out, reserve_in * FEE_DENOMINATOR_BPS, gamma
        a, b, c = a * a2, b * b2, b2 * c + c2 * a
    return a, b, c
