"""`bazaar dashboard`: the live web page over this data directory and its chain."""

from __future__ import annotations

import typer

from agentbazaar.cli._common import err_console, run_context, waiting
from agentbazaar.errors import ConfigError


def dashboard(
    ctx: typer.Context,
    port: int = typer.Option(8700, "--port", help="port to serve on"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind"),
) -> None:
    """Serve the dashboard: agents, payments (x402 and channels), receipts and verdicts,
    wallets and budgets, contracts and datasets, updated live; a JSON API under /api.

    Example: bazaar dashboard --port 8700   (then open http://127.0.0.1:8700)
    """
    from agentbazaar.chain import Chain
    from agentbazaar.dashboard.app import serve
    from agentbazaar.dashboard.data import DashboardData
    from agentbazaar.suite import Suite

    cfg = run_context(ctx).config
    if cfg.chain.backend == "embedded":
        raise ConfigError(
            "the embedded chain lives in one process: watch a local or rpc chain "
            "(bazaar chain up), or run `bazaar demo`"
        )
    with waiting("connecting to the chain..."):
        chain = Chain.from_config(cfg)
    data = DashboardData(cfg, chain, Suite(chain, cfg))
    err_console.print(f"dashboard on http://{host}:{port} (chain {chain.chain_id})", markup=False)
    serve(data, host, port)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
