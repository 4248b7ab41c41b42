"""`bazaar chain up|down|status|warp|mine`: the local anvil node of this data directory."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from agentbazaar.cli._common import (
    console,
    emit_json,
    emit_table,
    err_console,
    run_context,
    waiting,
)
from agentbazaar.cli._when import date
from agentbazaar.config import write_default_config
from agentbazaar.errors import ChainUnavailable, ConfigError
from agentbazaar.units import format_duration

if TYPE_CHECKING:
    from agentbazaar.chain import Chain

app = typer.Typer(
    help="Start, stop, inspect the local chain (anvil) and move its clock.", no_args_is_help=True
)
EXACT_WINDOW_S = 300  # the maxTimeoutSeconds our sellers offer for exact and upto


@app.command()
def up(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Start the local chain (state persists under BAZAAR_HOME/chain).

    Example: bazaar chain up
    """
    from agentbazaar.chain.anvil import AnvilNode

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
    from agentbazaar.chain.anvil import AnvilNode

    stopped = AnvilNode(run_context(ctx).config).stop()
    console.print("local chain stopped" if stopped else "local chain was not running")


@app.command()
def status(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Report whether the local chain runs, where, and its block height.

    Example: bazaar chain status --json
    """
    from agentbazaar.chain.anvil import AnvilNode

    st = AnvilNode(run_context(ctx).config).status()
    if json_out:
        emit_json(st.to_dict())
        return
    rows = [[k, v] for k, v in st.to_dict().items()]
    emit_table("local chain", ["field", "value"], rows)


def _local_chain(ctx: typer.Context) -> Chain:
    """The data directory's running local chain (time control exists only there)."""
    from agentbazaar.chain import Chain
    from agentbazaar.chain.anvil import AnvilNode

    cfg = run_context(ctx).config
    if cfg.chain.backend != "local":
        raise ConfigError(
            f"time control needs the local anvil chain, not the {cfg.chain.backend} backend "
            "(an embedded chain lives inside one process; a public chain keeps its own time)"
        )
    st = AnvilNode(cfg).status()
    if not st.running or not st.url:
        raise ChainUnavailable("the local chain is not running: start it with `bazaar chain up`")
    return Chain.rpc(st.url, backend="local")


def _clock(chain: Chain) -> dict[str, int]:
    block = chain.w3.eth.get_block("latest")
    now = int(time.time())
    return {
        "block": int(block["number"]),
        "timestamp": int(block["timestamp"]),
        "ahead_of_wall_clock_s": int(block["timestamp"]) - now,
    }


def _report(clock: dict[str, int], json_out: bool) -> None:
    ahead = clock["ahead_of_wall_clock_s"]
    if json_out:
        emit_json(clock)
    else:
        skew = f", {format_duration(ahead)} ahead of this machine's clock" if ahead > 0 else ""
        console.print(f"block {clock['block']} at {date(clock['timestamp'])}{skew}")
    if ahead >= EXACT_WINDOW_S:
        err_console.print(
            f"note: bazaar's own payments widen their windows by the chain's lead; authorizations "
            f"other clients sign with the wall clock for a {EXACT_WINDOW_S} s window (x402 exact "
            f"and upto) expire on this chain until its clock is less than {EXACT_WINDOW_S} s "
            f"ahead of this machine's",
            soft_wrap=True,
        )


@app.command()
def warp(
    ctx: typer.Context,
    duration: str = typer.Argument(..., help="how far: 90s, 15m, 2h, 3d"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Move the local chain's clock ahead and mine a block there (e.g. past a withdrawal delay).

    The chain's clock then runs ahead of this machine's by that much: an authorization signed
    for a shorter window (x402 exact and upto: sellers offer 300 s) is refused as expired on
    chain, and the command says so.

    Example: bazaar chain warp 15m
    """
    from agentbazaar.jobs.model import parse_duration

    seconds = parse_duration(duration)
    chain = _local_chain(ctx)
    chain.advance_time(seconds)
    _report(_clock(chain), json_out)


@app.command()
def mine(
    ctx: typer.Context,
    blocks: int = typer.Argument(1, min=1, max=100_000, help="how many empty blocks"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Mine empty blocks on the local chain (e.g. to pass a seed or confirmation block).

    Example: bazaar chain mine 10
    """
    chain = _local_chain(ctx)
    chain.mine(blocks)
    _report(_clock(chain), json_out)
