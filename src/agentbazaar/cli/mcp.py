"""`bazaar mcp`: the product as MCP tools for agent hosts (stdio, or streamable HTTP)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from agentbazaar.cli._common import WALLET_ENV, err_console, run_context
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import InputError

if TYPE_CHECKING:
    from agentbazaar.payments.mcp import PaidTools


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
    price: list[str] | None = typer.Option(
        None,
        "--price",
        help="sell a tool with x402: TOOL=PRICE in USDC per call, e.g. data_list=0.001 "
        "(repeatable; needs --pay-to; tools that spend from the wallet cannot be sold)",
    ),
    pay_to: str | None = typer.Option(None, "--pay-to", help="address paid for priced tools"),
    facilitator_url: str | None = typer.Option(
        None,
        "--facilitator",
        help="with --price: facilitator URL (default: [facilitator] url in bazaar.toml or "
        "BAZAAR_FACILITATOR_URL, else an in-process one)",
    ),
    facilitator_key: str | None = typer.Option(
        None,
        "--facilitator-key",
        envvar="BAZAAR_FACILITATOR_API_KEY",
        help="API key of the --facilitator URL (sent as a bearer token)",
    ),
) -> None:
    """Serve the tools (balance, send, pay, discover, hire, intent, do, channel_pay, ledger,
    contract_*, data_*) over MCP. Spends above the wallet's approval threshold ask the person
    through MCP elicitation; refused spends are tool errors with the reason. Tools priced with
    --price are sold with x402 over MCP (payment-required result, payment in
    _meta["x402/payment"], settlement in the result's _meta).

    Example: BAZAAR_PASSPHRASE=... bazaar mcp --wallet alice

    Example: bazaar mcp --wallet alice --http 8765

    Example: bazaar mcp --http 8765 --price data_list=0.001 --pay-to 0x90F7...b906
    """
    import os

    from agentbazaar.tools import Toolbox
    from agentbazaar.tools.mcp_server import BazaarMcp, run_stdio

    cfg = run_context(ctx).config
    name = wallet or os.environ.get(WALLET_ENV) or cfg.default_wallet
    box = Toolbox(cfg, wallet=name)
    paid = None
    if price:
        paid = _paid_tools(cfg, price, pay_to, facilitator_url, facilitator_key)
    elif pay_to is not None or facilitator_url is not None:
        raise InputError("--pay-to and --facilitator go with --price TOOL=PRICE")
    if http is None:
        run_stdio(box, paid)
        return
    import uvicorn

    err_console.print(f"MCP (streamable HTTP) on http://{host}:{http}/mcp", markup=False)
    uvicorn.run(BazaarMcp(box, paid).http_app(host), host=host, port=http, log_level="warning")


def _paid_tools(
    cfg: BazaarConfig,
    prices: list[str],
    pay_to: str | None,
    facilitator_url: str | None,
    facilitator_key: str | None,
) -> PaidTools:
    """The x402 prices of --price on the configured chain's USDC, settled by the --facilitator
    URL (or the configured one) or by an in-process facilitator (the dev chain's gas account,
    as `serve-example`)."""
    from agentbazaar.chain import Chain
    from agentbazaar.cli.pay import _check_facilitator, _gas_account, _store_path, _usdc
    from agentbazaar.payments.facilitator import Facilitator, exact_facilitator
    from agentbazaar.payments.mcp import PaidTools
    from agentbazaar.payments.once import RetainedResponses
    from agentbazaar.payments.server import PaymentTerms
    from agentbazaar.tools import find_tool

    if pay_to is None:
        raise InputError("--price needs --pay-to ADDRESS (who is paid)")
    table: dict[str, str] = {}
    for entry in prices:
        tool, sep, amount = entry.partition("=")
        if not sep or not amount.strip():
            raise InputError(f"--price {entry!r}: write TOOL=PRICE, e.g. data_list=0.001")
        found = find_tool(tool.strip())
        if found.spends:  # a buyer would make this server's wallet pay: never for sale
            raise InputError(f"--price {entry!r}: {found.name} spends from this server's wallet")
        table[found.name] = amount.strip()
    chain = Chain.from_config(cfg)
    terms = PaymentTerms(network=chain.network, token=_usdc(chain, cfg), pay_to=pay_to)
    facilitator_url = facilitator_url or cfg.facilitator_url
    target: str | Facilitator
    if facilitator_url is not None:
        _check_facilitator(facilitator_url, facilitator_key)
        target = facilitator_url
    else:
        facilitator_key = None
        gas = _gas_account(chain, cfg, None)
        target = exact_facilitator(
            chain, gas, store_path=_store_path(cfg, chain, gas), assets=[str(terms.token.address)]
        )
        target.recover()
    kept = cfg.home / "payments" / f"mcp-responses-{chain.chain_id}-{terms.pay_to.lower()}.db"
    return PaidTools(
        terms, target, table, facilitator_key=facilitator_key, responses=RetainedResponses(kept)
    )


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)
