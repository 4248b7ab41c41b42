"""Errors of the channel layer.

PaymentError
└── ChannelError              402  anything about batch-settlement channels
    ├── ChannelInputError     400  a malformed payload, config or voucher (nothing changed)
    ├── VoucherRejected       402  a well-formed voucher the seller will not accept
    │                              (carries the x402 reason code and, when useful, the state to
    │                              resynchronise with: a corrective 402)
    ├── ChannelStoreError     503  the durable channel store refused or failed a write
    └── WithdrawalRejected    409  the escrow would refuse the payer's own withdrawal
"""

from __future__ import annotations

from typing import Any

from agentbazaar.errors import PaymentError


class ChannelError(PaymentError):
    pass


class ChannelInputError(ChannelError):
    http_status = 400


class VoucherRejected(ChannelError):
    def __init__(self, message: str, *, reason: str, **fields: Any) -> None:
        super().__init__(message, reason=reason, **fields)
        self.reason = reason


class ChannelStoreError(ChannelError):
    http_status = 503


class WithdrawalRejected(ChannelError):
    """The escrow would refuse the payer's withdrawal (nothing was signed or sent); ``reason``
    is the contract's error name (``WithdrawDelayNotElapsed``, ``NothingToWithdraw``, ...)."""

    http_status = 409

    def __init__(self, message: str, *, reason: str, **fields: Any) -> None:
        super().__init__(message, reason=reason, **fields)
        self.reason = reason
