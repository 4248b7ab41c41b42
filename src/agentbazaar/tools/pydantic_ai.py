"""The catalog as a PydanticAI toolset (``pip install agentbazaar[pydantic-ai]``).

    from pydantic_ai import Agent
    from agentbazaar.tools.pydantic_ai import bazaar_toolset

    agent = Agent(model, toolsets=[bazaar_toolset(Toolbox(cfg, wallet="alice"))])

Each tool is ``Tool.from_schema`` over the catalog's JSON schema; arguments the catalog refuses
send the model back to fix them (``ModelRetry``), other refusals are the tool's result.
"""

from __future__ import annotations

from typing import Any

from pydantic_ai import ModelRetry
from pydantic_ai import Tool as PaiTool
from pydantic_ai.toolsets import FunctionToolset

from agentbazaar.tools._invoke import invoke
from agentbazaar.tools._toolbox import Toolbox
from agentbazaar.tools.catalog import TOOLS, Tool
from agentbazaar.wallet.wallet import Approver


def _one(box: Toolbox, tool: Tool, approve: Approver | None) -> PaiTool[Any]:
    def run(**arguments: Any) -> dict[str, Any]:
        result = invoke(box, tool, arguments, approve)
        if result.get("error") == "ToolArgumentError":
            raise ModelRetry(str(result["message"]))
        return result

    return PaiTool.from_schema(run, tool.name, tool.description, tool.input_schema())


def bazaar_toolset(box: Toolbox, *, approve: Approver | None = None) -> FunctionToolset[Any]:
    """Every tool of the catalog, bound to ``box`` (its wallet and policy)."""
    return FunctionToolset([_one(box, t, approve) for t in TOOLS])
