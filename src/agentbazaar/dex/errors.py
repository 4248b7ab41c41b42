"""Errors of the dex package (subclasses of ``agentbazaar.errors.InputError``).

InputError
└── DexInputError        400  bad swap request (same token in and out, zero amount, bad pool)
    └── NoRouteError     422  no path between the tokens, or none that yields a non-zero output
"""

from __future__ import annotations

from agentbazaar.errors import InputError


class DexInputError(InputError):
    """A swap or quote request that cannot be served as asked."""


class NoRouteError(DexInputError):
    """No pool path connects the tokens with enough liquidity for the amount."""

    http_status = 422
