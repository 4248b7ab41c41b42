"""The catalog as OpenAI Agents SDK function tools (``pip install agentbazaar[openai-agents]``).

    from agents import Agent
    from agentbazaar.tools.openai_agents import function_tools

    agent = Agent(name="buyer", tools=function_tools(Toolbox(cfg, wallet="alice")))

The JSON schema of each tool is the catalog's (not strict: optional arguments stay optional);
the library call runs in a worker thread; a refusal is the tool's output, as JSON.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agents import FunctionTool, RunContextWrapper

from agentbazaar.errors import InputError
from agentbazaar.tools._invoke import invoke
from agentbazaar.tools._toolbox import Toolbox
from agentbazaar.tools.catalog import TOOLS, Tool
from agentbazaar.wallet.wallet import Approver


def _one(box: Toolbox, tool: Tool, approve: Approver | None) -> FunctionTool:
    async def on_invoke(_ctx: RunContextWrapper[Any], raw: str) -> str:
        try:
            arguments = json.loads(raw or "{}")
        except ValueError:
            return json.dumps(InputError(f"{tool.name}: arguments are not JSON").to_dict())
        result = await asyncio.to_thread(invoke, box, tool, arguments, approve)
        return json.dumps(result, default=str)

    return FunctionTool(
        name=tool.name,
        description=tool.description,
        params_json_schema=tool.input_schema(),
        on_invoke_tool=on_invoke,
        strict_json_schema=False,
    )


def function_tools(box: Toolbox, *, approve: Approver | None = None) -> list[FunctionTool]:
    """Every tool of the catalog, bound to ``box`` (its wallet and policy)."""
    return [_one(box, t, approve) for t in TOOLS]
