"""Enumerate simple paths (no token visited twice, hence no pool twice) between two tokens."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from agentbazaar.dex.errors import DexInputError
from agentbazaar.dex.types import Path, Pool

MAX_HOPS_LIMIT = 4  # AmmRouter.vy MAX_HOPS


def enumerate_paths(
    pools: Iterable[Pool], token_in: str, token_out: str, max_hops: int = 3
) -> list[Path]:
    """All simple paths of 1..max_hops pools with non-zero reserves, in a stable order."""
    if token_in == token_out:
        raise DexInputError("token_in and token_out are the same token")
    if not 1 <= max_hops <= MAX_HOPS_LIMIT:
        raise DexInputError(f"max_hops must be between 1 and {MAX_HOPS_LIMIT}")
    by_token: dict[str, list[Pool]] = defaultdict(list)
    seen: set[str] = set()
    for pool in pools:
        if pool.address in seen:
            raise DexInputError(f"pool {pool.address} is listed twice")
        seen.add(pool.address)
        if pool.reserve0 > 0 and pool.reserve1 > 0:
            by_token[pool.token0].append(pool)
            by_token[pool.token1].append(pool)
    found: list[Path] = []
    _extend(by_token, token_out, max_hops, (), (token_in,), found)
    return found


def _extend(
    by_token: dict[str, list[Pool]],
    token_out: str,
    max_hops: int,
    pools: tuple[Pool, ...],
    tokens: tuple[str, ...],
    found: list[Path],
) -> None:
    here = tokens[-1]
    for pool in by_token.get(here, []):
        nxt = pool.other(here)
        if nxt == token_out:
            found.append(Path((*pools, pool), (*tokens, nxt)))
        elif nxt not in tokens and len(pools) + 1 < max_hops:
            _extend(by_token, token_out, max_hops, (*pools, pool), (*tokens, nxt), found)
