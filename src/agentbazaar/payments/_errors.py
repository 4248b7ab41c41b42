"""Errors of the payments layer (all under ``PaymentError``).

PaymentError
├── FacilitatorError       the facilitator could not do its job (store, chain, config)
├── PaymentRefused         the payment was not made: refused by the seller (reason attached)
│   └── PaymentDeclined    declined by the buyer before signing (scheme, network or token,
│                          payee; the maximum is a ``PolicyViolation``)
└── PaymentHeaderError     a payment header could not be decoded
"""

from __future__ import annotations

from agentbazaar.errors import PaymentError


class FacilitatorError(PaymentError):
    pass


class PaymentRefused(PaymentError):
    pass


class PaymentDeclined(PaymentRefused):
    pass


class PaymentHeaderError(PaymentError):
    pass
