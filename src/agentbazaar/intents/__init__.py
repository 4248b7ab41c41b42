"""Plain-language transactions: a sentence becomes a typed ``Intent``, then a checked plan.

from agentbazaar.intents import understand, parse_intent

parse_intent("swap 100 USDC for WETH with at most 0.5% slippage")   # the fast path only
understood = understand("把100 USDC换成WETH", extractor=LocalModel())  # fast path, then a model
understood.intent.stable()   # {"action": "swap", "amount": "100", "amount_side": "in", ...}
understood.parser            # "rules" or "model"

parse_order("buy 0.1 WETH with USDC every day for a week")  # a standing order (orders.py);
# held in an ``OrderBook`` and filled by ``agentbazaar.intents.runner.run_once``

A request with a value missing raises ``NeedsClarification`` (the question, what is missing,
the partial intent); ``answers.answer`` completes it with the user's reply. Injections, rule
changes and sweeps are refused in code (``IntentRefused``), whichever parser reads the rest.
"""

from agentbazaar.errors import NeedsClarification
from agentbazaar.intents.answers import answer
from agentbazaar.intents.errors import IntentParseError, IntentRefused, PlanError, PlanMismatch
from agentbazaar.intents.model import STABLE_KEYS, Action, Intent
from agentbazaar.intents.orderbook import Fill, OrderBook
from agentbazaar.intents.orders import StandingOrder, parse_order
from agentbazaar.intents.parser import parse_intent
from agentbazaar.intents.understand import Context, Extractor, Understood, understand

__all__ = [
    "STABLE_KEYS",
    "Action",
    "Context",
    "Extractor",
    "Fill",
    "Intent",
    "IntentParseError",
    "IntentRefused",
    "NeedsClarification",
    "OrderBook",
    "PlanError",
    "PlanMismatch",
    "StandingOrder",
    "Understood",
    "answer",
    "parse_intent",
    "parse_order",
    "understand",
]
