"""`bazaar mcp`: the product as MCP tools for agent hosts (stdio, or streamable HTTP)."""

from __future__ import annotations

import typer

from agentbazaar.cli._common import WALLET_ENV, err_console, run_context


def mcp(
    ctx: typer.Context,
    wallet: str | None = typer.Option(
        None,
        "--wallet",
        "-w",
        envvar="BAZAAR_WALLET",
        help="the paying wallet (its policy applies)",
    ),
    http: int | None = typer.Option(
        None, "--http", help="serve streamable HTTP on this port (endpoint /mcp) instead of stdio"
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="with --http: the address to bind"),
) -> None:
    """Serve the tools (balance, send, pay, discover, hire, intent, do, channel_pay, ledger,
    contract_*, data_*) over MCP. Spends above the wallet's approval threshold ask the person
    through MCP elicitation; refused spends are tool errors with the reason.

    Example: BAZAAR_PASSPHRASE=... bazaar mcp --wallet alice

    Example: bazaar mcp --wallet alice --http 8765
    """
    import os

    from agentbazaar.tools import Toolbox
    from agentbazaar.tools.mcp_server import BazaarMcp, run_stdio

    cfg = run_context(ctx).config
    name = wallet or os.environ.get(WALLET_ENV) or cfg.default_wallet
    box = Toolbox(cfg, wallet=name)
    if http is None:
        run_stdio(box)
        return
    import uvicorn

    err_console.print(f"MCP (streamable HTTP) on http://{host}:{http}/mcp", markup=False)
    uvicorn.run(BazaarMcp(box).http_app(host), host=host, port=http, log_level="warning")


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
