"""Errors of the intents layer.

IntentError (agentbazaar.errors)
├── IntentParseError     a sentence the parser could not understand (with the reason)
└── PlanError            an understood intent that cannot be carried out as asked
    └── PlanMismatch     the executed result does not match the plan (received < minimum)
"""

from __future__ import annotations

from agentbazaar.errors import IntentError


class IntentParseError(IntentError):
    """The sentence could not be turned into an intent; nothing was guessed."""


class PlanError(IntentError):
    """The intent was understood but cannot be planned or executed as asked."""


class PlanMismatch(PlanError):
    """After execution the chain disagrees with the plan."""
