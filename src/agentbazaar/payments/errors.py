"""Errors of the payments layer (all under ``PaymentError``).

PaymentError               402
├── FacilitatorError       503  the facilitator could not do its job (store, chain, config)
├── PaymentRefused         402  the payment was not made: refused by the seller (reason attached)
│   └── PaymentDeclined    402  declined by the buyer before signing (scheme, network or token,
│                               payee; the maximum is a ``PolicyViolation``)
├── PaymentHeaderError     400  a payment header could not be decoded
└── Rejected               402  a payment a facilitator check refuses (``reason``: the x402 code)
"""

from __future__ import annotations

from agentbazaar.errors import PaymentError


class FacilitatorError(PaymentError):
    http_status = 503


class PaymentRefused(PaymentError):
    pass


class PaymentDeclined(PaymentRefused):
    pass


class PaymentHeaderError(PaymentError):
    http_status = 400


class Rejected(PaymentError):
    """A payment that fails a facilitator check: ``reason`` is the x402 reason code (the SDK's
    own codes, so SDK clients understand them), ``payer`` the signer when known. The schemes
    answer it as an invalid ``VerifyResponse`` or a failed ``SettleResponse``."""

    def __init__(self, reason: str, message: str = "", payer: str | None = None) -> None:
        super().__init__(message or reason, reason=reason, payer=payer)
        self.reason, self.payer = reason, payer
