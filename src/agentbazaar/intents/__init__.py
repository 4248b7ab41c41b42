"""Plain-language transactions: a sentence becomes a typed ``Intent``, then a checked plan.

from agentbazaar.intents import parse_intent

intent = parse_intent("swap 100 USDC for WETH with at most 0.5% slippage")
intent.stable()  # {"action": "swap", "amount": "100", "amount_side": "in", ...}
"""

from agentbazaar.intents._errors import IntentParseError, PlanError, PlanMismatch
from agentbazaar.intents.model import STABLE_KEYS, Action, Intent
from agentbazaar.intents.parser import parse_intent

__all__ = [
    "STABLE_KEYS",
    "Action",
    "Intent",
    "IntentParseError",
    "PlanError",
    "PlanMismatch",
    "parse_intent",
]
