"""Money tools: balance, send, pay (x402 exact), channel_pay (batch-settlement), ledger."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from agentbazaar.errors import InputError
from agentbazaar.tokens import Token
from agentbazaar.units import format_units

if TYPE_CHECKING:
    from agentbazaar.tools._toolbox import Toolbox

MAX_BODY_CHARS = 20_000  # what a tool result carries of a response body


class ToolArgs(BaseModel):
    """The arguments of a tool: named fields only, anything else refused."""

    model_config = ConfigDict(extra="forbid")


class BalanceArgs(ToolArgs):
    who: str | None = Field(
        None, description="a wallet name or 0x address (default: the paying wallet)"
    )


class SendArgs(ToolArgs):
    to: str = Field(description="recipient: a wallet name or a 0x address")
    amount: str = Field(description="amount with its token, e.g. '2.5 USDC' or '0.1 ETH'")
    idempotency_key: str | None = Field(
        None, description="retry-safe key: a retry with the same key never pays twice"
    )


class PayArgs(ToolArgs):
    url: str = Field(description="the paid http(s) URL")
    method: str = Field("GET", description="HTTP method")
    body: str | None = Field(None, description="request body (JSON text)")
    max_price: str = Field("0.05 USDC", description="most to pay for this call, e.g. '0.01 USDC'")
    idempotency_key: str | None = Field(None, description="reuse to retry without paying twice")


class ChannelPayArgs(ToolArgs):
    url: str = Field(description="the seller's paid http(s) URL")
    count: int = Field(1, ge=1, le=1000, description="calls to make, one voucher each")
    max_price: str = Field("0.05 USDC", description="most to pay per call")
    method: str = Field("GET", description="HTTP method")
    body: str | None = Field(None, description="request body (JSON text)")
    deposit_calls: int = Field(
        100, ge=1, le=100_000, description="a first deposit covers this many calls (escrow)"
    )


class LedgerArgs(ToolArgs):
    limit: int = Field(20, ge=1, le=500, description="newest entries to return")


def money(token: Token, units: int) -> dict[str, str]:
    """An amount in a result: token units with the symbol, and the exact base units."""
    return {"amount": token.format(units), "units": str(units), "token": token.symbol}


def _url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise InputError(f"not an http(s) URL: {url!r}")
    return url


def _usdc(box: Toolbox) -> Token:
    token = box.suite.tokens.get("USDC")
    if token.address is None:
        raise InputError("no USDC on this chain: deploy the suite (bazaar deploy)")
    return token


def price_limit(box: Toolbox, text: str, token: Token) -> int:
    """'0.05 USDC' or '0.05' (in ``token``) -> base units of ``token``."""
    given, units = box.suite.tokens.parse_amount(text, default_token=token.symbol)
    if given.symbol != token.symbol:
        raise InputError(f"the price is in {token.symbol}, not {given.symbol}")
    return units


def balance(box: Toolbox, args: BalanceArgs) -> dict[str, Any]:
    from agentbazaar.wallet import balances

    address = resolve_address(box, args.who) if args.who else box.wallet().address
    found = balances(box.chain, address, box.suite.tokens)
    return {
        "address": address,
        "chain_id": box.chain.chain_id,
        "balances": [money(b.token, b.units) for b in found],
    }


def resolve_address(box: Toolbox, who: str) -> str:
    """A wallet name of the data directory or an address -> checksummed address."""
    from agentbazaar.chain import to_address

    if who.startswith("0x"):
        return str(to_address(who))
    return str(box.wallet().resolve(who))


def send(box: Toolbox, args: SendArgs) -> dict[str, Any]:
    token, units = box.suite.tokens.parse_amount(args.amount)
    to = resolve_address(box, args.to)
    result = box.wallet().send(
        box.chain,
        to,
        units,
        None if token.is_native else token,
        idempotency_key=args.idempotency_key,
    )
    return {
        **money(token, units),
        "to": to,
        "tx_hash": result.tx_hash,
        "block_number": result.block_number,
        "status": result.status,
        "replayed": result.replayed,
        "idempotency_key": result.idempotency_key,
    }


def pay(box: Toolbox, args: PayArgs) -> dict[str, Any]:
    from agentbazaar.payments.client import AcceptedToken, PayingClient
    from agentbazaar.payments.payers import WalletPayer

    url, token = _url(args.url), _usdc(box)
    limit = price_limit(box, args.max_price, token)
    payer = WalletPayer(box.wallet(), tokens={str(token.address): token}, chain=box.chain)
    client = PayingClient(
        payer, [AcceptedToken(box.chain.network, str(token.address))], max_amount=limit
    )

    async def go() -> Any:
        async with client:
            return await client.request(
                args.method.upper(),
                url,
                content=args.body.encode() if args.body is not None else None,
                headers={"content-type": "application/json"} if args.body is not None else None,
                idempotency_key=args.idempotency_key,
            )

    paid = asyncio.run(go())
    made = paid.payment
    payment = None
    if made is not None:
        payment = {
            **money(token, made.intent.amount),
            "pay_to": made.intent.pay_to,
            "tx_hash": made.transaction,
            "success": made.success,
            "error": made.error,
            "replayed": made.replayed,
            "idempotency_key": made.intent.idempotency_key,
        }
    return {
        "status": paid.response.status_code,
        "body": paid.response.text[:MAX_BODY_CHARS],
        "payment": payment,
    }


def channel_pay(box: Toolbox, args: ChannelPayArgs) -> dict[str, Any]:
    from agentbazaar.channels.buyer import ChannelBuyer

    url, token = _url(args.url), _usdc(box)
    buyer = ChannelBuyer(box.wallet(), chain_id=box.chain.chain_id, chain=box.chain)
    buyer.deposit_multiplier = args.deposit_calls
    limit = price_limit(box, args.max_price, token)
    method = args.method.upper()

    async def go() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as http:
            req = await buyer.requirement_at(http, url, method=method)
            if int(req["amount"]) > limit:
                raise InputError(
                    f"the seller asks {token.format(int(req['amount']))} per call, more than "
                    f"max_price {token.format(limit)}"
                )
            channel = buyer.channel_for(req)
            before = channel.charged
            statuses, last = [], None
            for _ in range(args.count):
                last = await buyer.request(
                    http, method, url,
                    content=args.body.encode() if args.body is not None else None,
                    headers={"content-type": "application/json"} if args.body else None,
                )  # fmt: skip
                statuses.append(last.status_code)
                if last.status_code >= 400:
                    break
            return {
                "channel": "0x" + channel.channel_id.hex(),
                "calls": len(statuses),
                "ok": sum(1 for s in statuses if s < 400),
                "paid": money(token, channel.charged - before),
                "escrowed": money(token, channel.balance - channel.charged),
                "last_status": statuses[-1],
                "last_body": (last.text if last is not None else "")[:MAX_BODY_CHARS],
            }

    try:
        return asyncio.run(go())
    except httpx.HTTPError as exc:
        raise InputError(f"cannot reach {url}: {exc}") from exc


def ledger(box: Toolbox, args: LedgerArgs) -> dict[str, Any]:
    wallet = box.wallet()
    rows = wallet.ledger.recent(wallet.name, limit=args.limit)
    return {"wallet": wallet.name, "entries": [ledger_entry(r) for r in rows]}


def ledger_entry(r: Any) -> dict[str, Any]:
    """A ledger row for people and models: the amount in token units, times as dates."""
    from datetime import UTC, datetime

    amount = (
        f"{format_units(r.amount, r.decimals)} {r.symbol}"
        if r.decimals is not None
        else f"{r.amount} base units of {r.symbol or r.token}"
    )
    return {
        "id": r.id,
        "kind": r.kind,
        "amount": amount,
        "units": str(r.amount),
        "counterparty": r.counterparty,
        "status": r.status,
        "tx_hash": r.tx_hash,
        "idempotency_key": r.idempotency_key,
        "created": datetime.fromtimestamp(r.created_at, UTC).isoformat(timespec="seconds"),
        "error": r.error,
    }
