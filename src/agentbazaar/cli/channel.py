"""`bazaar channel ...`: the paying side of x402 `batch-settlement` channels from the shell.

The channel is the one this wallet pays the seller at URL through (the seller's 402 names it).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
import typer

from agentbazaar.chain import Chain
from agentbazaar.cli._common import console, emit_json, run_context, waiting
from agentbazaar.config import BazaarConfig
from agentbazaar.errors import BazaarError, InputError

if TYPE_CHECKING:
    from agentbazaar.channels.buyer import BuyerChannel, ChannelBuyer
    from agentbazaar.tokens import Token

app = typer.Typer(
    help="batch-settlement channels this wallet pays through: take the escrow back.",
    no_args_is_help=True,
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="channel")


def _open(
    cfg: BazaarConfig, url: str, wallet: str
) -> tuple[ChannelBuyer, BuyerChannel, Token | None]:
    """The buyer, the channel it pays the seller at ``url`` through, and the channel's token."""
    from agentbazaar.channels.buyer import ChannelBuyer
    from agentbazaar.suite import Suite
    from agentbazaar.wallet import open_wallet

    if not url.startswith(("http://", "https://")):
        raise InputError(f"not an http(s) URL: {url!r}")
    with waiting("connecting to the chain..."):
        chain = Chain.from_config(cfg)
    buyer = ChannelBuyer(open_wallet(cfg, wallet), chain_id=chain.chain_id, chain=chain)

    async def requirement() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as http:
            try:
                return await buyer.requirement_at(http, url)
            except httpx.HTTPError as exc:
                raise InputError(f"cannot reach {url}: {exc}") from exc

    channel = buyer.channel_for(asyncio.run(requirement()))
    try:
        token: Token | None = Suite(chain, cfg).tokens.get(channel.config.token)
    except BazaarError:
        token = None
    return buyer, channel, token


def _human(token: Token | None, units: int) -> str:
    return token.format(units) if token else f"{units} base units"


@app.command("withdraw")
def withdraw(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="URL of the seller's paid resource"),
    wallet: str = typer.Option("default", "--wallet", "-w", help="the paying wallet"),
    amount: str | None = typer.Option(
        None, "--amount", help="token amount (default: all that was not charged)"
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Start taking your escrow back without the seller (finalize after the channel's delay).

    Example: bazaar channel withdraw http://127.0.0.1:4021/quote --wallet alice
    """
    buyer, channel, token = _open(run_context(ctx).config, url, wallet)
    units = None
    if amount is not None:
        if token is None:
            raise InputError(f"unknown channel token {channel.config.token}: no --amount")
        units = token.parse(amount)
    with waiting("starting the withdrawal..."):
        pending = asyncio.run(buyer.initiate_withdraw(channel, units))
    out = {
        "channel": "0x" + pending.channel_id.hex(),
        "amount": str(pending.amount),
        "finalize_after": pending.finalize_after,
        "transaction": pending.transaction,
    }
    if json_out:
        emit_json(out)
    else:
        console.print(
            f"withdrawal of {_human(token, pending.amount)} started on {out['channel']}; "
            f"finalize after unix time {pending.finalize_after} "
            f"(bazaar channel finalize {url} -w {wallet})"
        )


@app.command("finalize")
def finalize(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="URL of the seller's paid resource"),
    wallet: str = typer.Option("default", "--wallet", "-w", help="the paying wallet"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Finish a withdrawal after its delay: the escrow comes back and the ledger records it.

    Example: bazaar channel finalize http://127.0.0.1:4021/quote --wallet alice
    """
    buyer, channel, token = _open(run_context(ctx).config, url, wallet)
    with waiting("finalizing the withdrawal..."):
        back = asyncio.run(buyer.finalize_withdraw(channel))
    cid = "0x" + channel.channel_id.hex()
    if json_out:
        emit_json({"channel": cid, "amount": str(back)})
    else:
        console.print(f"{_human(token, back)} back from {cid}")
