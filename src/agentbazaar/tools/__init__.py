"""The product as tools for agent builders: one description per operation, many faces.

    from agentbazaar.tools import Toolbox, TOOLS

    box = Toolbox(load_config(), wallet="alice")      # the wallet's policy is in force
    box.call("balance", {})                           # {"address": ..., "balances": [...]}
    box.call("send", {"to": "bob", "amount": "2.5 USDC"})

Faces over the same ``TOOLS``: ``bazaar mcp`` (``agentbazaar.tools.mcp_server``), LangChain tools
(``agentbazaar.tools.langchain``), OpenAI Agents SDK function tools
(``agentbazaar.tools.openai_agents``) and a PydanticAI toolset (``agentbazaar.tools.pydantic_ai``).
"""

from agentbazaar.tools._toolbox import Toolbox, find_tool, parse_arguments
from agentbazaar.tools.catalog import TOOLS, Tool, tool_names
from agentbazaar.tools.errors import ToolArgumentError

__all__ = [
    "TOOLS",
    "Tool",
    "ToolArgumentError",
    "Toolbox",
    "find_tool",
    "parse_arguments",
    "tool_names",
]
