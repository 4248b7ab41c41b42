"""x402 v2 pay-per-call: our facilitator, the selling-side paywall and the paying client."""

from agentbazaar.payments._errors import FacilitatorError, PaymentHeaderError, PaymentRefused
from agentbazaar.payments.facilitator import (
    Facilitator,
    SchemeHandler,
    create_app,
    exact_facilitator,
)
from agentbazaar.payments.server import PaymentTerms, RoutePrice, install_paywall
from agentbazaar.payments.store import SettlementStore

__all__ = [
    "Facilitator",
    "FacilitatorError",
    "PaymentHeaderError",
    "PaymentRefused",
    "PaymentTerms",
    "RoutePrice",
    "SchemeHandler",
    "SettlementStore",
    "create_app",
    "exact_facilitator",
    "install_paywall",
]
