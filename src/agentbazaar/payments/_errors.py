"""Errors of the payments layer (all under ``PaymentError``).

PaymentError
├── FacilitatorError       the facilitator could not do its job (store, chain, config)
├── PaymentRefused         a paid service answered 402 after our payment (reason attached)
└── PaymentHeaderError     a payment header could not be decoded
"""

from __future__ import annotations

from agentbazaar.errors import PaymentError


class FacilitatorError(PaymentError):
    pass


class PaymentRefused(PaymentError):
    pass


class PaymentHeaderError(PaymentError):
    pass
