"""`bazaar channel ...`: the paying side of x402 `batch-settlement` channels from the shell.

The channel is the one this wallet pays the seller at URL through (the seller's 402 names it).
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from typing import TYPE_CHECKING, Any

import typer

from agentbazaar.cli._common import (
    console,
    emit_json,
    err_console,
    open_wallet,
    run_context,
    waiting,
)
from agentbazaar.errors import BazaarError, InputError

if TYPE_CHECKING:
    import httpx

    from agentbazaar.chain import Chain
    from agentbazaar.channels.buyer import BuyerChannel, ChannelBuyer
    from agentbazaar.tokens import Token

app = typer.Typer(
    help="batch-settlement channels this wallet pays through: pay over one, take the escrow back.",
    no_args_is_help=True,
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="channel")


def _open(
    ctx: typer.Context, url: str, wallet: str | None, method: str = "GET"
) -> tuple[ChannelBuyer, BuyerChannel, Token | None, dict[str, Any]]:
    """The buyer, the channel it pays the seller at ``url`` through, the channel's token, and
    the seller's batch-settlement requirement there (probed with ``method``)."""
    import httpx

    from agentbazaar.chain import Chain
    from agentbazaar.channels.buyer import ChannelBuyer
    from agentbazaar.suite import Suite

    if not url.startswith(("http://", "https://")):
        raise InputError(f"not an http(s) URL: {url!r}")
    cfg = run_context(ctx).config
    with waiting("connecting to the chain..."):
        chain = Chain.from_config(cfg)
    buyer = ChannelBuyer(open_wallet(ctx, wallet), chain_id=chain.chain_id, chain=chain)

    async def requirement() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as http:
            try:
                return await buyer.requirement_at(http, url, method=method)
            except httpx.HTTPError as exc:
                raise InputError(f"cannot reach {url}: {exc}") from exc

    req = asyncio.run(requirement())
    channel = buyer.channel_for(req)
    try:
        token: Token | None = Suite(chain, cfg).tokens.get(channel.config.token)
    except BazaarError:
        token = _token_on_chain(chain, channel.config.token)
    return buyer, channel, token, req


