"""Running a catalog tool for a framework adapter: validation, approvals, errors as data."""

from __future__ import annotations

from typing import Any

from agentbazaar.errors import BazaarError
from agentbazaar.tools._toolbox import Toolbox, parse_arguments
from agentbazaar.tools.catalog import Tool
from agentbazaar.wallet.wallet import Approver


def invoke(
    box: Toolbox, tool: Tool, arguments: dict[str, Any], approve: Approver | None
) -> dict[str, Any]:
    """The tool's result, or ``{"error": type, "message": why}`` when it was refused (bad
    arguments, the policy, an approval the ``approve`` callback declined): a model reads the
    reason and adapts; nothing was signed."""
    try:
        args = parse_arguments(tool, arguments)
        with box.asking(approve):
            return tool.run(box, args)
    except BazaarError as exc:
        return exc.to_dict()
