"""Errors of the tool catalog (MCP and framework faces).

InputError
└── ToolArgumentError            400  arguments the tool's schema refuses (names each field)
"""

from __future__ import annotations

from agentbazaar.errors import InputError


class ToolArgumentError(InputError):
    """A tool was called with arguments its schema refuses (names each field and the fix)."""
