"""Errors of the model layer's requests (all ``InputError``, 400: the caller can fix them).

InputError
├── BadMessages                  ``messages`` not a non-empty list of messages with text
├── MaxTokensOutOfRange          ``max_tokens`` below 1 or above what is allowed
├── BadSamplingParameter         a sampling parameter out of range or unsupported
├── PromptTooLong                the prompt does not fit in the context window
└── InputTooLarge                too many texts, or a text longer than the token window
(missing weights or runtimes are ``agentbazaar.errors.ModelUnavailable``, 503)
"""

from __future__ import annotations

from agentbazaar.errors import InputError


class BadMessages(InputError):
    """``messages`` is not a non-empty list of system/user/assistant messages with text."""


class MaxTokensOutOfRange(InputError):
    """``max_tokens`` below 1 or above what the model (or the buyer's authorization) allows."""


class BadSamplingParameter(InputError):
    """A sampling parameter out of range, an unsupported option, or a bad response format."""


class PromptTooLong(InputError):
    """The prompt does not fit in the model's context window."""


class InputTooLarge(InputError):
    """Too many texts, or a text longer than the model's token window."""
