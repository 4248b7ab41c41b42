"""x402 v2 pay-per-call: our facilitator, the selling-side paywall and the paying client."""

from agentbazaar.payments._errors import FacilitatorError, PaymentHeaderError, PaymentRefused
from agentbazaar.payments.auth import ApiKeys, BearerAuth, facilitator_client
from agentbazaar.payments.facilitator import (
    Facilitator,
    SchemeHandler,
    create_app,
    exact_facilitator,
)
from agentbazaar.payments.server import PaymentTerms, RoutePrice, install_paywall
from agentbazaar.payments.store import SettlementStore

__all__ = [
    "ApiKeys",
    "BearerAuth",
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
    "facilitator_client",
    "install_paywall",
]
