"""Errors of the intents layer.

IntentError (agentbazaar.errors)   422
(a request that lacks a value raises ``agentbazaar.errors.NeedsClarification``, an InputError
shared with contract authoring: the question, what is missing, the partial intent)
├── IntentParseError     a sentence the parser could not understand (with the reason)
│   └── IntentRefused    a sentence refused on purpose (injection, a rule change, a sweep of
│                        the wallet, bad characters, an impossible value): no parser or model
│                        is asked again; ``reason`` names the rule
└── PlanError            an understood intent that cannot be carried out as asked
    └── PlanMismatch     the executed result does not match the plan (received < minimum)
"""

from __future__ import annotations

from agentbazaar.errors import IntentError


class IntentParseError(IntentError):
    """The sentence could not be turned into an intent; nothing was guessed."""


class IntentRefused(IntentParseError):
    """Refused on purpose, whatever parser or model would say; ``fields['reason']`` names the
    rule (``injection``, ``rules``, ``sweep``, ``standing_order``, ``control``, ``script``,
    ``empty``, ``too_long``, ``invalid``)."""


class PlanError(IntentError):
    """The intent was understood but cannot be planned or executed as asked."""


class PlanMismatch(PlanError):
    """After execution the chain disagrees with the plan."""
