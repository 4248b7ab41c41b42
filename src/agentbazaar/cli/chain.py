"""`bazaar chain up|down|status`: the local anvil node of this data directory."""

from __future__ import annotations

import typer

from agentbazaar.chain.anvil import AnvilNode
from agentbazaar.cli._common import console, emit_json, emit_table, run_context, waiting
from agentbazaar.config import write_default_config

app = typer.Typer(help="Start, stop and inspect the local chain (anvil).", no_args_is_help=True)


@app.command()
def up(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Start the local chain (state persists under BAZAAR_HOME/chain).

    Example: bazaar chain up
    """
    rc = run_context(ctx)
    write_default_config(rc.config.home)
    with waiting("starting anvil..."):
        st = AnvilNode(rc.config).start()
    if json_out:
        emit_json(st.to_dict())
    else:
        console.print(f"local chain up at {st.url} (pid {st.pid}, chain id {st.chain_id})")


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop the local chain (its state is saved and reloaded by the next `up`).

    Example: bazaar chain down
    """
    stopped = AnvilNode(run_context(ctx).config).stop()
    console.print("local chain stopped" if stopped else "local chain was not running")


@app.command()
def status(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Report whether the local chain runs, where, and its block height.

    Example: bazaar chain status --json
    """
    st = AnvilNode(run_context(ctx).config).status()
    if json_out:
        emit_json(st.to_dict())
        return
    rows = [[k, v] for k, v in st.to_dict().items()]
    emit_table("local chain", ["field", "value"], rows)
