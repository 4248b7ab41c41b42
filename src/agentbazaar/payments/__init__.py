"""x402 v2 pay-per-call: our facilitator (exact, upto, contract-wallet payers), the selling-side
paywall (fixed and metered prices) and the paying client."""

from agentbazaar.payments.auth import ApiKeys, BearerAuth, facilitator_client
from agentbazaar.payments.errors import (
    FacilitatorError,
    PaymentDeclined,
    PaymentHeaderError,
    PaymentRefused,
)
from agentbazaar.payments.evm import extend_facilitator
from agentbazaar.payments.facilitator import (
    Facilitator,
    SchemeHandler,
    create_app,
    exact_facilitator,
)
from agentbazaar.payments.metered import MeteredPrice, charge, metered_routes
from agentbazaar.payments.server import PaymentTerms, RoutePrice, install_paywall
from agentbazaar.payments.store import SettlementStore

__all__ = [
    "ApiKeys",
    "BearerAuth",
    "Facilitator",
    "FacilitatorError",
    "MeteredPrice",
    "PaymentDeclined",
    "PaymentHeaderError",
    "PaymentRefused",
    "PaymentTerms",
    "RoutePrice",
    "SchemeHandler",
    "SettlementStore",
    "charge",
    "create_app",
    "exact_facilitator",
    "extend_facilitator",
    "facilitator_client",
    "install_paywall",
    "metered_routes",
]
