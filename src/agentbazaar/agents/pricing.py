"""Prices of AI work in integer base units of the payment token (never a float).

- ``price_for_tokens``: embeddings, a price per 1,000 input tokens, rounded up.
- ``TokenPrices``: generation, metered: a price per input token and one per output token. The
  amount due for a completion is what its usage says (``charge``); the most a request can cost,
  what a buyer authorizes before generation, is its prompt at the input price plus
  ``max_tokens`` at the output price (``ceiling``); how many output tokens an amount still pays
  for is ``affordable`` (where a paid stream stops).
"""

from __future__ import annotations

from dataclasses import dataclass

from agentbazaar.errors import InputError


def price_for_tokens(tokens: int, price_per_1k_tokens: int) -> int:
    """Price in base units for ``tokens`` input tokens at ``price_per_1k_tokens``, rounded up."""
    if tokens < 0 or price_per_1k_tokens < 0:
        raise InputError("token count and price must not be negative")
    return -(-tokens * price_per_1k_tokens // 1000)


@dataclass(frozen=True)
class TokenPrices:
    """Base units per input (prompt) token and per output (generated) token."""

    input: int
    output: int

    def __post_init__(self) -> None:
        if self.input < 0 or self.output <= 0:
            raise InputError("token prices are whole base units: input >= 0, output > 0")

    def charge(self, input_tokens: int, output_tokens: int) -> int:
        """What a completion with this usage costs."""
        if input_tokens < 0 or output_tokens < 0:
            raise InputError("token counts must not be negative")
        return input_tokens * self.input + output_tokens * self.output

    def ceiling(self, input_tokens: int, max_tokens: int) -> int:
        """The most a request may cost: its prompt plus ``max_tokens`` generated."""
        return self.charge(input_tokens, max_tokens)

    def affordable(self, amount: int, input_tokens: int) -> int:
        """Output tokens that ``amount`` pays for once the prompt is paid (0 when it does not)."""
        left = amount - input_tokens * self.input
        return max(left, 0) // self.output
