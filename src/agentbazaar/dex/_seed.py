"""The pool set seeded on local chains: several tokens, several pools per pair, different depths.

Prices are roughly ETH = 3,000 USD and BTC = 60,000 USD, but every pool is a little off the others
(as real pools are), so the best execution of a large swap splits across pools and hops, while a
small one takes the best single pool. Amounts are human decimal strings, one pair per line:
(token a, token b, amount of a, amount of b).
"""

from __future__ import annotations

from dataclasses import dataclass

# Extra tokens deployed on local chains beside USDC (Stablecoin.vy) and WETH (WrappedNative.vy):
# (manifest key and symbol, ERC-20 name, decimals).
TEST_TOKENS: tuple[tuple[str, str, int], ...] = (
    ("DAI", "Dai Stablecoin", 18),
    ("USDT", "Tether USD", 6),
    ("WBTC", "Wrapped BTC", 8),
)


@dataclass(frozen=True)
class SeedPool:
    token_a: str
    token_b: str
    amount_a: str
    amount_b: str


SEED_POOLS: tuple[SeedPool, ...] = (
    SeedPool("USDC", "WETH", "3000000", "1000"),  # deep: 3,000 USDC/ETH
    SeedPool("USDC", "WETH", "250000", "83"),  # shallow, a little dearer ETH
    SeedPool("USDC", "WETH", "60000", "20.2"),  # tiny, cheaper ETH
    SeedPool("DAI", "WETH", "1500000", "499"),
    SeedPool("USDT", "WETH", "900000", "301"),
    SeedPool("USDC", "DAI", "2000000", "2000000"),
    SeedPool("USDC", "DAI", "300000", "300300"),
    SeedPool("USDC", "USDT", "1000000", "1000500"),
    SeedPool("DAI", "USDT", "500000", "500000"),
    SeedPool("WBTC", "WETH", "40", "800"),
    SeedPool("WBTC", "USDC", "15", "903000"),
    SeedPool("WBTC", "DAI", "5", "299000"),
)
