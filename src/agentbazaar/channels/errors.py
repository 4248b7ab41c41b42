"""Errors of the channel layer.

PaymentError
└── ChannelError              anything about batch-settlement channels
    ├── ChannelInputError     a malformed payload, config or voucher (nothing changed)
    ├── VoucherRejected       a well-formed voucher the seller will not accept
    │                         (carries the x402 reason code and, when useful, the state to
    │                         resynchronise with: a corrective 402)
    ├── ChannelStoreError     the durable channel store refused or failed a write
    └── WithdrawalRejected    the escrow would refuse the payer's own withdrawal (nothing sent)
"""

from __future__ import annotations

from typing import Any

from agentbazaar.errors import PaymentError


class ChannelError(PaymentError):
    pass


class ChannelInputError(ChannelError):
    pass


class VoucherRejected(ChannelError):
    def __init__(self, message: str, *, reason: str, **fields: Any) -> None:
        super().__init__(message, reason=reason, **fields)
        self.reason = reason


class ChannelStoreError(ChannelError):
    pass


class WithdrawalRejected(ChannelError):
    """The escrow would refuse the payer's withdrawal (nothing was signed or sent); ``reason``
    is the contract's error name (``WithdrawDelayNotElapsed``, ``NothingToWithdraw``, ...)."""

    def __init__(self, message: str, *, reason: str, **fields: Any) -> None:
        super().__init__(message, reason=reason, **fields)
        self.reason = reason
