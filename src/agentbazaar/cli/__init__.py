"""The `bazaar` command: a thin shell over the library.

Every error we raise on purpose (``BazaarError``) becomes one line on stderr and exit code 1;
usage errors exit 2. No tracebacks for user mistakes.

Each command module has a ``register(app)``; ``COMMAND_MODULES`` lists them (a new module is one
import and one entry there), and ``app`` is complete once this package is imported.

Importing them is cheap: a command module imports at its top only what ``--help`` needs (typer,
rich, ``_common``, config, errors, units) and imports the library it drives (the chain and web3,
wallets, x402, servers, models) inside the commands, under ``TYPE_CHECKING`` for annotations. So
``bazaar --help`` starts in well under a second and each command pays only for what it uses
(``tests/cli/test_cli_startup.py`` fails when a heavy library is loaded at start-up).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from agentbazaar.cli import (
    agent,
    ask,
    channel,
    contract,
    core,
    dashboard,
    data,
    do,
    hire,
    job,
    mcp,
    orders,
    pay,
    serve,
    stake,
    wallet,
)
from agentbazaar.cli import chain as chain_cmd
from agentbazaar.cli._common import RunContext, err_console
from agentbazaar.errors import BazaarError, InputError

app = typer.Typer(
    name="bazaar",
    help="agentbazaar: agents with wallets, identities and stablecoin payments on a real EVM.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    """``--version``: the installed distribution's version, from its package metadata."""
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("agentbazaar")
        except PackageNotFoundError:
            from agentbazaar import __version__ as number
        typer.echo(f"agentbazaar {number}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None, "--home", help="data directory (default BAZAAR_HOME or ~/.bazaar)"
    ),
    chain: str | None = typer.Option(None, "--chain", help="backend: embedded | local | rpc"),
    rpc: str | None = typer.Option(None, "--rpc", help="JSON-RPC url of any EVM chain"),
    log_format: str | None = typer.Option(
        None,
        "--log-format",
        help="servers' log lines on stderr: text | json (default BAZAAR_LOG_FORMAT or text)",
    ),
    _show_version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="print the installed version and exit",
    ),
) -> None:
    if log_format is not None and log_format not in ("text", "json"):
        raise InputError(f"unknown log format {log_format!r}: use --log-format text or json")
    ctx.obj = RunContext(home=home, backend=chain, rpc_url=rpc, log_format=log_format)


app.add_typer(chain_cmd.app, name="chain")

# in this order in `bazaar --help` (after `chain`)
COMMAND_MODULES = (
    agent,
    serve,  # demo, serve
    ask,
    channel,
    contract,
    core,
    dashboard,
    data,
    do,
    hire,
    job,
    mcp,
    orders,
    pay,
    stake,
    wallet,
)
for _module in COMMAND_MODULES:
    _module.register(app)


def main() -> None:
    try:
        app()
    except BazaarError as exc:
        err_console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        sys.exit(130)
