"""Errors of the agent layer (runtime, asking, hiring, receipts).

AgentError                       400
├── AgentUnavailable             503  the agent could not be reached or did not answer A2A
├── AgentRefused                 502  the agent answered with a JSON-RPC error
├── NoProvider                   404  no trusted provider offers the skill within the price
├── ProviderUnavailable          503  a provider unreachable, or not speaking the protocol
└── BadReceipt                   502  a provider's receipt that does not match what it delivered
InputError
└── RpcRefusal                   400  an A2A request answered with a JSON-RPC error code
"""

from __future__ import annotations

from typing import Any

from agentbazaar.errors import AgentError, InputError


class RpcRefusal(InputError):
    """A request answered with a JSON-RPC error (``code``) instead of a task."""

    def __init__(self, code: int, message: str, **fields: Any) -> None:
        super().__init__(message, code=code, **fields)
        self.code = code


class AgentUnavailable(AgentError):
    """The agent could not be reached or did not answer A2A."""

    http_status = 503


class AgentRefused(AgentError):
    """The agent answered the request with a JSON-RPC error (``code``)."""

    http_status = 502


class NoProvider(AgentError):
    """No trusted provider offers the skill within the price."""

    http_status = 404


class ProviderUnavailable(AgentError):
    """A provider could not be reached or answered something that is not the protocol."""

    http_status = 503


class BadReceipt(AgentError):
    """A receipt whose signature, hashes or terms do not match what was delivered or agreed."""

    http_status = 502
