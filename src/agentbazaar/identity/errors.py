"""Errors of the identity layer (cards, registries, tickets, feedback, discovery).

IdentityError                    400
├── CardError                    422  a card or registration file that is not valid
│   └── CardFetchError           503  the card's URI could not be read (scheme, size, time)
├── SignatureError               422  a missing, malformed or wrong signature on a card
├── WalletMismatch               409  the card's wallet is not the on-chain agentWallet
├── RegistryInputError           400  input the registries would reject (also an InputError)
├── TicketError                  409  a ticket that cannot be used (unknown, used, not yours)
├── FeedbackError                422  a feedback file malformed or not matching its event
│   ├── FeedbackValueError       400  a value that is not a rating of 0..100
│   └── ProofOfPaymentError      402  the payment is not on the chain or did not pay the agent
│       └── PaymentAlreadyUsed   409  the payment already proves feedback (one payment, one)
└── DiscoveryError               400  the index cannot be read or written, or a bad query
(an agent the discovery service does not know is ``agentbazaar.errors.NotFound``, 404)
"""

from __future__ import annotations

from agentbazaar.errors import IdentityError, InputError


class CardError(IdentityError):
    """A card or registration file that is not valid JSON or has invalid fields."""

    http_status = 422


class CardFetchError(CardError):
    """The card's URI could not be read (scheme, network, size or time limit)."""

    http_status = 503


class SignatureError(IdentityError):
    """A missing, malformed or wrong signature on a card."""

    http_status = 422


class WalletMismatch(IdentityError):
    """The card's wallet is not the agent's on-chain agentWallet."""

    http_status = 409


class RegistryInputError(IdentityError, InputError):
    """Input that the registries would reject (too long, reserved key, bad deadline, ...)."""


class TicketError(IdentityError):
    """A ticket that cannot be used (unknown, used, not the caller's, another agent's)."""

    http_status = 409


class FeedbackError(IdentityError):
    """A feedback file that is malformed or does not match its on-chain event."""

    http_status = 422


class FeedbackValueError(FeedbackError):
    """A feedback value that is not a rating of 0..100 (with 0-18 decimals)."""

    http_status = 400


class ProofOfPaymentError(FeedbackError):
    """The feedback's payment is not on the chain, failed, or did not pay this agent."""

    http_status = 402


class PaymentAlreadyUsed(ProofOfPaymentError):
    """The payment already proves feedback this client gave (one payment, one feedback)."""

    http_status = 409


class DiscoveryError(IdentityError):
    """The index cannot be read or written, or a query is invalid."""
