"""The catalog as LangChain tools (``pip install agentbazaar[langchain]``).

    from agentbazaar.tools import Toolbox
    from agentbazaar.tools.langchain import langchain_tools

    tools = langchain_tools(Toolbox(cfg, wallet="alice"), approve=ask_the_user)
    model.bind_tools(tools)

Each is a ``StructuredTool`` whose ``args_schema`` is the catalog's pydantic model; a refusal is
returned to the model as ``{"error": ..., "message": ...}``.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import ValidationError

from agentbazaar.tools._invoke import invoke
from agentbazaar.tools._toolbox import Toolbox, argument_error
from agentbazaar.tools.catalog import TOOLS, Tool
from agentbazaar.wallet.wallet import Approver


def _one(box: Toolbox, tool: Tool, approve: Approver | None) -> StructuredTool:
    def run(**arguments: Any) -> str:
        given = {k: v for k, v in arguments.items() if v is not None}
        return json.dumps(invoke(box, tool, given, approve), default=str)

    def refused(exc: ValidationError) -> str:
        return json.dumps(argument_error(tool, exc).to_dict())

    return StructuredTool.from_function(
        func=run,
        name=tool.name,
        description=tool.description,
        args_schema=tool.args,
        handle_validation_error=refused,
    )


def langchain_tools(box: Toolbox, *, approve: Approver | None = None) -> list[StructuredTool]:
    """Every tool of the catalog, bound to ``box`` (its wallet and policy)."""
    return [_one(box, t, approve) for t in TOOLS]