_ERC20_META = [
    {"name": n, "type": "function", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": t}]}
    for n, t in (("symbol", "string"), ("decimals", "uint8"))
]  # fmt: skip


def _token_on_chain(chain: Chain, address: str) -> Token | None:
    """A token this config does not list, described by its own ERC-20 symbol and decimals."""
    from agentbazaar.chain import to_address
    from agentbazaar.tokens import Token

    try:
        erc20 = chain.w3.eth.contract(address=to_address(address), abi=_ERC20_META)
        symbol = str(erc20.functions.symbol().call())
        decimals = int(erc20.functions.decimals().call())
    except Exception:  # not an ERC-20 we can read: amounts are shown in base units
        return None
    if not symbol.isprintable() or not 0 <= decimals <= 36:
        return None
    return Token(symbol=symbol[:16], decimals=decimals, address=address)


def _resolve_deposits(buyer: ChannelBuyer, cid: str) -> list[str]:
    """After a refused call: what became of this channel's deposits still signed (relayed after
    all, expired, cancelled on chain when worth its gas, or live until when)."""
    from agentbazaar.wallet.reconcile import resolve_refused

    if buyer.chain is None:
        return []
    fates = []
    for rec in buyer.wallet.ledger.records(buyer.wallet.name, statuses=("signed",)):
        if rec.kind == "deposit" and str(rec.memo.get("channel", "")).lower() == cid:
            finding = resolve_refused(buyer.wallet, buyer.chain, rec.idempotency_key)
            if finding is not None:
                fates.append(f"deposit {rec.idempotency_key}: {finding.outcome}, {finding.detail}")
    return fates


def _charged(response: httpx.Response) -> int:
    """What the seller charged for one call (its PAYMENT-RESPONSE; 0 when it charged nothing)."""
    header = response.headers.get("PAYMENT-RESPONSE")
    if response.status_code >= 400 or not header:
        return 0
    try:
        settle = json.loads(base64.b64decode(header, validate=True))
        return int(settle["extra"]["chargedAmount"])
    except (ValueError, KeyError, TypeError):
        return 0


def _human(token: Token | None, units: int) -> str:
    return token.format(units) if token else f"{units} base units"


@app.command("pay")
def pay(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="URL of the seller's paid resource"),
    wallet: str | None = typer.Option(
        None, "--wallet", "-w", help="the paying wallet (default: BAZAAR_WALLET, default_wallet)"
    ),
    count: int = typer.Option(1, "--count", "-n", help="calls to make, one voucher each"),
    max_price: str = typer.Option(
        "0.05", "--max", help="most to pay per call, e.g. 0.05 or '0.05 USDC'"
    ),
    deposit_calls: int = typer.Option(
        100, "--deposit-calls", help="a deposit covers this many calls (it is escrow, not spent)"
    ),
    method: str = typer.Option("GET", "-X", "--request"),
    data: str | None = typer.Option(None, "-d", "--data"),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="print no response bodies"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Pay for calls over a batch-settlement channel: a deposit the first time (escrowed, within
    the wallet's policy), then one signed voucher per call; the seller claims them in batches.

    Example: bazaar channel pay http://127.0.0.1:4021/quote --wallet alice -n 100 -q
    """
    import httpx

    if count < 1:
        raise InputError("--count must be at least 1")
    if deposit_calls < 1:
        raise InputError("--deposit-calls must be at least 1")
    buyer, channel, token, req = _open(ctx, url, wallet, method.upper())
    if token is None:
        raise InputError(f"unknown channel token {channel.config.token}: cannot check --max")
    price, limit = int(req["amount"]), token.parse(max_price)
    if price > limit:
        raise InputError(
            f"the seller asks {token.format(price)} per call, more than --max {max_price}"
        )
    buyer.deposit_multiplier = deposit_calls
    statuses: list[int] = []
    last: httpx.Response | None = None
    paid = 0

    async def go() -> None:
        nonlocal last, paid
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(count):
                try:
                    last = await buyer.request(
                        http,
                        method.upper(),
                        url,
                        content=data.encode() if data is not None else None,
                        headers={"content-type": "application/json"} if data else None,
                    )
                except httpx.HTTPError as exc:
                    raise InputError(f"cannot reach {url}: {exc}") from exc
                statuses.append(last.status_code)
                paid += _charged(last)
                if not quiet and not json_out:
                    sys.stdout.write(last.text + "\n")
                if last.status_code >= 400:
                    return

    with waiting(f"paying {count} call(s) over the channel..."):
        asyncio.run(go())
    cid = "0x" + channel.channel_id.hex()
    ok = sum(1 for code in statuses if code < 400)
    fates = _resolve_deposits(buyer, cid) if statuses[-1] >= 400 else []
    if json_out:
        emit_json(
            {
                "channel": cid,
                "calls": len(statuses),
                "ok": ok,
                "paid": str(paid),
                "charged": str(channel.charged),
                "balance": str(channel.balance),
                "last_status": statuses[-1],
                "last_body": last.text if last is not None else "",
                "deposits": fates,
            }
        )
    else:
        err_console.print(
            f"{ok} of {len(statuses)} call(s) paid, {token.format(paid)} over {cid} "
            f"(charged {token.format(channel.charged)} of {token.format(channel.balance)} escrowed)"
        )
        for fate in fates:
            err_console.print(fate, markup=False, highlight=False, soft_wrap=True)
    if statuses[-1] >= 400:
        raise typer.Exit(1)


@app.command("withdraw")
def withdraw(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="URL of the seller's paid resource"),
    wallet: str | None = typer.Option(
        None, "--wallet", "-w", help="the paying wallet (default: BAZAAR_WALLET, default_wallet)"
    ),
    amount: str | None = typer.Option(
        None, "--amount", help="token amount (default: all that was not charged)"
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Start taking your escrow back without the seller (finalize after the channel's delay).

    Example: bazaar channel withdraw http://127.0.0.1:4021/quote --wallet alice
    """
    buyer, channel, token, _ = _open(ctx, url, wallet)
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
            f"(bazaar channel finalize {url} -w {buyer.wallet.name})"
        )


@app.command("finalize")
def finalize(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="URL of the seller's paid resource"),
    wallet: str | None = typer.Option(
        None, "--wallet", "-w", help="the paying wallet (default: BAZAAR_WALLET, default_wallet)"
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Finish a withdrawal after its delay: the escrow comes back and the ledger records it.

    Example: bazaar channel finalize http://127.0.0.1:4021/quote --wallet alice
    """
    buyer, channel, token, _ = _open(ctx, url, wallet)
    with waiting("finalizing the withdrawal..."):
        back = asyncio.run(buyer.finalize_withdraw(channel))
    cid = "0x" + channel.channel_id.hex()
    if json_out:
        emit_json({"channel": cid, "amount": str(back)})
    else:
        console.print(f"{_human(token, back)} back from {cid}")
